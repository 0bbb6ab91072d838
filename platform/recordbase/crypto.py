"""Keys and ciphers for personal data at rest: AES-256-GCM values and HMAC blind indexes.

Keys never live in the database. They come from ``RECORDBASE_DATA_KEYS``
(``"1:<base64 key>,2:<base64 key>"``; the highest id encrypts, all decrypt)
and ``RECORDBASE_INDEX_KEY``, or else from ``keys.json`` in the instance
folder, created on first use with mode 600. Back that file up apart from the
database: without it, encrypted values cannot be read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1"


class KeyError_(Exception):
    """A value was encrypted with a key this installation does not have."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


@dataclass(frozen=True)
class KeyRing:
    data_keys: Mapping[int, bytes]  # key id → 32-byte AES key
    index_key: bytes

    @property
    def primary(self) -> int:
        return max(self.data_keys)

    def encrypt(self, plaintext: str, context: str) -> str:
        """``v1:<key id>:<base64 nonce+ciphertext>``; ``context`` is bound as associated data."""
        nonce = os.urandom(12)
        sealed = AESGCM(self.data_keys[self.primary]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}:{self.primary}:{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, context: str) -> str:
        version, key_id, payload = stored.split(":", 2)
        if version != PREFIX or int(key_id) not in self.data_keys:
            raise KeyError_(f"no data key {key_id} to decrypt with")
        raw = _unb64(payload)
        return AESGCM(self.data_keys[int(key_id)]).decrypt(raw[:12], raw[12:], context.encode()).decode()

    def blind_index(self, canonical: str, context: str) -> str:
        """A keyed hash for equality lookups: equal values give equal indexes, nothing else leaks."""
        return hmac.new(self.index_key, f"{context}\x00{canonical}".encode(), hashlib.sha256).hexdigest()[:40]

    @classmethod
    def load(cls, environ: Mapping[str, str], instance_path: Path) -> KeyRing:
        data_env, index_env = environ.get("RECORDBASE_DATA_KEYS"), environ.get("RECORDBASE_INDEX_KEY")
        if data_env and index_env:
            keys = {}
            for part in data_env.split(","):
                key_id, _, key = part.strip().partition(":")
                keys[int(key_id)] = _unb64(key)
            return cls(keys, _unb64(index_env))
        return cls._from_file(instance_path / "keys.json")

    @classmethod
    def _from_file(cls, path: Path) -> KeyRing:
        if not path.exists():
            content = json.dumps({
                "data_keys": {"1": _b64(AESGCM.generate_key(bit_length=256))},
                "index_key": _b64(os.urandom(32)),
            })
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(content)
            except FileExistsError:  # another process made it first: use theirs
                pass
        data = json.loads(path.read_text())
        return cls({int(k): _unb64(v) for k, v in data["data_keys"].items()}, _unb64(data["index_key"]))
