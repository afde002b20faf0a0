"""The KubeEdge-style message envelope."""
from __future__ import annotations

import time

import pytest

from edgeworkers.messages import Message, parse_resource


def test_for_object_fills_header_and_route_as_kubeedge_does():
    pod = {"metadata": {"name": "nginx", "namespace": "web", "resourceVersion": "42"}}
    before = int(time.time() * 1000)
    message = Message.for_object("pod", pod, "insert", source="edgecontroller", parent_msg_id="p1")
    data = message.to_dict()
    assert data["route"] == {
        "source": "edgecontroller",
        "group": "resource",
        "resource": "web/pod/nginx",
        "operation": "insert",
    }
    assert data["header"]["resourceversion"] == "42"
    assert data["header"]["parent_msg_id"] == "p1"
    assert data["header"]["sync"] is False
    assert before <= data["header"]["timestamp"] <= int(time.time() * 1000)
    assert data["content"] == pod
    assert message.key == "web/nginx"


def test_round_trip_through_a_dict():
    message = Message.for_object("pod", {"metadata": {"name": "a"}}, "delete", source="file")
    assert Message.from_dict(message.to_dict()) == message
    assert message.route.resource == "default/pod/a"


def test_every_message_gets_its_own_id():
    pod = {"metadata": {"name": "a"}}
    assert Message.for_object("pod", pod, "insert", "file").header.msg_id != Message.for_object(
        "pod", pod, "insert", "file"
    ).header.msg_id


def test_unknown_operation_is_rejected():
    with pytest.raises(ValueError):
        Message.from_dict({"route": {"source": "x", "resource": "a/pod/b", "operation": "explode"}})


@pytest.mark.parametrize("text", ["a/b", "a/pod/b/c", "/pod/b", "a//b"])
def test_parse_resource_rejects_malformed_keys(text):
    with pytest.raises(ValueError):
        parse_resource(text)


def test_parse_resource_splits_namespace_kind_name():
    assert parse_resource("default/configmap/cfg") == ("default", "configmap", "cfg")
