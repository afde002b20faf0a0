"""Secrets at rest: encrypted with the node's key, which never reaches Redis."""
from __future__ import annotations

import base64
import stat

import pytest

from edgeworkers.metamanager.crypto import KEY_FILE, Cipher, SecretUnreadable, load_key, node_cipher
from edgeworkers.metamanager.store import SECRET, MetaStore

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


def test_another_key_cannot_read_it_and_says_so_without_the_value(fake_redis, tmp_path):
    MetaStore(fake_redis, node_cipher(tmp_path / "a")).put(SECRET, secret())
    with pytest.raises(SecretUnreadable) as caught:
        MetaStore(fake_redis, node_cipher(tmp_path / "b")).get(SECRET, "default", "db")
    assert VALUE not in str(caught.value)


def test_a_store_without_the_key_refuses_secrets(fake_redis):
    with pytest.raises(RuntimeError, match="encrypted at rest"):
        MetaStore(fake_redis).put(SECRET, secret())


def test_ordering_holds_for_encrypted_objects(fake_redis, tmp_path):
    store = MetaStore(fake_redis, Cipher(load_key(tmp_path)))
    store.put(SECRET, secret("5"))
    assert not store.put(SECRET, secret("4"))
    assert store.get(SECRET, "default", "db")["metadata"]["resourceVersion"] == "5"
