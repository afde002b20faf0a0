"""Image GC (kubelet's realImageGCManager): when the filesystem holding Docker's data root is above the high
threshold, remove unused images, least recently used first, until it is below the low one.

Docker records no last use, so the agent keeps each image's first-seen and last-used times itself, in Redis
(``KEY_IMAGES``), across its own restarts: an image is "used" at every GC pass that finds a container (any state)
of it. Never removed: an image in use by a container (``Runtime.remove_image`` refuses those of containers the
agent does not manage too), the sandbox image, one first seen less than ``min_age_s`` ago. ``high_percent=100``
disables image GC (nodes on poor links, where a deleted image is costly to pull again).
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from edgeworkers import metrics
from edgeworkers.constants import KEY_IMAGES
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Image

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ImageGCPolicy:
    high_percent: int = 85
    low_percent: int = 80
    min_age_s: float = 120.0

    def __post_init__(self) -> None:
        """kubelet refuses such a policy when the manager is built; so does this."""
        for name, value in (("HighThresholdPercent", self.high_percent), ("LowThresholdPercent", self.low_percent)):
            if not 0 <= value <= 100:
                raise ValueError(f"invalid image GC {name} {value}: must be in the range [0, 100]")
        if self.low_percent > self.high_percent:
            raise ValueError(
                f"image GC LowThresholdPercent {self.low_percent} can not be higher than "
                f"HighThresholdPercent {self.high_percent}"
            )

    @property
    def disabled(self) -> bool:
        return self.high_percent >= 100


@dataclass(frozen=True)
class ImageRecord:
    id: str
    size_bytes: int
    first_seen: float
    last_used: float
    in_use: bool = False
    pinned: bool = False  # the sandbox image


def bytes_to_free(total: int, used: int, policy: ImageGCPolicy) -> int:
    """0 below the high threshold (or with GC disabled); else what brings usage down to the low threshold."""
    if policy.disabled or total <= 0 or used * 100 < policy.high_percent * total:
        return 0
    return max(0, used - total * policy.low_percent // 100)


def select_images(images: list[ImageRecord], amount: int, now: float, policy: ImageGCPolicy) -> list[ImageRecord]:
    """Unused images, least recently used first (then the earliest seen), until ``amount`` bytes are chosen."""
    if amount <= 0:
        return []
    candidates = [i for i in images if not i.in_use and not i.pinned and now - i.first_seen >= policy.min_age_s]
    chosen, freed = [], 0
    for image in sorted(candidates, key=lambda i: (i.last_used, i.first_seen, i.id)):
        if freed >= amount:
            break
        chosen.append(image)
        freed += image.size_bytes
    return chosen


def _with_tag(reference: str) -> str:
    """``name`` as Docker lists its tag: ``name:latest`` unless it has a tag (or a digest) already."""
    last = reference.rsplit("/", 1)[-1]
    return reference if ":" in last or "@" in last else f"{reference}:latest"


class ImageGC:
    """One public step, ``collect()``; the policy is checked when it is built."""

    def __init__(
        self,
        runtime: Runtime,
        client: redis.Redis,
        disk_usage: Callable[[], tuple[int, int]],  # (total, used) bytes of Docker's data root filesystem
        policy: ImageGCPolicy,
        sandbox_image: str,
        clock: Callable[[], float] = time.time,
        candidates: Callable[[Image], bool] = lambda image: True,
        node_event: Callable[[str, str], None] | None = None,  # (reason, message): a Warning about the node
    ) -> None:
        self._runtime = runtime
        self._redis = client
        self._disk_usage = disk_usage
        self._policy = policy
        self._sandbox_image = sandbox_image
        self._clock = clock
        self._candidates = candidates
        self._node_event = node_event

    def records(self) -> list[ImageRecord]:
        """Every image with its times, updating them in Redis (first seen once; last used while in use)."""
        now = self._clock()
        images = self._runtime.list_images()
        used = {c.image_id for c in self._runtime.list_containers(all_nodes=True)}
        known = {k.decode(): json.loads(v) for k, v in self._redis.hgetall(KEY_IMAGES).items()}
        records, updates = [], {}
        for image in images:
            times = known.get(image.id) or {"first": now, "last": now}
            in_use = image.id in used
            if in_use or image.id not in known:
                times = {"first": times["first"], "last": now if in_use else times["last"]}
                updates[image.id] = json.dumps(times)
            pinned = _with_tag(self._sandbox_image) in image.tags or not self._candidates(image)
            records.append(ImageRecord(image.id, image.size_bytes, times["first"], times["last"], in_use, pinned))
        pipe = self._redis.pipeline()
        if updates:
            pipe.hset(KEY_IMAGES, mapping=updates)
        gone = set(known) - {image.id for image in images}
        if gone:
            pipe.hdel(KEY_IMAGES, *gone)
        pipe.execute()
        return records

    def collect(self) -> int:
        """One pass; returns the bytes freed."""
        if self._policy.disabled:
            return 0
        total, used = self._disk_usage()
        return self._free(bytes_to_free(total, used, self._policy))

    def delete_unused(self) -> int:
        """Every unused image the policy allows (kubelet's DeleteUnusedImages, eviction's reclaim of the disk),
        whatever the thresholds; none when image GC is disabled. Returns the bytes freed."""
        return 0 if self._policy.disabled else self._free(sys.maxsize, required=False)

    def _free(self, amount: int, required: bool = True) -> int:
        """Remove unused images, least recently used first, until ``amount`` bytes are freed; ``required``: a
        shortfall is reported (``FreeDiskSpaceFailed``)."""
        records = self.records()
        freed, done = 0, set()
        while freed < amount:  # an image the engine refuses (in use by a container the agent does not manage) is
            left = [r for r in records if r.id not in done]  # skipped, and the next least recently used chosen
            chosen = select_images(left, amount - freed, self._clock(), self._policy)
            if not chosen:
                break
            for image in chosen:
                done.add(image.id)
                try:
                    self._runtime.remove_image(image.id)
                except ContainerRuntimeError as exc:
                    log.info("image GC: %s kept: %s", image.id, exc)
                    continue
                freed += image.size_bytes
                metrics.GC_REMOVED.labels("image").inc()
        metrics.GC_RUNS.labels("image").inc()
        metrics.GC_BYTES_FREED.inc(freed)
        if not required:
            if freed:
                log.info("image GC: removed every unused image, freed %d bytes", freed)
        elif amount:
            log.info("image GC: %d bytes to free, freed %d", amount, freed)
            if freed < amount:
                message = f"Failed to garbage collect required amount of images. Attempted to free {amount} bytes, " \
                          f"but only found {freed} bytes eligible to free."  # fmt: skip
                log.warning("image GC: FreeDiskSpaceFailed: %s", message)
                if self._node_event is not None:
                    self._node_event("FreeDiskSpaceFailed", message)
        return freed
