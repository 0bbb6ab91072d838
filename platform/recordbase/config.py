"""Settings for the engine, read from ``RECORDBASE_*`` environment variables.

Plain Python on purpose: the CLI, the web app and the tests all build a
``Settings`` the same way, and the engine never reaches for Flask's config.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "RECORDBASE_"


def _write_private(path: Path, text: str) -> None:
    """Create ``path`` readable by its owner only, failing if it already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@dataclass(frozen=True)
class Settings:
    instance_path: Path
    database_url: str
    secret_key: str
    default_phone_region: str = "CN"
    trash_days: int = 30
    max_attachment_mb: int = 25
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def attachments_path(self) -> Path:
        return self.instance_path / "files"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: object
    ) -> Settings:
        """Defaults, then the environment, then ``overrides`` (used by tests)."""
        env = dict(os.environ if environ is None else environ)
        instance = Path(
            str(overrides.pop("instance_path", None) or env.get(ENV_PREFIX + "INSTANCE_PATH") or "instance")
        ).resolve()
        instance.mkdir(parents=True, exist_ok=True)
        url = str(
            overrides.pop("database_url", None)
            or env.get(ENV_PREFIX + "DATABASE_URL")
            or f"sqlite:///{instance / 'recordbase.db'}"
        )
        secret = overrides.pop("secret_key", None) or env.get(ENV_PREFIX + "SECRET_KEY")
        if not secret:
            secret = load_or_create_secret(instance / "secret_key")
        settings = cls(
            instance_path=instance,
            database_url=normalise_database_url(url),
            secret_key=str(secret),
            default_phone_region=env.get(ENV_PREFIX + "PHONE_REGION", "CN"),
            trash_days=int(env.get(ENV_PREFIX + "TRASH_DAYS", "30")),
            max_attachment_mb=int(env.get(ENV_PREFIX + "MAX_ATTACHMENT_MB", "25")),
            extra={k: v for k, v in env.items() if k.startswith(ENV_PREFIX)},
        )
        return replace(settings, **overrides) if overrides else settings  # type: ignore[arg-type]


def load_or_create_secret(path: Path) -> str:
    """The instance's secret key: generated once, kept in a file only its owner can read."""
    if not path.exists():
        try:
            _write_private(path, secrets.token_urlsafe(48))
        except FileExistsError:  # another process won the race; use theirs
            pass
    return path.read_text().strip()


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the user gave."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
