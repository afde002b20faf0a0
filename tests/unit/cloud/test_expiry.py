import datetime as dt

import pytest

from edgeworkers.cloud.expiry import expired_events

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def event(name, last=None, event_time=None, created="2026-01-01T11:59:00Z"):
    obj = {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created}}
    if last:
        obj["lastTimestamp"] = last
    if event_time:
        obj["eventTime"] = event_time
    return obj


@pytest.mark.parametrize("obj, expired", [
    (event("fresh", last="2026-01-01T11:30:00Z"), False),
    (event("old", last="2026-01-01T10:59:59Z"), True),
    (event("repeated", last="2026-01-01T11:30:00Z", created="2026-01-01T08:00:00Z"), False),
    (event("micro", event_time="2026-01-01T10:00:00.123456Z"), True),
    (event("created-only", created="2026-01-01T10:00:00Z"), True),
    (event("unparseable", last="yesterday", created="2026-01-01T11:59:00Z"), False),
])
def test_events_expire_an_hour_after_they_last_happened(obj, expired):
    assert expired_events([obj], NOW) == ([("default", obj["metadata"]["name"])] if expired else [])
