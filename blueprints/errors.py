"""Every error leaves the app as ``application/problem+json`` (RFC 9457).

The body is ``{"status", "title", "detail", "errors"}``: ``title`` is the HTTP
status phrase, ``detail`` a message meant for the user, and ``errors`` the
engine's problems as ``{"pointer", "message"}`` (empty when there are none).
Unexpected exceptions are logged with their traceback and answered with a
generic 500: exception text can hold SQL or personal data, so it never leaves.

Each engine error carries its own status (``RecordbaseError.status``):
``NotFound`` 404, ``PermissionDenied`` 403, ``QueryError`` 400,
``ValidationError`` and ``DefinitionError`` 422, ``Conflict`` and
``PlanRefused`` 409 (the API answers a stale write itself, with the current
record as ``current``, 412 or 409). A refused CSRF token is 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFError
from recordbase.errors import Problem, RecordbaseError
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response as BaseResponse

PROBLEM_JSON = "application/problem+json"
GENERIC_DETAIL = "Something went wrong on our side. The error has been logged."


def problem_body(
    status: int,
    detail: str,
    problems: Iterable[Problem] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body; ``extra`` adds members (e.g. ``current`` for a conflict)."""
    body = {
        "status": status,
        "title": HTTP_STATUS_CODES.get(status, "Error"),
        "detail": detail,
        "errors": [{"pointer": p.pointer, "message": p.message} for p in problems],
    }
    body.update(extra or {})
    return body


def problem_response(
    status: int,
    detail: str,
    problems: Iterable[Problem] = (),
    response: BaseResponse | None = None,
    *,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> BaseResponse:
    """A problem+json response; ``response`` (e.g. an HTTPException's) keeps its headers."""
    response = response or Response()
    response.status_code = status
    response.set_data(json.dumps(problem_body(status, detail, problems, extra), ensure_ascii=False))
    response.content_type = PROBLEM_JSON
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_recordbase_error(error: RecordbaseError) -> BaseResponse:
    return problem_response(error.status, error.message, error.problems)


def handle_csrf_error(error: CSRFError) -> BaseResponse:
    # Flask-WTF says 400; a missing or wrong token is a refusal, as clients expect: 403.
    return problem_response(403, f"CSRF check failed: {error.description}")


def handle_http_exception(error: HTTPException) -> BaseResponse:
    # Keep the exception's own headers (Allow on 405, Retry-After on 503...).
    status = error.code or 500
    return problem_response(status, error.description or "", response=error.get_response())


def handle_unexpected(error: Exception) -> BaseResponse:
    current_app.logger.error(
        "Unhandled exception on %s %s", request.method, request.path, exc_info=error
    )
    return problem_response(500, GENERIC_DETAIL)


def init_app(app: Flask) -> None:
    app.register_error_handler(RecordbaseError, handle_recordbase_error)
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
