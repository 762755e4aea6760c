"""Networking. For now: the per-node NAT network that gives servers DHCP (see natnet.py);
the Neutron-compatible service replaces it."""
