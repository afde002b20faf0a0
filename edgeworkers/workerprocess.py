"""The module the `dramatiq` command loads in each of its worker processes (``edgeworkers worker`` with several
processes, or the queues' Prometheus exposition): the process's services (``wiring``) and the pod actors on its
broker, which ``make_broker`` made Dramatiq's global one."""
from edgeworkers import wiring
from edgeworkers.config import settings
from edgeworkers.process import protect_from_oom, trim_for_long_run

trim_for_long_run()
protect_from_oom()
services = wiring.build(settings())
broker = services.broker
actors = wiring.declare_actors(services)
