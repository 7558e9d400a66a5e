"""Master key ring for envelope encryption of per-blob data keys.

Security policy:

* Master keys (32 random bytes each, identified by a key id) only ever wrap
  data keys; content is never encrypted with them directly. `wrap` always uses
  the *active* key; `unwrap` accepts any key still in the ring.
* Wrapped key = suite marker (1 byte) | nonce (12 random bytes) | ciphertext |
  16-byte tag, AEAD with AAD binding the key id. AES-256-GCM uses the master
  key as is; SM4-GCM uses a 16-byte key derived from it with HKDF-SHA256.
* `rotate` adds a fresh master key, makes it active and persists the ring;
  old keys stay, so existing wraps keep working. Re-wrapping stored data keys
  (`BlobStore.rewrap`) is a separate step; nothing is ever re-encrypted, and
  retiring an old key is deliberately not offered here.
* The address key (HMAC key for content addresses) never rotates: changing it
  would change every blob's address.
* The key file is written 0600 atomically (temp file, fsync, rename, fsync of
  the directory). A file readable by group or others is loaded with a warning.
* Not done: key material is never logged or shown by `repr`, but Python cannot
  wipe it from memory; there is no HSM/KMS integration.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hmac
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.utils.translation import gettext_lazy as _

from medarchive.core.errors import ConfigurationError, IntegrityFailure
from medarchive.core.labels import with_labels
from medarchive.preservation.crypto import CipherSuite, aead_decrypt, aead_encrypt

logger = logging.getLogger(__name__)

KEY_SIZE = 32
FILE_VERSION = 1
SECRET_KEY_ID = "env1"  # noqa: S105 - a key id, not a secret
_WRAP_NONCE_SIZE = 12
_WRAP_MIN_SIZE = 1 + _WRAP_NONCE_SIZE + 16
_WRAP_AAD = b"medarchive key-wrap v1:"
_SM4_WRAP_INFO = b"medarchive sm4 key-wrap v1"
_ADDRESS_KEY_INFO = b"medarchive address key v1"
# 32 fits the key_id column of the Blob model.
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,32}")


def _hkdf(key: bytes, length: int, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)


def _decode_key(value: object, what: object) -> bytes:
    """Decode a base64 32-byte key; errors name `what` (a lazy description), never the value."""
    if not isinstance(value, str):
        raise ConfigurationError(
            with_labels(_("%(what)s must be a base64 string."), what=what), code="bad_key_encoding"
        )
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            with_labels(_("%(what)s is not valid base64."), what=what), code="bad_key_encoding"
        ) from None
    if len(key) != KEY_SIZE:
        raise ConfigurationError(
            with_labels(_("%(what)s must decode to %(size)s bytes, not %(got)s."), what=what),
            code="bad_key_size",
            size=KEY_SIZE,
            got=len(key),
        )
    return key


def _encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def _check_key_id(key_id: object, what: object) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise ConfigurationError(
            with_labels(_("%(what)s must be 1-32 characters of letters, digits, '.', '_' or '-'."), what=what),
            code="bad_key_id",
        )
    return key_id


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, exclusive: bool) -> bool:
    """Write `data` to `path` with mode 0600 via temp file + fsync + rename.

    With `exclusive`, never replace an existing file (hard link instead of
    rename) and return False if one exists.
    """
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize read-modify-write of the key file across processes."""
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class KeyRing:
    """Master keys by id, the active key id, the address key and the wrap suite."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        *,
        active: str,
        address_key: bytes,
        wrap_suite: CipherSuite = CipherSuite.AES_256_GCM,
    ) -> None:
        if not keys:
            raise ConfigurationError(_("The key ring has no master keys."), code="no_master_keys")
        for key_id, material in keys.items():
            _check_key_id(key_id, _("A master key id"))
            if len(material) != KEY_SIZE:
                raise ConfigurationError(
                    _("The master key %(key_id)s must be %(size)s bytes."),
                    code="bad_key_size",
                    key_id=key_id,
                    size=KEY_SIZE,
                )
        if active not in keys:
            raise ConfigurationError(
                _("The active key id %(key_id)s is not in the key ring."), code="unknown_active_key", key_id=active
            )
        if len(address_key) != KEY_SIZE:
            raise ConfigurationError(_("The address key must be %(size)s bytes."), code="bad_key_size", size=KEY_SIZE)
        self._keys = dict(keys)
        self._active = active
        self._address_key = address_key
        self._wrap_suite = CipherSuite(wrap_suite)

    # -- construction ----------------------------------------------------

    @classmethod
    def generate(cls, *, wrap_suite: CipherSuite = CipherSuite.AES_256_GCM) -> KeyRing:
        """A fresh in-memory ring with one master key "k1" (not persisted)."""
        return cls(
            {"k1": os.urandom(KEY_SIZE)},
            active="k1",
            address_key=os.urandom(KEY_SIZE),
            wrap_suite=wrap_suite,
        )

    @classmethod
    def load(cls, path: Path | str, *, wrap_suite: CipherSuite = CipherSuite.AES_256_GCM) -> KeyRing:
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(
                _("The key file %(path)s does not exist."), code="key_file_missing", path=str(path)
            ) from None
        if stat.S_IMODE(mode) & 0o077:
            logger.warning("key file %s has mode %o; it should be 0600", path, stat.S_IMODE(mode))
        return cls._from_json(text, with_labels(_("The key file %(path)s"), path=str(path)), wrap_suite)

    @classmethod
    def load_or_create(cls, path: Path | str, *, wrap_suite: CipherSuite = CipherSuite.AES_256_GCM) -> KeyRing:
        """Load the key file, or create it (mode 0600) with a fresh ring.

        Creation never overwrites: if another process creates the file first,
        its ring is loaded instead of ours, so both use the same keys.
        """
        path = Path(path)
        if path.exists():
            return cls.load(path, wrap_suite=wrap_suite)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring = cls.generate(wrap_suite=wrap_suite)
        if not _write_atomic(path, ring._document(), exclusive=True):
            return cls.load(path, wrap_suite=wrap_suite)
        return ring

    @classmethod
    def from_secret(cls, value: str, *, wrap_suite: CipherSuite = CipherSuite.AES_256_GCM) -> KeyRing:
        """Ring from an environment secret: key-file JSON, or one base64 32-byte key.

        A single key becomes master key "env1"; the address key is derived from
        it with HKDF-SHA256, so addresses are stable as long as the secret is.
        """
        text = value.strip()
        if not text:
            raise ConfigurationError(_("The key secret is empty."), code="key_secret_empty")
        if text.startswith("{"):
            return cls._from_json(text, _("The key secret"), wrap_suite)
        master = _decode_key(text, _("The key secret"))
        return cls(
            {SECRET_KEY_ID: master},
            active=SECRET_KEY_ID,
            address_key=_hkdf(master, KEY_SIZE, _ADDRESS_KEY_INFO),
            wrap_suite=wrap_suite,
        )

    @classmethod
    def _from_json(cls, text: str, source: object, wrap_suite: CipherSuite) -> KeyRing:
        """`source` names the file or the secret in messages (a lazy text)."""
        try:
            doc: Any = json.loads(text)
        except ValueError:
            # No chained exception: its context could quote the secret.
            raise ConfigurationError(
                with_labels(_("%(source)s is not valid JSON."), source=source), code="bad_key_file"
            ) from None
        if not isinstance(doc, dict):
            raise ConfigurationError(
                with_labels(_("%(source)s must be a JSON object."), source=source), code="bad_key_file"
            )
        if doc.get("version") != FILE_VERSION:
            raise ConfigurationError(
                with_labels(_("%(source)s has the unsupported version %(version)s."), source=source),
                code="bad_key_file",
                version=str(doc.get("version")),
            )
        raw_keys = doc.get("keys")
        if not isinstance(raw_keys, dict) or not raw_keys:
            raise ConfigurationError(
                with_labels(_("%(source)s: 'keys' must be a non-empty object."), source=source), code="bad_key_file"
            )
        keys = {
            _check_key_id(key_id, with_labels(_("%(source)s: a key id"), source=source)): _decode_key(
                value, with_labels(_("%(source)s: the key %(key_id)s"), source=source, key_id=repr(key_id))
            )
            for key_id, value in raw_keys.items()
        }
        active = doc.get("active")
        if active not in keys:
            raise ConfigurationError(
                with_labels(_("%(source)s: 'active' must name one of %(known)s."), source=source),
                code="unknown_active_key",
                known=sorted(keys),
            )
        address_key = _decode_key(doc.get("address_key"), with_labels(_("%(source)s: 'address_key'"), source=source))
        return cls(keys, active=active, address_key=address_key, wrap_suite=wrap_suite)

    def _document(self) -> bytes:
        doc = {
            "version": FILE_VERSION,
            "active": self._active,
            "keys": {key_id: _encode_key(key) for key_id, key in self._keys.items()},
            "address_key": _encode_key(self._address_key),
        }
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")

    # -- persistence -----------------------------------------------------

    def save(self, path: Path | str) -> None:
        """Persist the ring (mode 0600, atomic), replacing any existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write_atomic(path, self._document(), exclusive=False)

    def rotate(self, path: Path | str) -> str:
        """Add a fresh master key, make it active, persist; return its id.

        Under a lock, keys already in the file are merged in first, so a
        concurrent rotation or a stale in-memory ring never drops a key (which
        would make every data key wrapped under it unrecoverable). The lock is
        a `flock` on ``<path>.lock`` beside the key file.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with _locked(path):
            keys = dict(self._keys)
            if path.exists():
                on_disk = KeyRing.load(path)
                if not hmac.compare_digest(on_disk._address_key, self._address_key):
                    raise ConfigurationError(
                        _("The key file %(path)s has a different address key; refusing to rotate."),
                        code="rotation_refused",
                        path=str(path),
                    )
                for key_id, material in on_disk._keys.items():
                    if key_id in keys and not hmac.compare_digest(keys[key_id], material):
                        raise ConfigurationError(
                            _("The key id %(key_id)s has different material in %(path)s; refusing to rotate."),
                            code="rotation_refused",
                            key_id=key_id,
                            path=str(path),
                        )
                    keys[key_id] = material
            new_id = _next_key_id(keys)
            keys[new_id] = os.urandom(KEY_SIZE)
            rotated = KeyRing(keys, active=new_id, address_key=self._address_key, wrap_suite=self._wrap_suite)
            _write_atomic(path, rotated._document(), exclusive=False)
        # Only after the file is durable, so memory never runs ahead of disk.
        self._keys, self._active = keys, new_id
        return new_id

    # -- use -------------------------------------------------------------

    @property
    def active_key_id(self) -> str:
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @property
    def wrap_suite(self) -> CipherSuite:
        return self._wrap_suite

    @property
    def address_key(self) -> bytes:
        """HMAC key for content addresses. Never rotates."""
        return self._address_key

    def wrap(self, data_key: bytes) -> tuple[str, bytes]:
        """Wrap `data_key` under the active master key: (key id, wrapped bytes)."""
        suite = self._wrap_suite
        nonce = os.urandom(_WRAP_NONCE_SIZE)
        kek = self._wrapping_key(self._active, suite)
        sealed = aead_encrypt(suite, kek, nonce, data_key, _WRAP_AAD + self._active.encode())
        return self._active, bytes([suite.wire_id]) + nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        """Recover a data key; `ConfigurationError` for an unknown key id,
        `IntegrityFailure` for a damaged wrap or a wrong key id."""
        if key_id not in self._keys:
            raise ConfigurationError(
                _("The master key %(key_id)s is not in the key ring (known: %(known)s)."),
                code="unknown_master_key",
                key_id=key_id,
                known=sorted(self._keys),
            )
        if len(wrapped) < _WRAP_MIN_SIZE:
            raise IntegrityFailure(
                _("The wrapped key is truncated (%(size)s bytes)."),
                code="wrapped_key_truncated",
                key_id=key_id,
                size=len(wrapped),
            )
        suite = CipherSuite.from_wire_id(wrapped[0])
        nonce, sealed = wrapped[1 : 1 + _WRAP_NONCE_SIZE], wrapped[1 + _WRAP_NONCE_SIZE :]
        try:
            kek = self._wrapping_key(key_id, suite)
            return aead_decrypt(suite, kek, nonce, sealed, _WRAP_AAD + key_id.encode())
        except InvalidTag:
            raise IntegrityFailure(
                _("The wrapped key failed authentication under the master key %(key_id)s."),
                code="wrapped_key_unauthenticated",
                key_id=key_id,
            ) from None

    def _wrapping_key(self, key_id: str, suite: CipherSuite) -> bytes:
        master = self._keys[key_id]
        if suite is CipherSuite.AES_256_GCM:
            return master
        return _hkdf(master, suite.key_size, _SM4_WRAP_INFO)

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active!r}, key_ids={sorted(self._keys)!r}, wrap_suite={str(self._wrap_suite)!r})"

    def __reduce__(self) -> Any:
        # Pickles end up in caches and task queues: keep key material out.
        raise TypeError("KeyRing must not be pickled")


def _next_key_id(keys: Mapping[str, bytes]) -> str:
    number = len(keys) + 1
    while f"k{number}" in keys:
        number += 1
    return f"k{number}"


__all__ = ["KEY_SIZE", "SECRET_KEY_ID", "KeyRing"]
