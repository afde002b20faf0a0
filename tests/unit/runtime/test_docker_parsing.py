"""DockerRuntime's pure translations of what the engine answers."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from edgeworkers.config import Settings
from edgeworkers.runtime import labels
from edgeworkers.runtime.docker import (
    LIST_FIELDS,
    _OnePoolAdapter,
    exit_reason,
    list_entries,
    log_config,
    log_rotation,
    parse_docker_time,
    pod_hostname,
    port_bindings,
)
from edgeworkers.runtime.fake import frame
from edgeworkers.runtime.protocol import split_frames
from edgeworkers.runtime.types import PodRef, PortMapping


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T14:30:38.366104123Z", datetime(2026, 11, 26, 14, 30, 38, 366104, tzinfo=UTC)),
        ("2026-11-26T14:30:38.5Z", datetime(2026, 11, 26, 14, 30, 38, 500000, tzinfo=UTC)),
        ("2026-11-26T14:30:38Z", datetime(2026, 11, 26, 14, 30, 38, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_docker_time(text: str | None, expected: datetime | None) -> None:
    assert parse_docker_time(text) == expected


@pytest.mark.parametrize(
    ("code", "oom", "reason"),
    [(0, False, "Completed"), (1, False, "Error"), (137, False, "Error"), (137, True, "OOMKilled")],
)
def test_exit_reason(code: int, oom: bool, reason: str) -> None:
    assert exit_reason(code, oom) == reason


def test_frames_are_split_in_order_and_a_partial_one_waits_for_its_bytes() -> None:
    stream = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"") + frame(1, b"partial")
    buffer = bytearray(stream[:-3])
    assert list(split_frames(buffer)) == [b"out\n", b"err\n", b""]
    buffer += stream[-3:]
    assert list(split_frames(buffer)) == [b"partial"] and buffer == bytearray()


def test_labels_round_trip_and_docker_name() -> None:
    pod = PodRef("0b1c", "kube-system", "dns")
    written = labels.for_container("edge-1", pod, "coredns", labels.TYPE_APP, 3, "abc")
    assert labels.pod_of(written) == pod
    assert written[labels.RESTART_COUNT] == "3" and written[labels.NODE] == "edge-1"
    assert labels.pod_of({labels.NODE: "edge-1"}) is None
    assert labels.docker_name(pod, "coredns", 3) == "k8s_coredns_dns_kube-system_0b1c_3"


@pytest.mark.parametrize(
    ("name", "hostname"),
    [("web", "web"), ("a" * 70, "a" * 63), ("a" * 62 + "-b", "a" * 62), ("x" * 62 + ".y", "x" * 62)],
)
def test_pod_hostname_is_cut_as_kubelet_does(name: str, hostname: str) -> None:
    assert pod_hostname(name) == hostname


def _entry(ident: str, pod: str) -> dict:
    """A list entry as the engine sends one (a user label named like an entry field included)."""
    return {
        "Id": ident, "Names": [f"/k8s_app_{pod}"], "Image": "busybox", "ImageID": "sha256:b", "Command": "sleep 1",
        "Created": 1700000000, "Ports": [], "State": "running", "Status": "Up 1 second",
        "Labels": {**labels.for_container("node", PodRef(f"uid-{pod}", "default", pod), "app", labels.TYPE_APP),
                   "Id": "a label"},
        "HostConfig": {"NetworkMode": "container:x"},
        "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2", "NetworkID": "n"}}},
        "Mounts": [{"Type": "bind", "Source": "/a", "Destination": "/b"}],
    }  # fmt: skip


@pytest.mark.parametrize("indent", [None, 2])
def test_list_entries_are_the_engines_cut_to_the_fields_read(indent: int | None) -> None:
    entries = [_entry("a", "web"), _entry("b", "db")]
    parsed = list_entries(f" {json.dumps(entries, indent=indent)}\n")
    assert parsed == [{field: entry[field] for field in LIST_FIELDS} for entry in entries]
    assert parsed[0]["Labels"][labels.NODE] is parsed[1]["Labels"][labels.NODE]  # repeated strings kept once
    assert list_entries("[]") == list_entries(" [ ]\n") == []


@pytest.mark.parametrize("text", ["", "{}", "[", '[{"Id": "a"}', '[{"Id": "a"} {"Id": "b"}]', '[{"Id": "a"},]',
                                  '[{"Id": "a"}] x', "[1,", "[1]"])
def test_list_entries_refuses_what_is_no_json_array(text: str) -> None:
    with pytest.raises(ValueError):
        list_entries(text)


def test_the_engines_socket_has_one_connection_pool_for_every_url() -> None:
    adapter = _OnePoolAdapter("/var/run/docker.sock")
    pool = adapter.get_connection("http+docker://localhost/v1.47/containers/a/json")
    assert adapter.get_connection("http+docker://localhost/v1.47/containers/b/stats?stream=0") is pool


def test_host_ports_become_dockers_port_bindings() -> None:
    mappings = (PortMapping(80, 8080), PortMapping(80, 9090, host_ip="127.0.0.1"), PortMapping(53, 1053, "UDP"),
                PortMapping(5000, 15000, "SCTP"))
    assert port_bindings(mappings) == {"80/tcp": [8080, ("127.0.0.1", 9090)], "53/udp": [1053], "5000/sctp": [15000]}
    assert port_bindings(()) == {}


def test_host_ports_survive_the_sandbox_label() -> None:
    mappings = (PortMapping(80, 8080, "TCP", "127.0.0.1"), PortMapping(53, 1053, "UDP"))
    assert labels.decode_ports(labels.encode_ports(mappings)) == mappings
    assert labels.encode_ports(()) == {} and labels.decode_ports({}) == ()
    assert labels.decode_ports({labels.HOST_PORTS: "not json"}) == ()  # a label not ours holds nothing


def test_containers_log_to_json_file_rotated_as_kubelet_rotates() -> None:
    assert log_config(10 * 1024 * 1024, 5) == {"Type": "json-file", "Config": {"max-size": "10485760", "max-file": "5"}}
    assert log_config(0, 5) == {"Type": "json-file", "Config": {}}  # 0: no rotation
    assert log_rotation(Settings()) == {"log_max_size_bytes": 10 * 1024 * 1024, "log_max_files": 5}
    with pytest.raises(ValueError, match="max files 0"):
        log_config(1024, 0)
    with pytest.raises(ValueError, match="EDGEWORKERS_CONTAINER_LOG_MAX_SIZE 'big' is not a quantity"):
        log_rotation(Settings(container_log_max_size="big"))
