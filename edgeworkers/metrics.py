"""The node's Prometheus metrics (prometheus-client), served by the ``scheduler`` process on 127.0.0.1 only.

The endpoint has no authentication of its own: it is bound to the loopback address and never to another, so only
callers on the node itself can read it (as kubelet's read-only port would be firewalled). Reach it from elsewhere
through an authenticated tunnel or proxy, never by binding it wider.

Everything lives in one registry of its own (``REGISTRY``), so tests and processes never collide with the
default one.
"""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LOOPBACK = "127.0.0.1"

REGISTRY = CollectorRegistry(auto_describe=True)

RELIST_DURATION = Histogram(
    "edgeworkers_pleg_relist_duration_seconds",
    "Duration of one PLEG relist (one runtime list call and the diff).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
PLEG_HEALTHY = Gauge("edgeworkers_pleg_healthy", "1 when the PLEG relisted within its threshold.", registry=REGISTRY)
PLEG_EVENTS = Counter(
    "edgeworkers_pleg_events", "Pod lifecycle events emitted by the PLEG.", ["type"], registry=REGISTRY
)
JOB_LAST_SUCCESS = Gauge(
    "edgeworkers_job_last_success_timestamp_seconds",
    "Unix time of each scheduler job's last successful run.",
    ["job"],
    registry=REGISTRY,
)
JOB_FAILURES = Counter("edgeworkers_job_failures", "Failed runs of each scheduler job.", ["job"], registry=REGISTRY)
PROBE_RESULTS = Counter(
    "edgeworkers_prober_probe", "Probe runs by probe type and result.", ["probe_type", "result"], registry=REGISTRY
)
GC_RUNS = Counter("edgeworkers_gc_runs", "Garbage collection runs.", ["kind"], registry=REGISTRY)
GC_REMOVED = Counter("edgeworkers_gc_removed", "Containers or images removed by GC.", ["kind"], registry=REGISTRY)
GC_BYTES_FREED = Counter("edgeworkers_gc_freed_bytes", "Bytes freed by image GC.", registry=REGISTRY)
PERIODIC_SYNCS = Counter(
    "edgeworkers_periodic_pod_syncs", "Pod syncs enqueued by the periodic sync of every desired pod.",
    registry=REGISTRY,
)
REDIS_DATA_LOSSES = Counter(
    "edgeworkers_redis_data_losses", "Times the agent's Redis was found without its data (MetaManager's epoch gone): "
    "the bridge listed the node's pods again.", registry=REGISTRY,
)
ORPHANS_REMOVED = Counter(
    "edgeworkers_orphan_pods_removed", "Pods absent from the desired state whose containers were removed.",
    registry=REGISTRY,
)


class CallbackCollector(Collector):
    """Gauges read at scrape time (pods by phase, container restarts, outbox length), from a callback that returns
    ``{metric name: (help, {label tuple: value}, label names)}``; a failing callback exports nothing."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, dict[tuple[str, ...], float], list[str]]]]) -> None:
        self._read = read

    def collect(self):
        try:
            metrics = self._read()
        except Exception:  # a scrape must never fail because Redis is briefly away
            return
        for name, (documentation, values, label_names) in metrics.items():
            family = GaugeMetricFamily(name, documentation, labels=label_names)
            for label_values, value in values.items():
                family.add_metric(list(label_values), value)
            yield family


def serve(port: int, registry: CollectorRegistry = REGISTRY):
    """Serve ``registry`` on http://127.0.0.1:<port>/metrics in a daemon thread (loopback only; see above); return
    the HTTP server (``shutdown()`` stops it)."""
    server, _ = start_http_server(port, addr=LOOPBACK, registry=registry)
    return server
