"""Who is calling: the signed-in page user (Flask-Login) and CSRF protection (Flask-WTF).

The session holds only the user's id (``_user_id``, as Flask-Login writes it).
The user loader asks the engine for the actor *as of now* —
``Recordbase.actor_for`` returns ``None`` for a deactivated user, who is then
anonymous from the next request on — and Flask-Login caches it for the rest
of the request, so the actor is loaded once per request.

CSRF: every state-changing request authenticated by the session cookie must
carry the token (form field ``csrf_token`` or header ``X-CSRFToken``). Pages
get it with ``{{ csrf_token() }}``; the API hands it out in the
``X-CSRFToken`` response header of cookie-authenticated calls. Requests with
a bearer token carry no cookie authority and need none (see ``api.py``).
"""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect
from recordbase.actor import Actor


class SessionUser(UserMixin):
    """A signed-in user for Flask-Login: the engine's actor, loaded for this request."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def get_id(self) -> str:
        return str(self.actor.user_id)


def load_user(user_id: str) -> SessionUser | None:
    try:
        uid = int(user_id)
    except (TypeError, ValueError):
        return None
    actor = current_app.extensions["recordbase"].actor_for(uid)
    return None if actor is None else SessionUser(actor)


def init_app(app: Flask) -> None:
    login_manager = LoginManager()
    login_manager.user_loader(load_user)
    login_manager.init_app(app)
    CSRFProtect(
        app
    )  # app.extensions["csrf"]; blueprints that check CSRF themselves exempt themselves
