"""The periodic jobs (PLEG relist and probes, status manager, container and image GC) on APScheduler.

Empty until the scheduler issue; the functions it will call already exist: ``pods.reconcile.remove_orphans`` and
``PodSyncer.sync`` (via the ``sync_pod`` actor)."""
