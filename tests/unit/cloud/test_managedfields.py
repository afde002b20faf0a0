"""Field ownership: managedFields of every write and server-side apply, from kubectl's real request bodies."""
from __future__ import annotations

import copy

import pytest

from edgeworkers.cloud.managedfields import (
    ConflictError,
    field_set,
    from_fields_v1,
    path_string,
    record_update,
    server_side_apply,
    to_fields_v1,
)
from tests.unit.cloud.test_patch import container, pod

T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"


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
