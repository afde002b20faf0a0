import pytest

from edgeworkers.cloud.scale import scaled, to_scale
from edgeworkers.cloud.selectors import from_label_selector
from edgeworkers.k8s.status import APIError


def deployment(replicas=3, selector=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                         "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "web"}},
            "spec": {"replicas": replicas, "selector": selector or {"matchLabels": {"app": "web", "tier": "a"}}},
            "status": {"replicas": 2}}


def test_a_scale_reads_the_workload():
    assert to_scale(deployment()) == {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "7",
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=web,tier=a"}}


def test_a_replication_controllers_selector_is_a_label_map():
    rc = {"kind": "ReplicationController", "metadata": {"name": "r"}, "spec": {"replicas": 1, "selector": {"a": "b"}}}
    assert to_scale(rc)["status"] == {"replicas": 0, "selector": "a=b"}


def test_scaling_changes_only_the_replicas_and_keeps_the_precondition():
    new = scaled(deployment(), {"kind": "Scale", "metadata": {"resourceVersion": "6"}, "spec": {"replicas": 5}})
    assert new["spec"] == {**deployment()["spec"], "replicas": 5}
    assert new["metadata"]["resourceVersion"] == "6" and new["status"] == {"replicas": 2}


@pytest.mark.parametrize("body", [{"spec": {"replicas": -1}}, {"spec": {"replicas": "2"}}, {"spec": {"replicas": True}}])
def test_invalid_replicas_are_refused(body):
    with pytest.raises(APIError) as refused:
        scaled(deployment(), body)
    assert refused.value.status["code"] == 422 and "spec.replicas" in refused.value.status["message"]


def test_a_body_that_is_no_scale_is_a_bad_request():
    with pytest.raises(APIError) as refused:
        scaled(deployment(), {"kind": "Deployment", "spec": {"replicas": 1}})
    assert refused.value.status["code"] == 400


def test_label_selector_objects_and_their_string_form():
    selector = from_label_selector({"matchLabels": {"b": "2"}, "matchExpressions": [
        {"key": "a", "operator": "In", "values": ["y", "x"]}, {"key": "c", "operator": "Exists"},
        {"key": "d", "operator": "DoesNotExist"}, {"key": "e", "operator": "NotIn", "values": ["z"]}]})
    assert str(selector) == "a in (x,y),b=2,c,!d,e notin (z)"
    assert selector.matches({"a": "x", "b": "2", "c": ""}) and not selector.matches({"a": "x", "b": "2"})
    assert from_label_selector(None) is None and from_label_selector({}).matches({"any": "thing"})
    for bad in ({"key": "a", "operator": "In"}, {"key": "a", "operator": "Exists", "values": ["x"]},
                {"key": "a", "operator": "Near"}):
        with pytest.raises(ValueError):
            from_label_selector({"matchExpressions": [bad]})
