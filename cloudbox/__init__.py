"""cloudbox: a private cloud in one trio process per node."""

__version__ = "0.1.0"
