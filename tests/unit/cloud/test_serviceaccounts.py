"""The service account controller: each namespace's ``default`` ServiceAccount, made and made again."""
import datetime as dt

import pytest

from edgeworkers.cloud.serviceaccounts import ServiceAccounts, with_account_pull_secrets
from edgeworkers.cloud.store import Store
from edgeworkers.cloud.watch import Hub

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def cluster(tmp_path):
    store = Store(tmp_path / "objects.db", clock=lambda: T0)
    hub = Hub(store)
    terminating: set[str] = set()
    yield store, hub, ServiceAccounts(store, hub, terminating.__contains__), terminating
    store.close()


def accounts(store: Store) -> list[tuple[str, str]]:
    return sorted((a["metadata"]["namespace"], a["metadata"]["name"]) for a in store.list("serviceaccounts"))


def test_a_new_namespace_gets_its_default_account_at_once(cluster):
    store, hub, _controller, _terminating = cluster
    hub.publish(store.create("namespaces", {"metadata": {"name": "team"}}))
    assert accounts(store) == [("team", "default")]


def test_a_deleted_default_account_comes_back_but_not_another(cluster):
    store, hub, _controller, _terminating = cluster
    hub.publish(store.create("namespaces", {"metadata": {"name": "team"}}))
    hub.publish(store.create("serviceaccounts", {"metadata": {"name": "builder", "namespace": "team"}}))
    hub.publish(store.delete("serviceaccounts", "team", "builder"))
    first_uid = store.get("serviceaccounts", "team", "default")["metadata"]["uid"]
    hub.publish(store.delete("serviceaccounts", "team", "default"))
    assert accounts(store) == [("team", "default")]
    assert store.get("serviceaccounts", "team", "default")["metadata"]["uid"] != first_uid


def test_a_namespace_being_deleted_keeps_its_account_gone(cluster):
    store, hub, _controller, terminating = cluster
    hub.publish(store.create("namespaces", {"metadata": {"name": "team"}}))
    terminating.add("team")
    hub.publish(store.delete("serviceaccounts", "team", "default"))
    hub.publish(store.delete("namespaces", "", "team"))
    assert accounts(store) == []


def test_sync_makes_the_accounts_missing_at_start(tmp_path):
    store = Store(tmp_path / "objects.db", clock=lambda: T0)
    try:
        for name in ("a", "b"):
            store.create("namespaces", {"metadata": {"name": name}})  # before any controller listened
        hub = Hub(store)
        controller = ServiceAccounts(store, hub, lambda _namespace: False)
        assert accounts(store) == []
        controller.sync()
        controller.sync()  # idempotent
        assert accounts(store) == [("a", "default"), ("b", "default")]
    finally:
        store.close()


def test_a_pod_without_pull_secrets_gets_its_accounts_as_kubes_admission_gives_them(cluster):
    store, hub, _controller, _terminating = cluster
    hub.publish(store.create("namespaces", {"metadata": {"name": "team"}}))
    hub.publish(store.create("serviceaccounts", {"metadata": {"name": "puller", "namespace": "team"},
                                                 "imagePullSecrets": [{"name": "regcred"}]}))

    def admitted(spec: dict, annotations: dict | None = None) -> list | None:
        pod = {"metadata": {"name": "p", "namespace": "team", "annotations": annotations or {}}, "spec": spec}
        return with_account_pull_secrets(store, pod)["spec"].get("imagePullSecrets")

    assert admitted({"serviceAccountName": "puller"}) == [{"name": "regcred"}]
    assert admitted({"serviceAccountName": "puller", "imagePullSecrets": [{"name": "own"}]}) == [{"name": "own"}]
    assert admitted({}) is None  # the default account has none
    assert admitted({"serviceAccountName": "missing"}) is None
    assert admitted({"serviceAccountName": "puller"}, {"kubernetes.io/config.mirror": "x"}) is None
