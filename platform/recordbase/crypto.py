"""Keys and ciphers for personal data at rest: AES-256-GCM values and HMAC blind indexes.

Keys never live in the database. They come from ``RECORDBASE_DATA_KEYS``
(``"1:<base64 key>,2:<base64 key>"``; the highest id encrypts, all decrypt)
and ``RECORDBASE_INDEX_KEY``, or else from ``keys.json`` in the instance
folder, created on first use with mode 600. Back that file up apart from the
database: without it, encrypted values cannot be read.

A ring loaded from ``keys.json`` follows that file: ``add_data_key`` writes a
new data key into it atomically (the old ones stay: values sealed under them,
the audit trail's above all, must keep opening), and every process reading
the same file picks the new key up — at once when it meets a value sealed
under a key id it does not have, and within ``CHECK_SECONDS`` for what it
encrypts — so a running web server keeps working while ``recordbase keys
rotate`` re-encrypts (see ``keys.py``).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process lock for adding keys
    fcntl = None  # type: ignore[assignment]

PREFIX = "v1"


class KeyError_(Exception):
    """A value was encrypted with a key this installation does not have."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def key_id_of(stored: str) -> int:
    """The id of the data key a stored ``v1:<key id>:…`` value is sealed under (``ValueError`` if none)."""
    version, key_id, _ = stored.split(":", 2)
    if version != PREFIX:
        raise ValueError(f"not a sealed value of version {PREFIX}")
    return int(key_id)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


class KeyRing:
    """Data keys by id (the highest encrypts) and the blind-index key.

    Thread-safe: the keys are one immutable snapshot swapped as a whole, and
    reloading or adding a key happens under a lock.
    """

    #: How often (at most) ``encrypt`` checks whether ``keys.json`` changed.
    CHECK_SECONDS = 1.0

    def __init__(self, data_keys: Mapping[int, bytes], index_key: bytes, *, path: Path | None = None) -> None:
        if not data_keys:
            raise ValueError("a key ring needs at least one data key")
        self._keys: tuple[Mapping[int, bytes], bytes] = (MappingProxyType(dict(data_keys)), index_key)
        self._path = path
        self._lock = threading.Lock()
        self._seen = _signature(path) if path is not None else None
        self._next_check = time.monotonic() + self.CHECK_SECONDS
        self._ciphers: dict[int, tuple[bytes, AESGCM]] = {}

    # --- the keys ------------------------------------------------------------------------

    @property
    def data_keys(self) -> Mapping[int, bytes]:
        return self._keys[0]

    @property
    def index_key(self) -> bytes:
        return self._keys[1]

    @property
    def primary(self) -> int:
        return max(self._keys[0])

    @property
    def path(self) -> Path | None:
        """``keys.json`` when the keys come from it; ``None`` when they come from the environment."""
        return self._path

    @property
    def source(self) -> str:
        return "file" if self._path is not None else "environment"

    def __repr__(self) -> str:  # never the key material
        return f"KeyRing(source={self.source!r}, key_ids={sorted(self.data_keys)})"

    # --- ciphers -----------------------------------------------------------------------

    def encrypt(self, plaintext: str, context: str) -> str:
        """``v1:<key id>:<base64 nonce+ciphertext>``; ``context`` is bound as associated data."""
        self._check_file()
        data_keys = self._keys[0]
        primary = max(data_keys)
        nonce = os.urandom(12)
        sealed = self._cipher(primary, data_keys[primary]).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{PREFIX}:{primary}:{_b64(nonce + sealed)}"

    def decrypt(self, stored: str, context: str) -> str:
        version, key_id, payload = stored.split(":", 2)
        if version != PREFIX:
            raise KeyError_(f"not a value sealed by this version ({version!r})")
        key = self._keys[0].get(int(key_id))
        if key is None:
            # Another process (``keys rotate``) may have added the key: read the file again, once.
            self._refresh()
            key = self._keys[0].get(int(key_id))
            if key is None:
                raise KeyError_(f"no data key {key_id} to decrypt with")
        raw = _unb64(payload)
        return self._cipher(int(key_id), key).decrypt(raw[:12], raw[12:], context.encode()).decode()

    def _cipher(self, key_id: int, key: bytes) -> AESGCM:
        """The AES-GCM cipher of a data key, made once (a key id's key never changes; objects are thread-safe)."""
        found = self._ciphers.get(key_id)
        if found is None or found[0] is not key:
            found = self._ciphers[key_id] = (key, AESGCM(key))
        return found[1]

    def blind_index(self, canonical: str, context: str) -> str:
        """A keyed hash for equality lookups: equal values give equal indexes, nothing else leaks."""
        return hmac.digest(self._keys[1], f"{context}\x00{canonical}".encode(), "sha256").hex()[:40]

    # --- following keys.json -----------------------------------------------------------------

    def reload(self) -> bool:
        """Read ``keys.json`` again; ``True`` if it brought a key this ring lacked.

        Keys already held are never dropped, whatever the file says now. Keys
        from the environment cannot change: then this does nothing.
        """
        if self._path is None:
            return False
        with self._lock:
            return self._reload_locked()

    def _refresh(self) -> None:
        """Reload unless ``keys.json`` is the very file last read (a missing key then stays missing)."""
        if self._path is None:
            return
        with self._lock:
            if _signature(self._path) != self._seen:
                self._reload_quietly()

    def _reload_quietly(self) -> None:
        """Reload for a running process: an unreadable or missing file keeps the keys in memory."""
        try:
            self._reload_locked()
        except (OSError, ValueError, KeyError):
            self._seen = _signature(self._path) if self._path is not None else None

    def _reload_locked(self) -> bool:
        assert self._path is not None
        self._seen = _signature(self._path)
        self._next_check = time.monotonic() + self.CHECK_SECONDS
        data_keys, index_key = _read_file(self._path)
        current = self._keys[0]
        if not set(data_keys) - set(current):
            return False
        self._keys = (MappingProxyType({**current, **data_keys}), index_key)
        return True

    def _check_file(self) -> None:
        """Reload when ``keys.json`` was replaced (at most every ``CHECK_SECONDS``)."""
        if self._path is None or time.monotonic() < self._next_check:
            return
        with self._lock:
            if time.monotonic() < self._next_check:
                return
            self._next_check = time.monotonic() + self.CHECK_SECONDS
            if _signature(self._path) != self._seen:
                self._reload_quietly()

    def add_data_key(self) -> int:
        """Add a new data key to ``keys.json`` (id = highest + 1) and encrypt with it from now on.

        The file is rewritten atomically — a private temporary file in the same
        folder, flushed to disk, then renamed over it — under a lock file, so
        two processes adding keys at once cannot lose one. Old keys are kept.
        Keys from the environment cannot be added here (``ValueError``).
        """
        if self._path is None:
            raise ValueError("the data keys come from RECORDBASE_DATA_KEYS: add a key with a higher id there")
        with self._lock, _file_lock(self._path):
            data = json.loads(self._path.read_text())
            ids = {int(k) for k in data["data_keys"]} | set(self._keys[0])
            new_id = max(ids) + 1
            data["data_keys"][str(new_id)] = _b64(AESGCM.generate_key(bit_length=256))
            _write_atomically(self._path, json.dumps(data))
            self._reload_locked()
        return new_id

    # --- loading --------------------------------------------------------------------------

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
        seen = _signature(path)  # before reading: a replacement in between is noticed later, not missed
        data_keys, index_key = _read_file(path)
        ring = cls(data_keys, index_key, path=path)
        ring._seen = seen
        return ring


def _read_file(path: Path) -> tuple[dict[int, bytes], bytes]:
    data = json.loads(path.read_text())
    return {int(k): _unb64(v) for k, v in data["data_keys"].items()}, _unb64(data["index_key"])


def _write_atomically(path: Path, content: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable: a value sealed under a key the disk forgot is lost
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock beside ``path`` that other processes adding keys wait for."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
