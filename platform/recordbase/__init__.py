"""Recordbase's record engine: app definitions become SQL tables; records go through here.

Plain Python over SQLAlchemy; it never imports Flask. Every call takes an
explicit ``Actor``.
"""

from .actor import Actor
from .config import Settings
from .core import InstallResult, Recordbase
from .errors import (
    Conflict,
    DefinitionError,
    NotFound,
    PlanRefused,
    Problem,
    QueryError,
    RecordbaseError,
    ValidationError,
)
from .query import RecordQuery
from .records import Page, Record, RecordStore

__all__ = [
    "Actor", "Settings", "Recordbase", "InstallResult", "Conflict", "DefinitionError", "NotFound",
    "PlanRefused", "Problem", "QueryError", "RecordbaseError", "ValidationError", "RecordQuery",
    "Page", "Record", "RecordStore",
]
