"""The app factory, the health check, error responses and the instance secret."""

from __future__ import annotations

import logging
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from recordbase.config import Settings
from recordbase.errors import NotFound, Problem, QueryError, ValidationError
from recordbase_web import create_app

PROBLEM_JSON = "application/problem+json"


def make_app(settings: Settings) -> Flask:
    return create_app({"TESTING": True, "RECORDBASE_SETTINGS": settings})


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the factory -----------------------------------------------------------------


def test_factory_takes_secret_and_test_config_from_settings(app: Flask, settings: Settings) -> None:
    assert app.testing
    assert app.config["SECRET_KEY"] == "test-secret"
    assert app.config["RECORDBASE_SETTINGS"] is settings
    assert Path(app.instance_path) == settings.instance_path
    assert Path(app.template_folder or "") == Path(__file__).resolve().parent.parent / "templates"


def test_factory_reads_recordbase_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RECORDBASE_INSTANCE_PATH", str(tmp_path / "from-env"))
    monkeypatch.setenv("RECORDBASE_DATABASE_URL", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("RECORDBASE_SECRET_KEY", "env-secret")
    app = create_app({"TESTING": True})
    try:
        settings = app.config["RECORDBASE_SETTINGS"]
        assert settings.instance_path == tmp_path / "from-env"
        assert settings.database_url == f"sqlite:///{tmp_path}/env.db"
        assert app.config["SECRET_KEY"] == "env-secret"
    finally:
        app.extensions["recordbase"].dispose()


def test_test_config_overrides_settings(settings: Settings) -> None:
    app = create_app({"TESTING": True, "RECORDBASE_SETTINGS": settings, "SECRET_KEY": "other"})
    try:
        assert app.config["SECRET_KEY"] == "other"
    finally:
        app.extensions["recordbase"].dispose()


# --- /healthz ----------------------------------------------------------------------


def test_healthz_reports_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "unreachable_url",
    [
        pytest.param(
            lambda tmp: f"sqlite:///{tmp}/no/such/dir/recordbase.db", id="sqlite-missing-dir"
        ),
        pytest.param(
            lambda tmp: (
                f"postgresql+psycopg://rb:secret-pw@127.0.0.1:{closed_port()}/rb?connect_timeout=2"
            ),
            id="postgresql-closed-port",
        ),
    ],
)
def test_healthz_reports_unreachable_database_without_details(
    tmp_path: Path, unreachable_url: Callable[[Path], str], caplog: pytest.LogCaptureFixture
) -> None:
    url = unreachable_url(tmp_path)
    settings = Settings.from_env(
        environ={}, instance_path=tmp_path / "instance", database_url=url, secret_key="s"
    )
    app = make_app(settings)
    try:
        with caplog.at_level(logging.WARNING):
            response = app.test_client().get("/healthz")
    finally:
        app.extensions["recordbase"].dispose()
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}
    assert "secret-pw" not in response.get_data(as_text=True)
    assert "database unreachable" in caplog.text


# --- errors as problem+json ----------------------------------------------------------


def test_unknown_url_is_a_problem(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body == {
        "status": 404,
        "title": "Not Found",
        "detail": body["detail"],
        "errors": [],
    }
    assert body["detail"].startswith("The requested URL was not found")


def test_wrong_method_keeps_allow_header(client: FlaskClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["title"] == "Method Not Allowed"
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


@pytest.mark.parametrize(
    ("error", "status", "title", "errors"),
    [
        (
            ValidationError(
                "The record is invalid.",
                [
                    Problem("/fields/email", "Not an email address."),
                    Problem("/fields/phone", "Not a phone number in region CN."),
                ],
            ),
            422,
            "Unprocessable Entity",
            [
                {"pointer": "/fields/email", "message": "Not an email address."},
                {"pointer": "/fields/phone", "message": "Not a phone number in region CN."},
            ],
        ),
        (
            QueryError("Unknown operator.", [Problem("/filter/0/op", "No operator 'like'.")]),
            400,
            "Bad Request",
            [{"pointer": "/filter/0/op", "message": "No operator 'like'."}],
        ),
        (NotFound("No such record."), 404, "Not Found", []),
    ],
    ids=["validation", "query", "not-found"],
)
def test_engine_errors_become_problems(
    app: Flask, error: Exception, status: int, title: str, errors: list[dict[str, str]]
) -> None:
    bp = Blueprint("raises", __name__)

    @bp.get("/raise")
    def raise_it() -> str:
        raise error

    app.register_blueprint(bp)
    response = app.test_client().get("/raise")
    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json() == {
        "status": status,
        "title": title,
        "detail": str(error),
        "errors": errors,
    }


def test_unexpected_exception_is_a_generic_500(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    bp = Blueprint("crashes", __name__)

    @bp.get("/crash")
    def crash() -> str:
        raise RuntimeError("SELECT secret FROM people WHERE phone = '13800138000'")

    app.register_blueprint(bp)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/crash")
    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json() == {
        "status": 500,
        "title": "Internal Server Error",
        "detail": "Something went wrong on our side. The error has been logged.",
        "errors": [],
    }
    text = response.get_data(as_text=True)
    assert "SELECT" not in text and "13800138000" not in text and "Traceback" not in text
    # ...but the operator gets the whole story in the log.
    assert "Unhandled exception on GET /crash" in caplog.text
    assert "RuntimeError: SELECT secret" in caplog.text


# --- the instance secret --------------------------------------------------------------


def test_secret_key_generated_once_into_a_private_file(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    first = Settings.from_env(environ={}, instance_path=instance)
    key_file = instance / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.secret_key == key_file.read_text().strip()
    assert len(first.secret_key) >= 32
    again = Settings.from_env(environ={}, instance_path=instance)
    assert again.secret_key == first.secret_key


def test_configured_secret_key_writes_no_file(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    settings = Settings.from_env(
        environ={"RECORDBASE_SECRET_KEY": "from-env"}, instance_path=instance
    )
    assert settings.secret_key == "from-env"
    assert not (instance / "secret_key").exists()
