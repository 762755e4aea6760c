"""Our own API at /cloudbox/v1: this node, the cluster, health."""
