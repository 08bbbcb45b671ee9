"""glibc's malloc, tuned for a daemon of many threads that mostly wait; nothing elsewhere.

glibc gives threads that allocate at the same moment arenas of their own, up to eight per
core, and memory a thread frees stays in its arena for that arena's next allocations. The
daemon has about twenty threads (web workers, syncs, the outbox, the loop) that take turns
under the GIL, while SQLite's, OpenSSL's and lxml's C code allocates without it; under a
burst of bookings each arena kept its own free memory, and the process peaked 5-6 MB
higher with glibc's default than with two arenas (bench/memory.py, 10 x 2,000 and
50 x 5,000). One arena saved about as much, with every thread then queueing on one lock.

The cap must be set before the threads start allocating, so :func:`cap_arenas` is called
first thing by ``expediente run``. An administrator's own ``MALLOC_ARENA_MAX`` (or glibc
tunable) wins; under another C library (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import os

ARENAS = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def glibc() -> bool:
    """Whether this process runs on glibc."""
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        return False


def cap_arenas(arenas: int = ARENAS) -> bool:
    """Let glibc's malloc use at most ``arenas`` arenas from now on; whether it was set."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in tunables:
        return False
    if not glibc():
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
