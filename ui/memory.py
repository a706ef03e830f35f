"""Python's full garbage collections kept short in a replica.

A replica runs every visitor's script in threads of one process. Now and then Python's
cyclic garbage collector walks every object the process holds (a "generation 2"
collection), and no other thread runs meanwhile: with Streamlit, pandas, Altair,
SQLAlchemy and boto3 imported that is over 200,000 objects, and each such pause stopped
every page of that replica for 140-150 ms (`benchmarks/load.py`: the slowest pages at
K = 30 were those waiting out one; `benchmarks/README.md`, "The sixth round").

Most of those objects are the modules themselves, which live as long as the process.
`gc.freeze()` (Python's own answer for this, see the `gc` module's documentation) moves
every object alive now out of the collector's sight: later collections walk only what was
made since. It is called after a run that imported modules, the first runs of each page,
once they are loaded, after a collection, so that no garbage of that moment is kept.
Reference counting still frees frozen objects; only a cycle among them becoming garbage
later is never collected, a bounded cost paid once per wave of imports.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_loaded_when_frozen: tuple[int, str] = (0, "")


def _loaded() -> tuple[int, str]:
    """How many modules are loaded and the last one: a change in either is an import
    (two dictionary reads, whatever their number)."""
    try:
        return len(sys.modules), next(reversed(sys.modules), "")
    except RuntimeError:  # another thread importing at this very moment: look again later
        return -1, ""


def freeze_loaded_modules() -> bool:
    """After a run: when modules were imported since the last call, collect, then freeze
    every object alive (True); else do nothing (False), the cost of comparing two pairs."""
    global _loaded_when_frozen
    if _loaded() == _loaded_when_frozen:
        return False
    with _lock:  # two sessions' first runs finishing at once freeze once
        loaded = _loaded()
        if loaded == _loaded_when_frozen:
            return False
        gc.collect()
        gc.freeze()
        _loaded_when_frozen = loaded
    return True
