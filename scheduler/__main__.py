"""``python -m scheduler``: the periodic jobs alone in a process, as ``edgeworkers scheduler``."""
from edgeworkers.agent import scheduler

scheduler()
