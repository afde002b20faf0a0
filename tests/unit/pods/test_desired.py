"""pods.desired: validate, default, keep identity, store, then enqueue."""
from __future__ import annotations

import pytest

from edgeworkers import constants
from edgeworkers.k8s.status import APIError
from edgeworkers.messages import Message
from edgeworkers.metamanager.store import POD, MetaStore
from edgeworkers.pods.desired import apply_pod, delete_pod, resync_all


@pytest.fixture
def store(fake_redis) -> MetaStore:
    return MetaStore(fake_redis)


def manifest(image: str = "busybox", **meta) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", **meta},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def test_apply_stores_a_defaulted_pod_then_enqueues_an_insert(store):
    sent: list[Message] = []
    message = apply_pod(store, sent.append, manifest())
    stored = store.get(POD, "default", "web")
    assert sent == [message]
    assert message.route.operation == "insert" and message.route.resource == "default/pod/web"
    assert message.content == stored
    meta = stored["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["resourceVersion"] == "1"
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["annotations"][constants.ANNOTATION_SOURCE] == constants.SOURCE_FILE
    assert stored["spec"]["restartPolicy"] == "Always"
    assert stored["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # busybox = busybox:latest


def test_reapplying_keeps_uid_and_creation_time_and_bumps_the_resource_version(store):
    first = apply_pod(store, lambda m: None, manifest()).content["metadata"]
    sent: list[Message] = []
    apply_pod(store, sent.append, manifest(image="busybox:1.36"))
    second = store.get(POD, "default", "web")
    assert second["metadata"]["uid"] == first["uid"]
    assert second["metadata"]["creationTimestamp"] == first["creationTimestamp"]
    assert second["metadata"]["resourceVersion"] == "2"
    assert second["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert [m.route.operation for m in sent] == ["update"]


def test_an_invalid_pod_is_refused_with_the_kubernetes_message_and_nothing_is_stored(store):
    sent: list[Message] = []
    bad = manifest()
    bad["spec"]["containers"][0]["name"] = "Web_1"
    with pytest.raises(APIError) as caught:
        apply_pod(store, sent.append, bad)
    assert caught.value.code == 422
    assert str(caught.value).startswith('Pod "web" is invalid: spec.containers[0].name: Invalid value: "Web_1"')
    assert store.keys(POD) == set() and sent == []


@pytest.mark.parametrize(
    ("change", "decoding_error"),
    [
        (lambda pod: pod["spec"]["containers"][0].update(command=["sleep", 5]),
         "json: cannot unmarshal number into Go struct field Container.spec.containers.command of type string"),
        (lambda pod: pod["metadata"].update(name=5),
         "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.name of type string"),
        (lambda pod: pod.update(spec=5), "json: cannot unmarshal number into Go struct field Pod.spec of type v1.PodSpec"),
    ],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_the_api_servers_bad_request_and_nothing_is_stored(store, change, decoding_error):
    sent: list[Message] = []
    bad = manifest()
    change(bad)
    with pytest.raises(APIError) as caught:
        apply_pod(store, sent.append, bad)
    assert caught.value.code == 400
    assert str(caught.value) == f'Pod in version "v1" cannot be handled as a Pod: {decoding_error}'
    assert store.keys(POD) == set() and sent == []


def test_delete_marks_the_pod_deleted_with_its_grace_period_then_enqueues_a_delete(store):
    pod = manifest(namespace="team")
    pod["spec"]["terminationGracePeriodSeconds"] = 5
    apply_pod(store, lambda m: None, pod)
    sent: list[Message] = []
    delete_pod(store, sent.append, "team/web")
    meta = store.get(POD, "team", "web")["metadata"]
    assert meta["deletionTimestamp"].endswith("Z")
    assert meta["deletionGracePeriodSeconds"] == 5
    assert meta["resourceVersion"] == "2"
    [message] = sent
    assert message.route.operation == "delete" and message.key == "team/web"


def test_a_second_delete_may_shorten_the_grace_period_never_lengthen_it(store):
    apply_pod(store, lambda m: None, manifest())
    delete_pod(store, lambda m: None, "default/web", grace_period_s=10)
    delete_pod(store, lambda m: None, "default/web", grace_period_s=20)
    assert store.get(POD, "default", "web")["metadata"]["deletionGracePeriodSeconds"] == 10
    delete_pod(store, lambda m: None, "default/web", grace_period_s=0)
    assert store.get(POD, "default", "web")["metadata"]["deletionGracePeriodSeconds"] == 0


def test_applying_a_pod_being_deleted_makes_a_new_pod(store):
    first = apply_pod(store, lambda m: None, manifest()).content["metadata"]
    delete_pod(store, lambda m: None, "default/web")
    message = apply_pod(store, lambda m: None, manifest())
    meta = store.get(POD, "default", "web")["metadata"]
    assert message.route.operation == "insert"
    assert meta["uid"] != first["uid"]
    assert "deletionTimestamp" not in meta
    assert meta["resourceVersion"] == "3"


def test_deleting_an_absent_pod_is_not_found(store):
    with pytest.raises(APIError) as caught:
        delete_pod(store, lambda m: None, "default/ghost")
    assert caught.value.code == 404
    assert str(caught.value) == 'pods "ghost" not found'


def test_resync_all_enqueues_an_update_per_desired_pod_and_a_delete_per_deleting_one(store):
    apply_pod(store, lambda message: None, manifest())
    apply_pod(store, lambda message: None, {**manifest(), "metadata": {"name": "gone"}})
    delete_pod(store, lambda message: None, "default/gone")
    sent: list[Message] = []
    assert sorted(resync_all(store, sent.append)) == ["default/gone", "default/web"]
    assert {m.key: m.route.operation for m in sent} == {"default/web": "update", "default/gone": "delete"}
    assert all(m.route.source == "edged" for m in sent)


def test_resync_all_of_an_empty_store_sends_nothing(store):
    sent: list[Message] = []
    assert resync_all(store, sent.append) == [] and sent == []


class RacingStore(MetaStore):
    """Both writers read the pod before either writes: the race two concurrent `pod apply` runs can meet."""

    def __init__(self, client, barrier) -> None:
        super().__init__(client)
        self.barrier = barrier

    def get(self, kind, namespace, name):
        found = super().get(kind, namespace, name)
        self.barrier.wait(timeout=5)
        return found


@pytest.mark.parametrize("second", ["apply", "delete"])
def test_two_concurrent_writes_of_one_pod_never_both_succeed(fake_redis, second):
    import threading

    from edgeworkers.metamanager.store import MetaStore as Plain

    apply_pod(Plain(fake_redis), lambda m: None, manifest())
    racing = RacingStore(fake_redis, threading.Barrier(2))
    outcomes: list[str] = []

    def run(op: str, image: str) -> None:
        try:
            if op == "apply":
                apply_pod(racing, lambda m: None, manifest(image=image))
            else:
                delete_pod(racing, lambda m: None, "default/web")
            outcomes.append("ok")
        except APIError as error:
            outcomes.append(f"{error.code} {error.reason}")

    threads = [threading.Thread(target=run, args=("apply", "busybox:1.36")),
               threading.Thread(target=run, args=(second, "busybox:1.28"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(outcomes) == ["409 Conflict", "ok"]
    assert Plain(fake_redis).get(POD, "default", "web")["metadata"]["resourceVersion"] == "2"


def test_a_pod_reapplied_after_its_delete_gets_a_version_past_the_tombstone(store):
    apply_pod(store, lambda m: None, manifest())
    delete_pod(store, lambda m: None, "default/web")
    store.delete(POD, "default", "web", resource_version="2")  # the worker, once the containers are gone
    again = apply_pod(store, lambda m: None, manifest()).content["metadata"]
    assert again["resourceVersion"] == "3"
    assert store.get(POD, "default", "web") is not None


def test_a_static_pod_cannot_take_the_name_of_a_cloud_pod(store):
    cloud_pod = manifest()
    cloud_pod["metadata"].update(namespace="default", uid="u1", resourceVersion="40",
                                 annotations={constants.ANNOTATION_SOURCE: constants.SOURCE_API})
    store.put(POD, cloud_pod)
    with pytest.raises(APIError) as caught:
        apply_pod(store, lambda m: None, manifest())
    assert caught.value.code == 409


def test_static_pods_are_named_as_kubelet_names_them_and_found_by_either_name(store):
    from edgeworkers.pods.desired import find_static_pod, static_pod_name

    assert static_pod_name("web", "edge-1") == "web-edge-1"
    apply_pod(store, lambda m: None, manifest(name="web-edge-1"))
    assert find_static_pod(store, "default", "web", "edge-1") == "default/web-edge-1"
    assert find_static_pod(store, "default", "web-edge-1", "edge-1") == "default/web-edge-1"
    with pytest.raises(APIError):
        find_static_pod(store, "default", "nope", "edge-1")


@pytest.mark.parametrize("uid", ["..", "../etc", "a/b", ".hidden"])
def test_a_uid_that_is_not_a_plain_path_component_is_refused_before_anything_is_stored(store, uid):
    sent: list[Message] = []
    with pytest.raises(APIError) as caught:
        apply_pod(store, sent.append, manifest(uid=uid))
    assert caught.value.code == 422 and "metadata.uid" in str(caught.value)
    assert store.get(POD, "default", "web") is None and sent == []
