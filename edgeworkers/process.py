"""Memory of the edge's long-running processes (a tracked figure: edge machines are small; ops/bench/footprint.py)."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from contextlib import suppress

# The commands that run for good (the Procfiles' edge processes), by their first words.
LONG_RUNNING = (("agent",), ("worker",), ("scheduler",), ("node", "serve"))
M_ARENA_MAX = -8  # glibc's mallopt() parameter (malloc.h), as the MALLOC_ARENA_MAX environment variable
ARENAS = 2


def long_running(args: list[str]) -> bool:
    """Whether the `edgeworkers` command line ``args`` (without the program) runs one of ``LONG_RUNNING``."""
    words = [a for a in args if not a.startswith("-")]
    return any(tuple(words[: len(command)]) == command for command in LONG_RUNNING)


def trim_for_long_run() -> None:
    """Call first in a long-running edge process, before typer, structlog and its threads exist.

    - glibc's malloc gives threads arenas of their own (up to 8 per core), each keeping what the bursts of the worker
      threads freed: two arenas, as ``MALLOC_ARENA_MAX=2``, measured 3 MB less PSS in the lite agent.
    - structlog imports rich (and pygments) for pretty tracebacks whenever rich is installed, as typer installs it:
      about 4.6 MB of PSS a process. The edge's logs are read as text, so rich is made unimportable here: structlog
      and typer then format tracebacks as the standard library does.
    """
    if "rich" not in sys.modules:
        sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError from now on
        os.environ["TYPER_USE_RICH"] = "0"  # typer's help and its crash hook would import it
        os.environ["TYPER_STANDARD_TRACEBACK"] = "1"
    libc = ctypes.util.find_library("c")
    if libc is not None:
        with suppress(OSError, AttributeError):  # not glibc: nothing to tune
            ctypes.CDLL(libc).mallopt(M_ARENA_MAX, ARENAS)
