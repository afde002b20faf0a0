"""The probe results store in Redis (fakeredis): written on every run, telling when the stored result changed."""
from __future__ import annotations

from edgeworkers.status.proberesults import RedisProbeResults


def test_a_result_written_again_is_no_change_and_a_lost_one_is(fake_redis) -> None:
    results = RedisProbeResults(fake_redis)
    assert results.set("c1", "readiness", True) is True
    assert results.set("c1", "readiness", True) is False
    assert results.set("c1", "readiness", False) is True
    fake_redis.flushdb()  # Redis lost its data
    assert results.set("c1", "readiness", False) is True
    assert results.get(["c1", "c2"]) == {"c1": {"readiness": False}}
