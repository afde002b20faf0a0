"""Image GC: the policy's checks, the amount to free and the LRU selection from tables (after kubelet's image GC
tests), then the runner's first-seen/last-used tracking in Redis on a FakeRuntime."""
from __future__ import annotations

import fakeredis
import pytest

from edgeworkers.constants import KEY_IMAGES
from edgeworkers.gc.images import ImageGC, ImageGCPolicy, ImageRecord, bytes_to_free, select_images
from edgeworkers.runtime.fake import FakeRuntime
from edgeworkers.runtime.types import ContainerConfig, PodRef, SandboxConfig
from tests.unit.clock import Clock

GB = 1_000_000_000


@pytest.mark.parametrize(
    ("high", "low", "error"),
    [
        (85, 80, None),
        (100, 80, None),
        (80, 80, None),
        (80, 85, "LowThresholdPercent 85 can not be higher than HighThresholdPercent 80"),
        (101, 80, "HighThresholdPercent 101: must be in the range"),
        (85, -1, "LowThresholdPercent -1: must be in the range"),
    ],
)
def test_the_policy_is_checked_when_built(high, low, error) -> None:
    if error is None:
        ImageGCPolicy(high, low)
    else:
        with pytest.raises(ValueError, match=error):
            ImageGCPolicy(high, low)


@pytest.mark.parametrize(
    ("total", "used", "high", "low", "amount"),
    [
        (100 * GB, 84 * GB, 85, 80, 0),  # below high
        (100 * GB, 85 * GB, 85, 80, 5 * GB),  # at high: down to low
        (100 * GB, 95 * GB, 85, 80, 15 * GB),
        (100 * GB, 99 * GB, 100, 80, 0),  # high 100: disabled
        (0, 0, 85, 80, 0),
    ],
)
def test_bytes_to_free(total, used, high, low, amount) -> None:
    assert bytes_to_free(total, used, ImageGCPolicy(high, low)) == amount


def rec(ident: str, size: int = GB, first: float = 0.0, last: float = 0.0, **kwargs) -> ImageRecord:
    return ImageRecord(ident, size, first, last, **kwargs)


@pytest.mark.parametrize(
    ("images", "amount", "chosen"),
    [
        ([rec("a", last=30), rec("b", last=10), rec("c", last=20)], 1, ["b"]),  # least recently used first
        ([rec("a", last=30), rec("b", last=10), rec("c", last=20)], GB + 1, ["b", "c"]),
        ([rec("a", last=30), rec("b", last=10), rec("c", last=20)], 10 * GB, ["b", "c", "a"]),  # all it can
        ([rec("a", last=10, in_use=True), rec("b", last=20)], 1, ["b"]),  # never one in use
        ([rec("a", last=10, pinned=True), rec("b", last=20)], 1, ["b"]),  # never the sandbox image
        ([rec("a", last=10, first=990), rec("b", last=20)], 1, ["b"]),  # never one younger than min age
        ([rec("a", last=10), rec("b", last=20)], 0, []),
        ([rec("a", last=10, first=5), rec("b", last=10, first=1)], 1, ["b"]),  # same last use: the earliest seen
    ],
)
def test_lru_selection(images, amount, chosen) -> None:
    picked = select_images(images, amount, 1000.0, ImageGCPolicy(85, 80, min_age_s=60))
    assert [i.id for i in picked] == chosen


def test_the_runner_tracks_use_in_redis_and_frees_the_least_recently_used() -> None:
    runtime = FakeRuntime("node", images=["edgeworkers/pause:latest", "busybox", "old", "older"])
    client = fakeredis.FakeRedis()
    clock = Clock()
    usage = [(100 * GB, 10 * GB)]
    gc = ImageGC(runtime, client, lambda: usage[0], ImageGCPolicy(85, 80, min_age_s=60), "edgeworkers/pause:latest",
                 clock)  # fmt: skip
    pod = PodRef("p", "default", "p")
    sandbox = runtime.create_sandbox(SandboxConfig(pod))
    runtime.create_container(sandbox, pod, ContainerConfig("app", "busybox"))
    assert gc.collect() == 0
    assert client.hlen(KEY_IMAGES) == 4
    clock.now += 100
    gc.records()  # "old" is not used, but busybox is: its last use moves
    usage[0] = (100 * GB, 95 * GB)
    clock.now += 100
    assert gc.collect() == 2 * 1_000_000
    assert runtime.image_present("busybox") and runtime.image_present("edgeworkers/pause:latest")
    assert not runtime.image_present("old") and not runtime.image_present("older")


def test_high_100_never_lists_anything() -> None:
    runtime = FakeRuntime("node")
    gc = ImageGC(runtime, fakeredis.FakeRedis(), lambda: (100, 100), ImageGCPolicy(100, 80), "x")
    runtime.calls.clear()
    assert gc.collect() == 0 and runtime.calls == []


def test_the_sandbox_image_is_pinned_whether_its_tag_is_written_or_not() -> None:
    runtime = FakeRuntime("node", images=["edgeworkers/pause:latest", "old"])
    gc = ImageGC(runtime, fakeredis.FakeRedis(), lambda: (100, 99), ImageGCPolicy(85, 80, min_age_s=0),
                 "edgeworkers/pause")  # fmt: skip
    gc.collect()
    assert runtime.image_present("edgeworkers/pause:latest") and not runtime.image_present("old")


def test_an_image_the_engine_refuses_is_skipped_for_the_next_one() -> None:
    runtime = FakeRuntime("node", images=["edgeworkers/pause:latest", "a", "b"])
    gc = ImageGC(runtime, fakeredis.FakeRedis(), lambda: (100 * GB, 81 * GB), ImageGCPolicy(80, 80, min_age_s=0),
                 "edgeworkers/pause:latest")  # fmt: skip
    from edgeworkers.runtime.errors import ImageInUse

    first = min(runtime.list_images(), key=lambda image: image.id if image.tags != ["edgeworkers/pause:latest"]
                else "~")  # fmt: skip
    runtime.fail("remove_image", ImageInUse("used by a container of another agent"))
    assert gc.collect() == 1_000_000  # the first choice refused, the other one removed
    assert runtime.image_present(first.tags[0])


def test_not_freeing_enough_is_a_free_disk_space_failed_warning_about_the_node() -> None:
    runtime = FakeRuntime("node", images=["edgeworkers/pause:latest", "busybox"])
    warnings: list[tuple[str, str]] = []
    gc = ImageGC(runtime, fakeredis.FakeRedis(), lambda: (100 * GB, 95 * GB), ImageGCPolicy(85, 80, min_age_s=0),
                 "edgeworkers/pause:latest", node_event=lambda reason, message: warnings.append((reason, message)))
    pod = PodRef("p", "default", "p")
    runtime.create_container(runtime.create_sandbox(SandboxConfig(pod)), pod, ContainerConfig("app", "busybox"))
    assert gc.collect() == 0
    assert warnings == [("FreeDiskSpaceFailed", "Failed to garbage collect required amount of images. Attempted to "
                         f"free {15 * GB} bytes, but only found 0 bytes eligible to free.")]  # fmt: skip
