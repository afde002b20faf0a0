"""``python -m scheduler``: the periodic jobs alone in a process, as ``edgeworkers scheduler``."""
from edgeworkers.process import protect_from_oom, trim_for_long_run

trim_for_long_run()
protect_from_oom()

from edgeworkers.agent import scheduler  # noqa: E402  (after the process's memory settings)

scheduler()
