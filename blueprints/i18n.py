"""Languages: English and Simplified Chinese, with flask-babel.

The language is the one the user chose with the switch in the page header
(kept in the session as ``lang``), else the best match of the browser's
``Accept-Language``, else English. Strings in Python and templates are marked
with ``_()`` / ``gettext``; the catalogue is ``translations/zh_CN/LC_MESSAGES/messages.po``
(extracted with ``babel.cfg``), compiled to ``.mo`` by ``make translations``.

Definition labels may be plain text or ``{"en": ..., "zh-CN": ...}``:
:func:`label` shows either in the current language, and is the one place
that decides it (templates call it as ``label(x)``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from flask import Flask, has_request_context, request, session
from flask_babel import Babel, Domain, get_locale

TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
# Language tags as definitions and the switch write them → babel's locale names.
LANGUAGES = {"en": "en", "zh-CN": "zh_CN"}
LANGUAGE_NAMES = {"en": "English", "zh-CN": "中文"}
DEFAULT_LANGUAGE = "en"


def current_language() -> str:
    """``"en"`` or ``"zh-CN"``: the session's choice, else the browser's, else English."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT_LANGUAGE


def select_locale() -> str:
    return LANGUAGES[current_language()]


def label(text: Any, language: str | None = None) -> str:
    """A definition label in the current language.

    ``text`` is a string (shown as it is) or a mapping of language tags to
    strings: the current language first, then its base language (``zh`` for
    ``zh-CN``), then English, then whatever is there. ``None`` is "".
    """
    if text is None:
        return ""
    if not isinstance(text, Mapping):
        return str(text)
    language = language or current_language()
    wanted = [language, language.split("-")[0], DEFAULT_LANGUAGE]
    normalised = {str(k).replace("_", "-").lower(): v for k, v in text.items()}
    for tag in wanted:
        value = normalised.get(tag.lower())
        if isinstance(value, str) and value:
            return value
    return next((str(v) for v in text.values() if v), "")


class Catalogues(Domain):
    """The ``messages`` catalogues in ``translations/``, found by their folder name (``zh_CN``).

    Babel parses ``zh_CN`` as ``zh_Hans_CN``, and gettext would look for a
    folder of that name; this looks for ``<language>_<territory>`` first.
    """

    def __init__(self) -> None:
        super().__init__(translation_directories=[str(TRANSLATIONS)])
        self._loaded: dict[str, NullTranslations] = {}

    def get_translations(self) -> NullTranslations:
        locale = get_locale()
        if locale is None:
            return NullTranslations()
        key = str(locale)
        found = self._loaded.get(key)
        if found is None:
            names = [f"{locale.language}_{locale.territory}", key] if locale.territory else [key]
            found = Translations.load(str(TRANSLATIONS), names, "messages")
            self._loaded[key] = found
        return found


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel = Babel(app, locale_selector=select_locale)
    babel.domain_instance = Catalogues()  # type: ignore[method-assign,assignment]
    if not any(TRANSLATIONS.glob("*/LC_MESSAGES/messages.mo")):
        app.logger.warning(
            "the Chinese translation is not compiled: run 'make translations' "
            "(pybabel compile -d translations); pages are shown in English"
        )
    app.jinja_env.globals.update(
        label=label,
        current_language=current_language,
        language_names=LANGUAGE_NAMES,
        get_locale=get_locale,
    )
