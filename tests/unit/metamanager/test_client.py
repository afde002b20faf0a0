"""MetaClient: hits from the store, misses from the cloud (stored), a clear error when neither can answer."""
from __future__ import annotations

import pytest

from edgeworkers.metamanager.client import MetaClient, NotAvailable, NotFound
from edgeworkers.metamanager.crypto import node_cipher
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import CONFIGMAP, SECRET, MetaStore


class Cloud:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.up = True
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, kind: str, namespace: str, name: str) -> dict | None:
        self.calls.append((kind, namespace, name))
        if not self.up:
            raise ConnectionError("connection refused")
        return self.objects.get((kind, namespace, name))


def cm(name: str = "cfg", rv: str = "3") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}, "data": {"k": "v"}}


@pytest.fixture
def cloud() -> Cloud:
    return Cloud()


@pytest.fixture
def client(fake_redis, tmp_path, cloud) -> MetaClient:
    return MetaClient(MetaStore(fake_redis, node_cipher(tmp_path)), Outbox(fake_redis), cloud)


def test_a_miss_asks_the_cloud_once_then_the_store_answers_even_with_the_cloud_gone(client, cloud):
    cloud.objects[(CONFIGMAP, "default", "cfg")] = cm()
    assert client.get_configmap("default", "cfg") == cm()
    cloud.up = False
    assert client.get_configmap("default", "cfg") == cm()
    assert cloud.calls == [(CONFIGMAP, "default", "cfg")]
    assert client.store.get(CONFIGMAP, "default", "cfg") == cm()


def test_a_miss_with_the_cloud_unreachable_is_one_clear_error(client, cloud):
    cloud.up = False
    with pytest.raises(NotAvailable, match='configmap "cfg" is not on this node and the cloud is unreachable'):
        client.get_configmap("default", "cfg")


def test_an_object_the_cloud_does_not_have_is_not_found(client):
    with pytest.raises(NotFound, match='secret "db" not found'):
        client.get_secret("default", "db")


def test_secrets_fetched_are_stored_encrypted(client, cloud, fake_redis):
    cloud.objects[(SECRET, "default", "db")] = {"metadata": {"name": "db", "namespace": "default"},
                                                "data": {"p": "czNjcjN0"}}
    assert client.get_secret("default", "db")["data"] == {"p": "czNjcjN0"}
    assert b"czNjcjN0" not in b"".join(fake_redis.dump(k) or b"" for k in fake_redis.keys("*"))


def test_without_a_cloud_a_miss_says_so(fake_redis):
    client = MetaClient(MetaStore(fake_redis), Outbox(fake_redis))
    with pytest.raises(NotAvailable, match="cloud is not configured"):
        client.get_configmap("default", "cfg")
