"""Attachment storage: files kept under the instance folder by their SHA-256.

A file's content decides its path (``files/ab/cd/<sha256>``), so the name a
user gave is never used as a path, identical uploads are stored once, and a
stored file cannot be overwritten with other content.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

from .errors import NotFound, Problem, ValidationError
from .fields.attachment import SHA256_RE, clean_file_name
from .models import StoredFile, utcnow

files_t: sa.Table = StoredFile.__table__  # type: ignore[assignment]
_CHUNK = 1 << 20


class FileStore:
    def __init__(self, root: Path, engine: sa.Engine, max_bytes: int) -> None:
        self.root = root
        self.engine = engine
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise NotFound("no such file")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes | IO[bytes], name: str, content_type: str = "application/octet-stream") -> dict[str, Any]:
        """Store a file; returns the attachment value to put in a record."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                chunks = [data] if isinstance(data, bytes) else iter(lambda: data.read(_CHUNK), b"")
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        limit = self.max_bytes // (1024 * 1024)
                        raise ValidationError(f"the file is larger than {limit} MB", [Problem("/file", f"larger than {limit} MB")])
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path_for(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, final)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        with self.engine.connect().execution_options(rb_write=True) as conn, conn.begin():
            exists = conn.execute(sa.select(files_t.c.sha256).where(files_t.c.sha256 == sha)).first()
            if not exists:
                conn.execute(sa.insert(files_t).values(sha256=sha, size=size, content_type=content_type, created_at=utcnow()))
        return {"sha256": sha, "name": clean_file_name(name), "size": size, "content_type": content_type}

    def open(self, sha256: str) -> IO[bytes]:
        path = self.path_for(sha256)
        if not path.exists():
            raise NotFound("no such file")
        return path.open("rb")
