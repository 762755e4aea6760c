"""Compute: Nova v2.1-compatible servers on local libvirt/QEMU, and the scheduler."""
