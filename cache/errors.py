"""Exceptions of the ``cache`` package.

``cache`` never imports ``builder``; callers translate these at their boundary
(``builder.api`` and ``builder.cli`` map them to ``builder.errors.CacheError``)::

    CacheUnavailable     the cache directory cannot be used at all
    └── CacheRefused        another user could change it (see cache.trust)
    RecordError          a stored or given record is malformed (ValueError)
    └── RecordSchemaError   it was written by another record schema version
"""

from __future__ import annotations


class CacheUnavailable(Exception):
    """The cache directory cannot be opened, created or repaired.

    Callers should plan without history and show the message once as a warning.
    """


class RecordError(ValueError):
    """A record's JSON form is malformed; the message names the field."""


class RecordSchemaError(RecordError):
    """A record was written with a different record schema version."""
