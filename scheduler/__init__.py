"""The periodic jobs on APScheduler: one job table (``scheduler.nodejobs.NodeJobs.table``), each job guarded and
scheduled by ``scheduler.jobs``; ``edgeworkers.wiring.periodic_jobs`` builds them, ``edgeworkers scheduler`` (or
``python -m scheduler``) runs them alone in a process."""
