"""`edgeworkers <command> ...` (``agent``, or ``worker`` with one process: in-process) with the actors of module
``argv[1]`` imported first (``slow_actors``: a slow engine): what the lite variants of the queue tests start in place
of `dramatiq <module>`."""
import importlib
import sys

importlib.import_module(sys.argv[1])

from edgeworkers.cli import app  # noqa: E402  (after the module, whose actors bind to the process's one broker)

app(sys.argv[2:])
