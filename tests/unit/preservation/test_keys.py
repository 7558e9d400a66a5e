"""Master key ring: key file handling, wrapping, rotation, secrecy of key material."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.utils import translation

from medarchive.core.errors import ConfigurationError, IntegrityFailure
from medarchive.preservation.crypto import CipherSuite
from medarchive.preservation.keys import KeyRing


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """These messages are read by operators; the tests read them in English (the catalog's source)."""
    with translation.override("en"):
        yield


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_file_doc(path: Path) -> dict[str, object]:
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_load_or_create_writes_a_0600_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.json"

    ring = KeyRing.load_or_create(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = key_file_doc(path)
    assert doc["version"] == 1
    assert doc["active"] == "k1" == ring.active_key_id
    assert isinstance(doc["keys"], dict)
    assert len(base64.b64decode(doc["keys"]["k1"])) == 32
    assert base64.b64decode(str(doc["address_key"])) == ring.address_key
    assert [p.name for p in path.parent.iterdir()] == ["master.json"]  # no temp file left


def test_reloaded_ring_unwraps_and_keeps_the_address_key(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    ring = KeyRing.load_or_create(path)
    data_key = os.urandom(32)
    key_id, wrapped = ring.wrap(data_key)

    again = KeyRing.load_or_create(path)

    assert again.unwrap(key_id, wrapped) == data_key
    assert again.address_key == ring.address_key
    assert KeyRing.load(path).key_ids == ("k1",)


def test_wrap_is_randomized_and_bound_to_the_key_id(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    data_key = os.urandom(32)

    first, second = ring.wrap(data_key), ring.wrap(data_key)

    assert first[1] != second[1]
    assert data_key not in first[1]
    ring.rotate(tmp_path / "k.json")  # now k1 and k2
    with pytest.raises(IntegrityFailure, match="under the master key k2"):
        ring.unwrap("k2", first[1])


def test_rotate_keeps_old_wraps_working(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    ring = KeyRing.load_or_create(path)
    old_key = os.urandom(32)
    old_id, old_wrapped = ring.wrap(old_key)

    new_id = ring.rotate(path)

    assert (old_id, new_id, ring.active_key_id) == ("k1", "k2", "k2")
    reloaded = KeyRing.load(path)
    assert reloaded.active_key_id == "k2"
    assert set(reloaded.key_ids) == {"k1", "k2"}
    assert reloaded.unwrap(old_id, old_wrapped) == old_key
    assert ring.wrap(os.urandom(32))[0] == "k2"
    assert reloaded.address_key == ring.address_key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rotation_from_a_stale_ring_never_drops_a_key(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    first = KeyRing.load_or_create(path)
    second = KeyRing.load(path)  # e.g. another process

    first.rotate(path)
    second.rotate(path)

    assert set(KeyRing.load(path).key_ids) == {"k1", "k2", "k3"}
    assert second.active_key_id == "k3"


def test_rotate_refuses_a_file_with_another_address_key(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    KeyRing.load_or_create(path)

    with pytest.raises(ConfigurationError, match="different address key"):
        KeyRing.generate().rotate(path)
    assert KeyRing.load(path).key_ids == ("k1",)


def test_losing_the_creation_race_adopts_the_winners_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "master.json"
    winner = KeyRing.generate()
    real_generate = KeyRing.generate

    def generate_after_another_process_won(**kwargs: CipherSuite) -> KeyRing:
        winner.save(path)
        return real_generate(**kwargs)

    monkeypatch.setattr(KeyRing, "generate", generate_after_another_process_won)

    ring = KeyRing.load_or_create(path)

    assert ring.address_key == winner.address_key
    assert KeyRing.load(path).address_key == winner.address_key


def test_unknown_key_id_is_a_configuration_error() -> None:
    ring = KeyRing.generate()
    _, wrapped = ring.wrap(os.urandom(32))

    with pytest.raises(ConfigurationError, match=r"master key k9 is not in the key ring \(known: k1\)"):
        ring.unwrap("k9", wrapped)


@pytest.mark.parametrize("position", [0, 1, 13, -1])
def test_tampered_wrap_is_an_integrity_failure(position: int) -> None:
    ring = KeyRing.generate()
    key_id, wrapped = ring.wrap(os.urandom(32))
    damaged = bytearray(wrapped)
    damaged[position] ^= 0x04

    with pytest.raises(IntegrityFailure):
        ring.unwrap(key_id, bytes(damaged))
    with pytest.raises(IntegrityFailure, match="truncated"):
        ring.unwrap(key_id, wrapped[:20])


def test_sm4_wrap_suite_is_marked_and_unwraps_under_any_configuration() -> None:
    sm4_ring = KeyRing.generate(wrap_suite=CipherSuite.SM4_GCM)
    data_key = os.urandom(16)

    key_id, wrapped = sm4_ring.wrap(data_key)
    same_keys_aes = KeyRing({key_id: sm4_ring._keys[key_id]}, active=key_id, address_key=sm4_ring.address_key)

    assert wrapped[0] == CipherSuite.SM4_GCM.wire_id
    assert sm4_ring.unwrap(key_id, wrapped) == data_key
    assert same_keys_aes.unwrap(key_id, wrapped) == data_key
    assert same_keys_aes.wrap(data_key)[1][0] == CipherSuite.AES_256_GCM.wire_id


def test_repr_and_pickle_do_not_expose_key_material(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    ring = KeyRing.load_or_create(path)
    ring.rotate(path)
    doc = key_file_doc(path)
    assert isinstance(doc["keys"], dict)
    secrets = [*doc["keys"].values(), doc["address_key"]]

    shown = repr(ring) + str(ring)

    assert shown == "KeyRing(active='k2', key_ids=['k1', 'k2'], wrap_suite='aes-256-gcm')" * 2
    for secret in secrets:
        assert str(secret) not in shown
        assert base64.b64decode(str(secret)).hex() not in shown
    with pytest.raises(TypeError, match="must not be pickled"):
        pickle.dumps(ring)


def test_from_secret_accepts_the_key_file_json(tmp_path: Path) -> None:
    path = tmp_path / "master.json"
    ring = KeyRing.load_or_create(path)
    key_id, wrapped = ring.wrap(b"k" * 32)

    from_env = KeyRing.from_secret(path.read_text())

    assert from_env.unwrap(key_id, wrapped) == b"k" * 32
    assert from_env.address_key == ring.address_key


def test_from_secret_accepts_a_single_base64_key() -> None:
    master = os.urandom(32)

    ring = KeyRing.from_secret(f"  {b64(master)}\n")

    assert ring.key_ids == ("env1",)
    assert ring.active_key_id == "env1"
    assert ring.address_key == KeyRing.from_secret(b64(master)).address_key
    assert ring.address_key != master
    assert len(ring.address_key) == 32
    key_id, wrapped = ring.wrap(b"d" * 32)
    assert KeyRing.from_secret(b64(master)).unwrap(key_id, wrapped) == b"d" * 32


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("", "key secret is empty"),
        ("c2hvcnQ=", "must decode to 32 bytes, not 5"),
        ("not base64 at all!", "not valid base64"),
        ("{not json", "not valid JSON"),
        ('{"version": 2}', "unsupported version 2"),
        ('{"version": 1, "keys": {}}', "'keys' must be a non-empty object"),
        ('{"version": 1, "active": "k2", "keys": {"k1": "%s"}, "address_key": "%s"}', "'active' must name"),
        ('{"version": 1, "active": "k1", "keys": {"k1": "c2hvcnQ="}, "address_key": "%s"}', "key 'k1'"),
        ('{"version": 1, "active": "k1", "keys": {"k1": "%s"}}', "'address_key' must be a base64"),
        ('{"version": 1, "active": "a b", "keys": {"a b": "%s"}, "address_key": "%s"}', "key id must be"),
    ],
)
def test_invalid_secrets_name_the_problem_not_the_value(secret: str, message: str) -> None:
    value = secret.replace("%s", b64(os.urandom(32)))

    with pytest.raises(ConfigurationError, match=message) as caught:
        KeyRing.from_secret(value)
    assert caught.value.code in {
        "key_secret_empty",
        "bad_key_encoding",
        "bad_key_size",
        "bad_key_file",
        "bad_key_id",
        "unknown_active_key",
    }

    for word in value.replace('"', " ").split():
        if len(word) >= 8:
            assert word not in str(caught.value)
    # A chained decoding error could quote the secret in a traceback.
    assert caught.value.__context__ is None or caught.value.__suppress_context__


def test_missing_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        KeyRing.load(tmp_path / "absent.json")


def test_loose_key_file_permissions_are_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "master.json"
    KeyRing.load_or_create(path)
    path.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="medarchive.preservation.keys"):
        KeyRing.load(path)

    assert "has mode 644; it should be 0600" in caplog.text


def test_key_sizes_are_enforced() -> None:
    with pytest.raises(ConfigurationError, match="must be 32 bytes"):
        KeyRing({"k1": b"short"}, active="k1", address_key=os.urandom(32))
    with pytest.raises(ConfigurationError, match="address key must be 32 bytes"):
        KeyRing({"k1": os.urandom(32)}, active="k1", address_key=b"")
    with pytest.raises(ConfigurationError, match="active key id k2"):
        KeyRing({"k1": os.urandom(32)}, active="k2", address_key=os.urandom(32))
