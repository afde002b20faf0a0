"""Strategic merge, JSON merge and JSON patch, from kubectl's real request bodies."""
from __future__ import annotations

import pytest

from edgeworkers.cloud.patch import json_patch, merge_patch, strategic_merge


def pod(**spec_overrides) -> dict:
    spec = {
        "containers": [
            {
                "name": "bb",
                "image": "busybox:1.28",
                "command": ["sh", "-c", "sleep 3600"],
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "a", "operator": "Exists"}],
    }
    spec.update(spec_overrides)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["a/x"]},
        "spec": spec,
    }


def container(obj: dict, name: str = "bb") -> dict:
    return next(c for c in obj["spec"]["containers"] if c["name"] == name)


# --- strategic merge ---


def test_kubectl_apply_patch_changes_the_image_and_keeps_the_command():
    live = pod()
    body = {"spec": {"$setElementOrder/containers": [{"name": "bb"}],
                     "containers": [{"image": "busybox:1.36", "name": "bb"}]}}
    result = strategic_merge(live, body, "Pod")
    assert container(result)["image"] == "busybox:1.36"
    assert container(result)["command"] == ["sh", "-c", "sleep 3600"]
    assert container(result)["env"] == live["spec"]["containers"][0]["env"]
    assert live["spec"]["containers"][0]["image"] == "busybox:1.28", "the original is not modified"


def test_kubectl_apply_label_change_with_last_applied_annotation():
    body = {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
                         "labels": {"app": "web2", "tier": "edge"}}}
    result = strategic_merge(pod(), body, "Pod")
    assert result["metadata"]["labels"] == {"app": "web2", "tier": "edge"}
    assert result["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{}\n"
    assert result["spec"] == pod()["spec"]


@pytest.mark.parametrize(
    ("patch", "check"),
    [
        # env merges by name: A changes, C is added, B stays
        ({"spec": {"containers": [{"name": "bb", "env": [{"name": "A", "value": "9"}, {"name": "C", "value": "3"}]}]}},
         lambda r: container(r)["env"] == [{"name": "A", "value": "9"}, {"name": "B", "value": "2"},
                                           {"name": "C", "value": "3"}]),
        # ports merge by containerPort
        ({"spec": {"containers": [{"name": "bb", "ports": [{"containerPort": 8080}]}]}},
         lambda r: [p["containerPort"] for p in container(r)["ports"]] == [80, 8080]),
        # volumeMounts merge by mountPath
        ({"spec": {"containers": [{"name": "bb", "volumeMounts": [{"name": "data", "mountPath": "/data",
                                                                   "readOnly": True}]}]}},
         lambda r: container(r)["volumeMounts"] == [{"name": "data", "mountPath": "/data", "readOnly": True}]),
        # a new container is appended
        ({"spec": {"containers": [{"name": "side", "image": "busybox"}]}},
         lambda r: [c["name"] for c in r["spec"]["containers"]] == ["bb", "side"]),
        # tolerations have no merge key: replaced
        ({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}},
         lambda r: r["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]),
        # command is atomic: replaced
        ({"spec": {"containers": [{"name": "bb", "command": ["true"]}]}},
         lambda r: container(r)["command"] == ["true"]),
        # null deletes a key
        ({"metadata": {"labels": {"app": None}}, "spec": {"tolerations": None}},
         lambda r: r["metadata"]["labels"] == {} and "tolerations" not in r["spec"]),
        # finalizers merge as a set
        ({"metadata": {"finalizers": ["a/x", "b/y"]}},
         lambda r: r["metadata"]["finalizers"] == ["a/x", "b/y"]),
        # $deleteFromPrimitiveList removes from a merged primitive list
        ({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}},
         lambda r: r["metadata"]["finalizers"] == []),
        # $patch: delete on a list item removes it by key
        ({"spec": {"containers": [{"name": "bb", "env": [{"name": "A", "$patch": "delete"}]}]}},
         lambda r: container(r)["env"] == [{"name": "B", "value": "2"}]),
        # $patch: replace on a map replaces it whole
        ({"spec": {"containers": [{"name": "bb", "$patch": "replace", "image": "x"}]}},
         lambda r: r["spec"]["containers"] == [{"name": "bb", "image": "x"}]),
        # $patch: replace in a list replaces the list
        ({"spec": {"containers": [{"name": "new", "image": "y"}, {"$patch": "replace"}]}},
         lambda r: r["spec"]["containers"] == [{"name": "new", "image": "y"}]),
        # $patch: delete on a map empties it
        ({"metadata": {"labels": {"$patch": "delete"}}},
         lambda r: r["metadata"]["labels"] == {}),
        # $retainKeys drops the other keys of a volume (kubectl's change of volume source)
        ({"spec": {"volumes": [{"name": "data", "$retainKeys": ["hostPath", "name"],
                                "hostPath": {"path": "/tmp"}}]}},
         lambda r: r["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/tmp"}}]),
        # directives inside a value new to the object are not stored
        ({"spec": {"securityContext": {"runAsUser": 1, "fsGroup": None}}},
         lambda r: r["spec"]["securityContext"] == {"runAsUser": 1}),
    ],
)
def test_strategic_merge_table(patch, check):
    assert check(strategic_merge(pod(), patch, "Pod"))


def test_set_element_order_orders_patched_items_and_keeps_server_only_ones_in_place():
    live = pod(containers=[{"name": "a"}, {"name": "server"}, {"name": "b"}])
    body = {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                     "containers": [{"name": "b", "image": "x"}]}}
    result = strategic_merge(live, body, "Pod")
    assert [c["name"] for c in result["spec"]["containers"]] == ["server", "b", "a"]
    assert container(result, "b")["image"] == "x"


def test_kubectl_apply_removing_a_container_sends_patch_delete():
    live = pod(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}])
    body = {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                     "containers": [{"$patch": "delete", "name": "b"}]}}
    assert strategic_merge(live, body, "Pod")["spec"]["containers"] == [{"name": "a", "image": "x"}]


def test_node_status_conditions_merge_by_type():
    node = {"kind": "Node", "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure",
                                                                             "status": "False"}]}}
    body = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    result = strategic_merge(node, body, "Node")
    assert result["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                              {"type": "MemoryPressure", "status": "False"}]


def test_unknown_kind_replaces_lists_but_honours_nulls():
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}
    assert strategic_merge(cm, {"data": {"a": None, "c": "3"}}, "ConfigMap")["data"] == {"b": "2", "c": "3"}


def test_a_keyed_item_without_its_merge_key_is_an_error():
    with pytest.raises(ValueError, match="does not contain declared merge key: name"):
        strategic_merge(pod(), {"spec": {"containers": [{"image": "x"}]}}, "Pod")


# --- JSON merge patch and JSON patch ---


def test_merge_patch_replaces_lists_and_deletes_nulls():
    result = merge_patch(pod(), {"metadata": {"labels": {"app": None, "x": "y"}},
                                 "spec": {"containers": [{"name": "bb", "image": "i"}]}})
    assert result["metadata"]["labels"] == {"x": "y"}
    assert result["spec"]["containers"] == [{"name": "bb", "image": "i"}]


def test_json_patch_applies_operations():
    result = json_patch(pod(), [{"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.36"},
                                {"op": "add", "path": "/metadata/labels/x", "value": "y"}])
    assert container(result)["image"] == "busybox:1.36"
    assert result["metadata"]["labels"] == {"app": "web", "x": "y"}


@pytest.mark.parametrize("ops", [
    [{"op": "test", "path": "/metadata/name", "value": "other"}],
    [{"op": "remove", "path": "/spec/nothing"}],
    [{"op": "bogus", "path": "/a"}],
    {"op": "add"},
])
def test_json_patch_failures_raise_value_error(ops):
    with pytest.raises(ValueError):
        json_patch(pod(), ops)
