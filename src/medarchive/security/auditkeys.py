"""The audit key ring: the HMAC keys that seal the audit chain, held outside the database.

Security policy (ADR 0013):

* 32 random bytes each, identified by a key id that every entry records, so the key can be
  rotated: `rotate` adds a key and makes it active, old keys stay so old entries verify.
  Retiring a key is deliberately not offered (the entries it sealed would become unverifiable).
* A key id is a fingerprint of the key (`a` + 8 hex digits of an HMAC of it), so a key that
  was lost and regenerated never passes for the old one: verify names the missing key.
* Sources, like the master keys (ADR 0002): `MEDARCHIVE_AUDIT_KEY` (one base64 key, or the
  key file's JSON), else the key file `audit-keys.json` beside the master key file, written
  0600 atomically and created on first use. Production mode refuses to start without one
  of the two configured (config.py).
* Key material is never logged, shown by `repr` or pickled; errors name the source, never
  the value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from medarchive.core.errors import ConfigurationError
from medarchive.preservation.keys import _check_key_id, _decode_key, _locked, _write_atomic

logger = logging.getLogger(__name__)

KEY_SIZE = 32
MAX_KEY_ID = 16  # the key_id column of AuditEntry
FILE_VERSION = 1
_ID_LABEL = b"medarchive audit key id v1"


def key_id_for(key: bytes) -> str:
    return "a" + hmac.new(key, _ID_LABEL, hashlib.sha256).hexdigest()[:8]


class AuditKeyRing:
    """Audit keys by id and the active one."""

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        if not keys:
            raise ConfigurationError("the audit key ring has no keys")
        for key_id, material in keys.items():
            _check_key_id(key_id, "audit key id")
            if len(key_id) > MAX_KEY_ID:
                raise ConfigurationError(f"an audit key id has at most {MAX_KEY_ID} characters")
            if len(material) != KEY_SIZE:
                raise ConfigurationError(f"audit key {key_id!r} must be {KEY_SIZE} bytes")
        if active not in keys:
            raise ConfigurationError(f"the active audit key {active!r} is not in the ring")
        self._keys = dict(keys)
        self._active = active

    @classmethod
    def generate(cls) -> AuditKeyRing:
        key = os.urandom(KEY_SIZE)
        return cls({key_id_for(key): key}, active=key_id_for(key))

    @classmethod
    def from_secret(cls, value: str) -> AuditKeyRing:
        """From `MEDARCHIVE_AUDIT_KEY`: the key file's JSON, or one base64 32-byte key."""
        text = value.strip()
        if not text:
            raise ConfigurationError("MEDARCHIVE_AUDIT_KEY is empty")
        if text.startswith("{"):
            return cls._from_json(text, "MEDARCHIVE_AUDIT_KEY")
        key = _decode_key(text, "MEDARCHIVE_AUDIT_KEY")
        return cls({key_id_for(key): key}, active=key_id_for(key))

    @classmethod
    def load(cls, path: Path | str) -> AuditKeyRing:
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"audit key file {path} does not exist") from None
        if stat.S_IMODE(mode) & 0o077:
            logger.warning("audit key file %s has mode %o; it should be 0600", path, stat.S_IMODE(mode))
        return cls._from_json(text, f"audit key file {path}")

    @classmethod
    def create(cls, path: Path | str) -> AuditKeyRing:
        """A fresh ring persisted at `path` (0600); never overwrites: a ring another process
        created first is loaded instead, so both use the same key."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring = cls.generate()
        if not _write_atomic(path, ring._document(), exclusive=True):
            return cls.load(path)
        return ring

    @classmethod
    def _from_json(cls, text: str, source: str) -> AuditKeyRing:
        try:
            doc: Any = json.loads(text)
        except ValueError:
            raise ConfigurationError(f"{source} is not valid JSON") from None  # the context could quote the key
        if not isinstance(doc, dict) or doc.get("version") != FILE_VERSION:
            raise ConfigurationError(f"{source} must be a JSON object with version {FILE_VERSION}")
        raw = doc.get("keys")
        if not isinstance(raw, dict) or not raw:
            raise ConfigurationError(f"{source}: 'keys' must be a non-empty object")
        keys = {_check_key_id(k, f"{source}: key id"): _decode_key(v, f"{source}: key {k!r}") for k, v in raw.items()}
        active = doc.get("active")
        if active not in keys:
            raise ConfigurationError(f"{source}: 'active' must name one of {sorted(keys)}")
        return cls(keys, active=active)

    def _document(self) -> bytes:
        doc = {
            "version": FILE_VERSION,
            "active": self._active,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in self._keys.items()},
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    def rotate(self, path: Path | str) -> str:
        """Add a fresh key, make it active, persist (merging what is on disk first); its id."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(path):
            keys = dict(self._keys)
            if path.exists():
                for key_id, material in AuditKeyRing.load(path)._keys.items():
                    if key_id in keys and not hmac.compare_digest(keys[key_id], material):
                        raise ConfigurationError(f"audit key {key_id!r} differs in {path}; refusing to rotate")
                    keys[key_id] = material
            key = os.urandom(KEY_SIZE)
            new_id = key_id_for(key)
            keys[new_id] = key
            rotated = AuditKeyRing(keys, active=new_id)
            _write_atomic(path, rotated._document(), exclusive=False)
        self._keys, self._active = keys, new_id
        return new_id

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def active_key(self) -> bytes:
        return self._keys[self._active]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def keys(self) -> Mapping[str, bytes]:
        return dict(self._keys)

    def __repr__(self) -> str:
        return f"AuditKeyRing(active={self._active!r}, key_ids={sorted(self._keys)!r})"

    def __reduce__(self) -> Any:
        raise TypeError("AuditKeyRing must not be pickled")
