"""The periodic jobs on APScheduler (process ``scheduler``): one job table (``scheduler.node.NodeJobs.table``), each
job guarded and scheduled by ``scheduler.jobs``; ``scheduler.main`` builds and runs them."""
