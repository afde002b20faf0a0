"""Strategic merge, JSON merge, JSON patch and server-side apply, from kubectl's real request bodies."""
from __future__ import annotations

import copy

import pytest

from edgeworkers.cloud.patch import (
    ConflictError,
    field_set,
    from_fields_v1,
    json_patch,
    merge_patch,
    path_string,
    record_update,
    server_side_apply,
    strategic_merge,
    to_fields_v1,
)

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"


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


# --- field sets ---


def test_field_set_round_trips_through_fields_v1():
    fields = field_set(pod(), "Pod")
    assert ("f:spec", "f:containers", 'k:{"name":"bb"}', "f:image") in fields
    assert ("f:spec", "f:containers", 'k:{"name":"bb"}', "f:command") in fields  # atomic list: one leaf
    assert ("f:metadata", "f:finalizers", 'v:"a/x"') in fields
    assert ("f:metadata", "f:name") not in fields
    v1 = to_fields_v1(fields)
    assert v1["f:metadata"]["f:labels"] == {".": {}, "f:app": {}}
    assert v1["f:spec"]["f:containers"]['k:{"name":"bb"}']["."] == {}
    assert from_fields_v1(v1) == fields


def test_path_string_is_what_kubernetes_prints():
    assert path_string(("f:spec", "f:containers", 'k:{"name":"bb"}', "f:image")) == \
        '.spec.containers[name="bb"].image'


# --- record_update ---


def test_create_gives_the_writer_every_field():
    obj = record_update(None, pod(), "kubectl-client-side-apply", now=T0)
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl-client-side-apply"
    assert entry["operation"] == "Update"
    assert entry["apiVersion"] == "v1"
    assert entry["time"] == T0
    assert entry["fieldsType"] == "FieldsV1"
    assert from_fields_v1(entry["fieldsV1"]) == field_set(pod(), "Pod")


def test_an_update_moves_changed_fields_to_the_writer():
    before = record_update(None, pod(), "creator", now=T0)
    after = copy.deepcopy(before)
    container(after)["image"] = "busybox:1.36"
    obj = record_update(before, after, "kubectl-edit", now=T1)
    by_manager = {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in obj["metadata"]["managedFields"]}
    image = ("f:spec", "f:containers", 'k:{"name":"bb"}', "f:image")
    assert by_manager["kubectl-edit"] == {image}
    assert image not in by_manager["creator"]
    assert ("f:spec", "f:containers", 'k:{"name":"bb"}', "f:command") in by_manager["creator"]


def test_status_writes_are_owned_through_the_status_subresource_only():
    before = record_update(None, pod(), "creator", now=T0)
    after = copy.deepcopy(before)
    after["status"] = {"phase": "Running"}
    obj = record_update(before, after, "edgeworkers", now=T1, subresource="status")
    entries = {e["manager"]: e for e in obj["metadata"]["managedFields"]}
    assert entries["edgeworkers"]["subresource"] == "status"
    assert from_fields_v1(entries["edgeworkers"]["fieldsV1"]) == {("f:status", "f:phase")}
    assert from_fields_v1(entries["creator"]["fieldsV1"]) == field_set(pod(), "Pod")


def test_a_write_carrying_managed_fields_sets_them_and_an_empty_entry_resets_them():
    live = record_update(None, pod(), "creator", now=T0)
    migrated = copy.deepcopy(live)
    migrated["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                                             "time": T1, "fieldsType": "FieldsV1",
                                             "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]
    obj = record_update(live, migrated, "kubectl", now=T2)
    assert [(e["manager"], e["operation"]) for e in obj["metadata"]["managedFields"]] == [("kubectl", "Apply")]
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in record_update(live, reset, "kubectl", now=T2)["metadata"]


# --- server-side apply ---


def applied_pod(image: str = "busybox:1.28", **extra) -> dict:
    spec = {"containers": [{"name": "bb", "image": image, **extra}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}, "spec": spec}


def test_apply_creates_and_records_the_manager():
    obj = server_side_apply(None, applied_pod(), "kubectl", False, T0)
    assert container(obj)["image"] == "busybox:1.28"
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["time"]) == ("kubectl", "Apply", T0)
    assert entry["fieldsV1"]["f:spec"]["f:containers"]['k:{"name":"bb"}'] == {".": {}, "f:image": {}, "f:name": {}}


def test_conflict_with_client_side_apply_names_the_field_and_manager():
    live = record_update(None, pod(), "kubectl-client-side-apply", now=T0)
    with pytest.raises(ConflictError) as info:
        server_side_apply(live, applied_pod("busybox:1.36"), "kubectl", False, T1)
    assert str(info.value) == ('Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using v1: '
                               '.spec.containers[name="bb"].image')
    assert info.value.fields == ['.spec.containers[name="bb"].image']
    assert info.value.manager == "kubectl-client-side-apply"
    assert info.value.causes() == [{"reason": "FieldManagerConflict",
                                    "message": 'conflict with "kubectl-client-side-apply" using v1',
                                    "field": '.spec.containers[name="bb"].image'}]


def test_several_conflicts_are_listed_per_manager():
    live = record_update(None, pod(), "kubectl-client-side-apply", now=T0)
    applied = applied_pod("busybox:1.36")
    applied["metadata"]["labels"]["app"] = "other"
    with pytest.raises(ConflictError) as info:
        server_side_apply(live, applied, "kubectl", False, T1)
    assert str(info.value) == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using v1:\n'
        '- .metadata.labels.app\n- .spec.containers[name="bb"].image')


def test_same_value_is_shared_and_force_takes_ownership():
    live = record_update(None, pod(), "kubectl-client-side-apply", now=T0)
    shared = server_side_apply(live, applied_pod(), "kubectl", False, T1)  # same values: no conflict
    assert container(shared)["command"] == ["sh", "-c", "sleep 3600"]
    forced = server_side_apply(shared, applied_pod("busybox:1.36"), "kubectl", True, T2)
    assert container(forced)["image"] == "busybox:1.36"
    assert container(forced)["command"] == ["sh", "-c", "sleep 3600"], "fields of other managers stay"
    entries = {e["manager"]: from_fields_v1(e["fieldsV1"]) for e in forced["metadata"]["managedFields"]}
    image = ("f:spec", "f:containers", 'k:{"name":"bb"}', "f:image")
    assert image in entries["kubectl"] and image not in entries["kubectl-client-side-apply"]


def test_fields_the_applier_drops_are_removed_unless_someone_else_owns_them():
    applied = server_side_apply(None, applied_pod(command=["sleep", "1"]), "kubectl", False, T0)
    labelled = copy.deepcopy(applied)
    labelled["metadata"]["labels"]["extra"] = "x"
    live = record_update(applied, labelled, "labeller", now=T0)
    second = server_side_apply(live, applied_pod(), "kubectl", False, T1)
    assert "command" not in container(second)
    assert second["metadata"]["labels"] == {"app": "web", "extra": "x"}
    [mine] = [e for e in second["metadata"]["managedFields"] if e["manager"] == "kubectl"]
    assert mine["time"] == T1


def without_managed_fields(obj: dict) -> dict:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}


def test_applying_twice_changes_nothing_but_the_time():
    first = server_side_apply(None, applied_pod(), "kubectl", False, T0)
    second = server_side_apply(first, applied_pod(), "kubectl", False, T1)
    assert without_managed_fields(second) == without_managed_fields(first)
    assert [e["time"] for e in second["metadata"]["managedFields"]] == [T1]


def test_a_dropped_container_is_removed_and_status_is_left_alone():
    applied = applied_pod()
    applied["spec"]["containers"].append({"name": "side", "image": "busybox"})
    live = server_side_apply(None, applied, "kubectl", False, T0)
    live["status"] = {"phase": "Running"}
    result = server_side_apply(live, applied_pod(), "kubectl", False, T1)
    assert [c["name"] for c in result["spec"]["containers"]] == ["bb"]
    assert result["status"] == {"phase": "Running"}


def configmap(data: dict, labels: dict | None = None) -> dict:
    meta = {"name": "c", **({"labels": labels} if labels else {})}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def test_apply_removes_dropped_map_entries_and_emptied_maps():
    live = server_side_apply(None, configmap({"a": "1", "b": "2"}, {"x": "y"}), "kubectl", False, T0)
    result = server_side_apply(live, configmap({"a": "1"}), "kubectl", False, T1)
    assert result["data"] == {"a": "1"}
    assert "labels" not in result["metadata"]
    assert result["metadata"]["managedFields"][0]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}


def test_two_appliers_conflict_without_using_an_api_version():
    live = server_side_apply(None, configmap({"a": "1"}), "alice", False, T0)
    with pytest.raises(ConflictError, match='^Apply failed with 1 conflict: conflict with "alice": .data.a$'):
        server_side_apply(live, configmap({"a": "2"}), "bob", False, T1)
    shared = server_side_apply(live, configmap({"a": "1", "b": "2"}), "bob", False, T1)
    assert shared["data"] == {"a": "1", "b": "2"}
    # alice stops applying "a": bob still owns it, so it stays
    kept = server_side_apply(shared, configmap({}), "alice", False, T2)
    assert kept["data"] == {"a": "1", "b": "2"}
