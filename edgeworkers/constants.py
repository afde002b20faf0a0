"""Names shared across processes: queues, Redis key prefixes, well-known annotations."""
from __future__ import annotations

# Dramatiq queues (one per operation, as edged's message types).
QUEUE_POD_ADD = "pod_add"
QUEUE_POD_UPDATE = "pod_update"
QUEUE_POD_DELETE = "pod_delete"
QUEUE_POD_SYNC = "pod_sync"

# Redis keys. Everything the agent keeps lives under one prefix.
KEY_PREFIX = "edgeworkers"
# MetaManager objects: f"{KEY_META}:{namespace}/{kind}/{name}" -> the object's JSON
# (kind is lowercase singular, as KubeEdge's resource keys: pod, configmap, secret).
KEY_META = f"{KEY_PREFIX}:meta"
# Per-kind index of object keys: f"{KEY_META_INDEX}:{kind}" -> set of "<namespace>/<name>".
KEY_META_INDEX = f"{KEY_PREFIX}:meta-index"
# A deleted object's tombstone: f"{KEY_META_TOMBSTONE}:{namespace}/{kind}/{name}" -> the deleted resourceVersion.
KEY_META_TOMBSTONE = f"{KEY_PREFIX}:meta-tombstone"
# The status outbox (metamanager.outbox): items by key, and their order.
KEY_OUTBOX_ITEMS = f"{KEY_PREFIX}:outbox:items"
KEY_OUTBOX_ORDER = f"{KEY_PREFIX}:outbox:order"
KEY_OUTBOX_SEQ = f"{KEY_PREFIX}:outbox:seq"
# Events wait in an order of their own, behind the statuses; past the cap the oldest go, counted here; the flag is
# set while a burst of drops lasts (logged once).
KEY_OUTBOX_EVENTS = f"{KEY_PREFIX}:outbox:events"
KEY_OUTBOX_EVENTS_DROPPED = f"{KEY_PREFIX}:outbox:events-dropped"
KEY_OUTBOX_EVENTS_DROPPING = f"{KEY_PREFIX}:outbox:events-dropping"
# Per-pod operation lock: f"{KEY_POD_LOCK}:{namespace}/{name}".
KEY_POD_LOCK = f"{KEY_PREFIX}:lock:pod"
# Per-container restart back-off state: f"{KEY_BACKOFF}:{pod uid}/{container}" -> JSON.
KEY_BACKOFF = f"{KEY_PREFIX}:backoff"
# A follow-up sync_pod is pending: f"{KEY_SYNC_PENDING}:{namespace}/{name}", expiring after it is due.
KEY_SYNC_PENDING = f"{KEY_PREFIX}:sync-pending:pod"
# Last computed pod status: f"{KEY_POD_STATUS}:{namespace}/{name}" -> PodStatus JSON.
KEY_POD_STATUS = f"{KEY_PREFIX}:podstatus"
# Probe results of a running container (edgeworkers.prober): f"{KEY_PROBE}:{container id}" -> hash
# {"readiness"|"startup": "1"|"0"}; absent: no result yet (not ready, not started).
KEY_PROBE = f"{KEY_PREFIX}:probe"
# The PLEG's last successful relist (unix time), read by the node status: a silent PLEG makes the node not Ready.
KEY_PLEG_LAST_RELIST = f"{KEY_PREFIX}:pleg:last-relist"
# Event correlation (edgeworkers.events): f"{KEY_EVENTS}:{kind}/{namespace}/{name}/{uid}" -> the object's state
# (token bucket, aggregation records, counted events) as JSON, expiring once it would be a fresh object's.
KEY_EVENTS = f"{KEY_PREFIX}:events"
# Image GC's memory of images: hash image id -> {"first": unix time, "last": unix time}.
KEY_IMAGES = f"{KEY_PREFIX}:images"
# Each periodic job's last success: hash job id -> unix time.
KEY_JOB_LAST_SUCCESS = f"{KEY_PREFIX}:scheduler:last-success"
# f"{KEY_IMAGE_LOCK}:{image}": held while the image is pulled; f"{KEY_IMAGE_PULLED}:{image}": pulled lately.
KEY_IMAGE_LOCK = f"{KEY_PREFIX}:lock:image"
KEY_IMAGE_PULLED = f"{KEY_PREFIX}:image-pulled"
# f"{KEY_IMAGE_WAITERS}:{image}": the keys of the pods waiting for another task's pull of the image (a set).
KEY_IMAGE_WAITERS = f"{KEY_PREFIX}:image-waiters"
# Pod tasks given up (dead-lettered), by every worker process of the node: a counter.
KEY_DEAD_LETTERS = f"{KEY_PREFIX}:dead-letters"
# MetaManager's epoch (metamanager.epoch): a random token written once the bridge has stored a complete list of the
# node's pods; absent after the Redis lost its data, until the bridge has listed again.
KEY_EPOCH = f"{KEY_PREFIX}:meta-epoch"

# Where a pod came from, as kubelet annotates it: "file" for a node-local (static) pod from `edgeworkers pod apply`,
# "api" for a pod from the cloud. The cloud bridge shows static pods at the cloud as mirror pods.
ANNOTATION_SOURCE = "kubernetes.io/config.source"
SOURCE_FILE = "file"
SOURCE_API = "api"
# A mirror pod (the cloud's view of a static pod) carries the static pod's hash under this annotation.
ANNOTATION_MIRROR = "kubernetes.io/config.mirror"
