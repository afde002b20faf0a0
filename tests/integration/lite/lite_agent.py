"""`edgeworkers <command> ...` (``agent``, or ``worker`` with one process: in-process) with module ``argv[1]`` imported
first (``slow_actors``: a slow engine): what the lite variants of the queue tests start in place of `dramatiq <module>`.
The command's own services and actors are the ones its worker runs (a module's broker, if it made one, stays idle)."""
import importlib
import sys

importlib.import_module(sys.argv[1])

from edgeworkers.cli import app  # noqa: E402  (after the module and its patches)

app(sys.argv[2:])
