"""The files of configMap, secret, downwardAPI and projected volumes, from tables."""
from __future__ import annotations

import pytest

from edgeworkers.k8s.pod import Volume
from edgeworkers.volumes.builders import volume_payload
from edgeworkers.volumes.downward import PodFacts, format_map, go_quote
from edgeworkers.volumes.errors import ConfigSourceError, UnsafePath
from tests.unit.pods.podkit import container, make_pod
from tests.unit.volumes.sources import FakeSources

SOURCES = FakeSources(configmaps={"cfg": {"a.conf": "A", "b.conf": "B"}},
                      secrets={"creds": {"user": b"admin", "password": b"s3cret"}})
FACTS = PodFacts("192.0.2.1", ("10.88.0.2",), 2000, 2**30)
POD = make_pod(
    labels={"app": "web", "tier": 'front "end"'},
    containers=[container("app", resources={"limits": {"memory": "64Mi", "cpu": "250m"}})],
)


def payload(volume: dict) -> dict[str, tuple[bytes, int]]:
    files = volume_payload(POD, Volume.from_dict({"name": "v", **volume}), SOURCES, FACTS)
    return {path: (item.data, item.mode) for path, item in files.items()}


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ({"configMap": {"name": "cfg"}}, {"a.conf": (b"A", 0o644), "b.conf": (b"B", 0o644)}),
        ({"configMap": {"name": "cfg", "defaultMode": 0o400}}, {"a.conf": (b"A", 0o400), "b.conf": (b"B", 0o400)}),
        ({"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "conf/app.conf", "mode": 0o600}]}},
         {"conf/app.conf": (b"A", 0o600)}),
        ({"configMap": {"name": "absent", "optional": True}}, {}),
        ({"configMap": {"name": "cfg", "optional": True, "items": [{"key": "zzz", "path": "z"}]}}, {}),
        ({"secret": {"secretName": "creds"}}, {"user": (b"admin", 0o644), "password": (b"s3cret", 0o644)}),
        ({"secret": {"secretName": "creds", "items": [{"key": "password", "path": "pw"}], "defaultMode": 0o440}},
         {"pw": (b"s3cret", 0o440)}),
        ({"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                                    {"path": "mem", "resourceFieldRef": {"containerName": "app",
                                                                         "resource": "limits.memory",
                                                                         "divisor": "1Mi"}}]}},
         {"labels": (b'app="web"\ntier="front \\"end\\""', 0o644), "name": (b"web", 0o644), "mem": (b"64", 0o644)}),
        ({"projected": {"defaultMode": 0o444, "sources": [
            {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "a"}]}},
            {"secret": {"name": "creds", "items": [{"key": "user", "path": "u", "mode": 0o400}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ]}}, {"a": (b"A", 0o444), "u": (b"admin", 0o400), "ns": (b"default", 0o444)}),
    ],
)  # fmt: skip
def test_volume_files(volume: dict, expected: dict) -> None:
    assert payload(volume) == expected


@pytest.mark.parametrize(
    ("volume", "error", "message"),
    [
        ({"configMap": {"name": "absent"}}, ConfigSourceError, 'configmap "absent" not found'),
        ({"secret": {"secretName": "absent"}}, ConfigSourceError, 'secret "absent" not found'),
        ({"configMap": {"name": "cfg", "items": [{"key": "zzz", "path": "z"}]}}, ConfigSourceError,
         'configmap "cfg" references non-existent config key: zzz'),
        ({"secret": {"secretName": "creds", "items": [{"key": "zzz", "path": "z"}]}}, ConfigSourceError,
         'secret "creds" references non-existent secret key: zzz'),
        ({"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "../../etc/cron.d/x"}]}}, UnsafePath,
         "must not contain '..'"),
        ({"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "/etc/passwd"}]}}, UnsafePath,
         "must be a relative path"),
        ({"projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}, ConfigSourceError,
         "serviceAccountToken projections are not supported on this node"),
        ({"projected": {"sources": [{"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "x"}]}},
                                    {"secret": {"name": "creds", "items": [{"key": "user", "path": "x"}]}}]}},
         ConfigSourceError, "more than one source projects 'x'"),
    ],
)  # fmt: skip
def test_what_a_volume_cannot_be_made_of(volume: dict, error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        payload(volume)
    assert message in str(raised.value) and "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("text", "quoted"),
    [("web", '"web"'), ('a "b"', '"a \\"b\\""'), ("back\\slash", '"back\\\\slash"'), ("tab\there", '"tab\\there"'),
     ("line\nnext", '"line\\nnext"'), ("\x01", '"\\x01"'), ("héllo", '"héllo"'), ("\u200b", '"\\u200b"')],
)  # fmt: skip
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_format_map_sorts_and_has_no_final_newline() -> None:
    assert format_map({"b": "2", "a": "1"}) == 'a="1"\nb="2"'
    assert format_map({}) == ""
