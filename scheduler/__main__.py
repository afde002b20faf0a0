"""``python -m scheduler``: the ``scheduler`` process."""
from scheduler.main import run

run()
