"""The image service: Glance v2-compatible images at /image/v2."""
