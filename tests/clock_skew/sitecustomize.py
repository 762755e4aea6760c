"""Test-only: a node process whose wall clock is off by ``CBT_CLOCK_OFFSET`` seconds.

tests/cluster_net.py puts this directory first on PYTHONPATH of a node started with a
``clock_offset``, so Python imports this module at start-up (faketime is not installed on these
machines).  ``time.time`` and ``time.time_ns`` (and so cloudbox.clock and every timestamp the
node writes) are shifted; monotonic clocks, which measure durations, are not.
"""

import os
import time

_offset = float(os.environ.get("CBT_CLOCK_OFFSET") or 0)
if _offset:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _offset
    time.time_ns = lambda: _time_ns() + int(_offset * 1e9)
