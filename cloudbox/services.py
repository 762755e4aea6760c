"""The services this build of cloudbox runs, in start order."""

from __future__ import annotations

from cloudbox.identity import store as identity_store
from cloudbox.state.migrations import StoreSpec

STORES: list[StoreSpec] = [identity_store.STORE]
