"""The field-type registry. Each module in this package registers its types.

Adding a field type means adding one module here that decorates its class
with ``@register``; the registry imports every module of the package.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Field, FieldType, FieldValueError, FilterContext

_REGISTRY: dict[str, FieldType] = {}
_loaded = False


def register(cls: type[FieldType]) -> type[FieldType]:
    if cls.name in _REGISTRY:
        raise RuntimeError(f"field type {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in pkgutil.iter_modules(__path__):
            if module.name != "base":
                importlib.import_module(f"{__name__}.{module.name}")
        _loaded = True


def get(name: str) -> FieldType:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown field type {name!r}") from None


def all_types() -> dict[str, FieldType]:
    _load()
    return dict(_REGISTRY)


__all__ = ["Field", "FieldType", "FieldValueError", "FilterContext", "register", "get", "all_types"]
