import base64
import json
import os
import pickle
import stat
from pathlib import Path

import pytest

from medarchive.core.errors import ConfigurationError
from medarchive.security.auditkeys import AuditKeyRing, key_id_for


def test_a_created_key_file_is_owner_only_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "audit-keys.json"
    ring = AuditKeyRing.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = AuditKeyRing.load(path)
    assert again.active_key_id == ring.active_key_id and again.active_key == ring.active_key
    assert AuditKeyRing.create(path).active_key == ring.active_key  # never overwrites


def test_key_ids_are_fingerprints_so_a_regenerated_key_never_passes_for_the_old_one(tmp_path: Path) -> None:
    one, two = AuditKeyRing.create(tmp_path / "a.json"), AuditKeyRing.create(tmp_path / "b.json")
    assert one.active_key_id != two.active_key_id
    assert one.active_key_id == key_id_for(one.active_key) and len(one.active_key_id) == 9


def test_rotation_keeps_old_keys_and_merges_what_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "audit-keys.json"
    ring = AuditKeyRing.create(path)
    first = ring.active_key_id
    stale = AuditKeyRing.load(path)
    second = ring.rotate(path)
    third = stale.rotate(path)  # another process with an older view
    on_disk = AuditKeyRing.load(path)
    assert set(on_disk.key_ids) == {first, second, third} and on_disk.active_key_id == third
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_from_a_secret_one_key_or_the_file_format() -> None:
    key = os.urandom(32)
    ring = AuditKeyRing.from_secret(base64.b64encode(key).decode())
    assert ring.active_key == key and ring.active_key_id == key_id_for(key)
    doc = {"version": 1, "active": "prod2", "keys": {"prod1": base64.b64encode(os.urandom(32)).decode()}}
    doc["keys"]["prod2"] = base64.b64encode(key).decode()
    ring = AuditKeyRing.from_secret(json.dumps(doc))
    assert ring.active_key_id == "prod2" and set(ring.key_ids) == {"prod1", "prod2"}


@pytest.mark.parametrize(
    ("secret", "match"),
    [
        ("", "empty"),
        ("not base64!", "base64"),
        (base64.b64encode(b"short").decode(), "32"),  # the configured language says "32 字节"
        ('{"version": 1, "active": "x", "keys": {}}', "non-empty"),
        ('{"version": 1, "active": "b", "keys": {"a": "' + base64.b64encode(b"k" * 32).decode() + '"}}', "active"),
        ("{not json", "JSON"),
    ],
)
def test_bad_secrets_are_refused_without_quoting_them(secret: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        AuditKeyRing.from_secret(secret)
    if len(secret) > 8:
        assert secret not in str(info.value)


def test_key_material_is_never_shown_or_pickled(tmp_path: Path) -> None:
    ring = AuditKeyRing.create(tmp_path / "k.json")
    encoded = base64.b64encode(ring.active_key).decode()
    assert encoded not in repr(ring) and ring.active_key.hex() not in repr(ring)
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(ring)


def test_a_missing_key_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        AuditKeyRing.load(tmp_path / "gone.json")
