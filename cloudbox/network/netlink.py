"""The parts of pyroute2 the Linux network driver uses, imported without pyroute2's package __init__.

``import pyroute2`` (and so any ``from pyroute2 import X``) runs an __init__ that imports the whole
library: NDB, IPDB, IPVS, WiFi, devlink, ss2 with psutil, plan9...  In a process that has already
imported the rest of cloudbox that costs 6.1 MiB of RSS, where the three parts used here (IPRoute,
network namespaces, conntrack) cost 2.3 MiB (issue 14: a node's idle memory).  So the package is
registered bare: its submodules import as usual, its __init__ does not run.  Code elsewhere that
asks the package itself for a name (``from pyroute2 import NDB``) still gets it: the first such
question runs the real __init__ in place, once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

PACKAGE = "pyroute2"


def bare_package(name: str) -> ModuleType:
    """``name`` in sys.modules with its __init__ not run (unless something imported it already)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an installed package", name=name)
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(attr: str) -> Any:  # noqa: N807 - a module's own __getattr__ (PEP 562)
        # Only names the bare package lacks get here.  A submodule (the library's own modules ask
        # ``from pyroute2 import config``) is imported as usual; any other name runs the real
        # __init__ once, in place, and is looked up again.
        if not attr.startswith("__") and importlib.util.find_spec(f"{name}.{attr}") is not None:
            return importlib.import_module(f"{name}.{attr}")
        if module.__dict__.pop("__getattr__", None) is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        loader.exec_module(module)
        return getattr(module, attr)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[name] = module
    return module


bare_package(PACKAGE)
# pyroute2's iprsocket imports unittest.mock at its top: the unittest package's __init__ (its test
# runner, loader and argparse) would add 0.7 MiB to the node for nothing; unittest.mock needs only
# unittest.util, which imports as usual from the bare package.
bare_package("unittest")

# Imported by their full paths (``from pyroute2 import netns`` would ask the bare package itself).
import pyroute2.netns as netns  # noqa: E402
from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402
from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple, NFCTSocket  # noqa: E402

__all__ = ["IPRoute", "NFCTAttrTuple", "NFCTSocket", "NetlinkError", "bare_package", "netns"]
