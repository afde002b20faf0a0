"""Secrets at rest: encrypted with the node's key, which never reaches Redis."""
from __future__ import annotations

import base64
import logging
import stat

import pytest

from edgeworkers.metamanager.client import MetaClient, NotAvailable
from edgeworkers.metamanager.crypto import KEY_FILE, Cipher, SecretUnreadable, load_key, node_cipher
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.metamanager.store import SECRET, MetaStore, Put, object_key

VALUE = "hunter2-very-secret"


def secret(rv: str = "1") -> dict:
    data = {"password": base64.b64encode(VALUE.encode()).decode()}
    return {"metadata": {"name": "db", "namespace": "default", "resourceVersion": rv}, "data": data,
            "stringData": {"plain": VALUE}}


def test_a_secret_round_trips_and_redis_holds_neither_its_value_nor_the_key(fake_redis, tmp_path):
    store = MetaStore(fake_redis, node_cipher(tmp_path / "data"))
    store.put(SECRET, secret())
    assert store.get(SECRET, "default", "db") == secret()
    assert store.list(SECRET) == [secret()]
    assert list(store.each(SECRET, containing=b"plain")) == [secret()]  # the decrypted JSON is searched
    key = (tmp_path / "data" / KEY_FILE).read_bytes().strip()
    dump = b"".join(fake_redis.dump(k) or b"" for k in fake_redis.keys("*"))
    for needle in (VALUE.encode(), base64.b64encode(VALUE.encode()), key, b"password"):
        assert needle not in dump


def test_the_key_file_is_0600_in_a_0700_directory_and_stable(tmp_path):
    first = load_key(tmp_path / "data")
    assert load_key(tmp_path / "data") == first
    assert stat.S_IMODE((tmp_path / "data" / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "data").iterdir()] == [KEY_FILE]  # no temporary file left


def test_a_secret_another_key_cannot_read_is_absent_removed_and_logged_by_name_only(fake_redis, tmp_path, caplog):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret())
    other = MetaStore(fake_redis, node_cipher(tmp_path / "b"))
    with caplog.at_level(logging.WARNING):
        assert other.get(SECRET, "default", "db") is None
    assert other.keys(SECRET) == set() and fake_redis.get(object_key(SECRET, "default", "db")) is None
    assert "secret default/db cannot be decrypted with this node's key" in caplog.text
    assert VALUE not in caplog.text and "password" not in caplog.text
    assert other.get(SECRET, "default", "db") is None  # plainly absent now: logged once
    assert caplog.text.count("cannot be decrypted") == 1


def test_a_write_replaces_an_undecryptable_secret_whatever_its_version(fake_redis, tmp_path):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret("9"))
    other = MetaStore(fake_redis, node_cipher(tmp_path / "b"))
    assert other.put(SECRET, secret("9")) is Put.STORED
    assert other.get(SECRET, "default", "db") == secret("9")


def test_listing_skips_and_removes_an_undecryptable_secret(fake_redis, tmp_path):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret())
    other = MetaStore(fake_redis, node_cipher(tmp_path / "b"))
    other.put(SECRET, {**secret(), "metadata": {**secret()["metadata"], "name": "fresh"}})
    assert [s["metadata"]["name"] for s in other.each(SECRET)] == ["fresh"]
    assert other.keys(SECRET) == {"default/fresh"}


def test_metaclient_fetches_an_undecryptable_secret_again_from_the_cloud(fake_redis, tmp_path):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret("3"))
    asked = []

    def remote(kind: str, namespace: str, name: str) -> dict:
        asked.append((kind, namespace, name))
        return secret("4")

    meta = MetaClient(MetaStore(fake_redis, node_cipher(tmp_path / "b")), Outbox(fake_redis), remote)
    assert meta.get_secret("default", "db") == secret("4")
    assert asked == [(SECRET, "default", "db")]
    assert meta.get_secret("default", "db") == secret("4") and len(asked) == 1  # stored again, readable


def test_an_undecryptable_secret_with_the_cloud_away_is_a_miss_naming_it(fake_redis, tmp_path):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret())

    def unreachable(kind: str, namespace: str, name: str) -> dict:
        raise ConnectionError("cloud away")

    meta = MetaClient(MetaStore(fake_redis, node_cipher(tmp_path / "b")), Outbox(fake_redis), unreachable)
    with pytest.raises(NotAvailable, match='secret "db" is not on this node and the cloud is unreachable'):
        meta.get_secret("default", "db")


def test_a_key_file_replaced_under_a_running_process_is_used_from_the_next_unreadable_value(tmp_path):
    running = node_cipher(tmp_path)
    old = running.encrypt(b"old")
    (tmp_path / KEY_FILE).write_bytes(base64.urlsafe_b64encode(b"k" * 32))
    fresh = node_cipher(tmp_path).encrypt(b"new")
    assert running.decrypt(fresh) == b"new"  # read the key again, and kept it
    assert running.decrypt(running.encrypt(b"x")) == b"x" and node_cipher(tmp_path).decrypt(running.encrypt(b"y")) == b"y"
    with pytest.raises(SecretUnreadable):
        running.decrypt(old)


def test_a_store_without_the_key_refuses_secrets(fake_redis):
    with pytest.raises(RuntimeError, match="encrypted at rest"):
        MetaStore(fake_redis).put(SECRET, secret())


def test_ordering_holds_for_encrypted_objects(fake_redis, tmp_path):
    store = MetaStore(fake_redis, Cipher(load_key(tmp_path)))
    store.put(SECRET, secret("5"))
    assert not store.put(SECRET, secret("4"))
    assert store.get(SECRET, "default", "db")["metadata"]["resourceVersion"] == "5"
