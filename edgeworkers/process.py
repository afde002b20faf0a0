"""Memory of the edge's long-running processes (a tracked figure: edge machines are small; ops/bench/footprint.py),
and their protection from the kernel's OOM killer."""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from contextlib import suppress
from pathlib import Path

# The commands that run for good (the Procfiles' edge processes), by their first words.
LONG_RUNNING = (("agent",), ("worker",), ("scheduler",), ("node", "serve"))
# glibc's mallopt() parameters (malloc.h), as the MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_
# environment variables, and their values here.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
ARENAS = 2
THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value for both thresholds, made fixed
# kubelet's KubeletOOMScoreAdj (pkg/kubelet/qos/policy.go): below every pod's containers (-997 at least) and sandboxes
# (-998), so that under memory pressure the kernel kills the node's workloads before the agent that runs them.
AGENT_OOM_SCORE_ADJ = -999
CAP_SYS_RESOURCE = 24  # linux/capability.h: lowering an oom_score_adj takes it
OOM_SCORE_ADJ_MIN = -1000


def long_running(args: list[str]) -> bool:
    """Whether the `edgeworkers` command line ``args`` (without the program) runs one of ``LONG_RUNNING``."""
    words = [a for a in args if not a.startswith("-")]
    return any(tuple(words[: len(command)]) == command for command in LONG_RUNNING)


def trim_for_long_run() -> None:
    """Call first in a long-running edge process, before typer, structlog and its threads exist.

    - glibc's malloc gives threads arenas of their own (up to 8 per core), each keeping what the bursts of the worker
      threads freed: two arenas, as ``MALLOC_ARENA_MAX=2``, measured 3 MB less PSS in the lite agent.
    - glibc raises its mmap threshold to the size of each large block freed (up to 32 MB), so that after a burst of
      syncs the Docker and Redis replies land in the heap, which is then kept: fixing the mmap and trim thresholds at
      glibc's starting 128 KiB turned the lite agent's growth over 2,000 syncs from +6.3 % into +0.1 %.
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
            mallopt = ctypes.CDLL(libc).mallopt
            mallopt(M_ARENA_MAX, ARENAS)
            mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)
            mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES)


def protect_from_oom(path: Path = Path("/proc/self/oom_score_adj")) -> bool:
    """Give this process kubelet's own ``oom_score_adj`` (``AGENT_OOM_SCORE_ADJ``), inherited by the processes it
    forks (the worker's processes); call once at the start of a long-running edge process. False (logged) when the
    kernel refuses it: lowering a score takes root (CAP_SYS_RESOURCE), as kubelet has."""
    try:
        path.write_text(f"{AGENT_OOM_SCORE_ADJ}\n")
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot set this process's oom_score_adj to %d: %s", AGENT_OOM_SCORE_ADJ,
                                            exc)
        return False
    return True


def lowest_oom_score_adj(status: str, own_score: int) -> int:
    """The lowest ``oom_score_adj`` this node can give a process, from ``/proc/self/status`` (``status``) and this
    process's own score: any (-1000) with CAP_SYS_RESOURCE in the effective set, else none below its own (as
    containerd's RestrictOOMScoreAdj: runc refuses to start a container asking less, and the engine runs with the
    same capability bounding set as the agent that drives it)."""
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name == "CapEff":
            return OOM_SCORE_ADJ_MIN if int(value.strip(), 16) >> CAP_SYS_RESOURCE & 1 else own_score
    return own_score


def node_oom_score_floor() -> int:
    """``lowest_oom_score_adj`` of this process, as ``/proc`` tells it (-1000 where ``/proc`` cannot be read)."""
    try:
        return lowest_oom_score_adj(Path("/proc/self/status").read_text(),
                                    int(Path("/proc/self/oom_score_adj").read_text()))
    except (OSError, ValueError):
        return OOM_SCORE_ADJ_MIN
