"""Networking: the Neutron v2.0-compatible network service and its Linux data plane (see DESIGN.md)."""
