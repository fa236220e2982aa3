"""The library's two backends and how a location picks one: a ``postgres://`` or ``postgresql://`` URL is
PostgreSQL (platforms hand out both spellings), anything else is a SQLite file."""

from __future__ import annotations

import urllib.parse

from il2watch.config import is_postgres
from il2watch.library import Library, LibraryError


def describe(location: str) -> str:
    """How messages name a library: a SQLite path as given, a database as host:port/name, never its
    user or password."""
    if not is_postgres(location):
        return location
    parts = urllib.parse.urlsplit(location.strip())
    host = parts.hostname or "localhost"
    port = _port(parts)
    return f"PostgreSQL {parts.path.lstrip('/') or '(default database)'} at {host}{f':{port}' if port else ''}"


def _port(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # "host:notaport": libpq says so when it connects
        return None


def backend_for(location: str) -> type[Library]:
    if is_postgres(location):
        try:
            from il2watch.store.postgres import PostgresLibrary
        except ImportError:
            raise LibraryError(
                "the library is a PostgreSQL URL, but PostgreSQL support is not installed: "
                "pip install 'il2watch[postgres]'"
            ) from None
        return PostgresLibrary
    from il2watch.store.sqlite import SqliteLibrary

    return SqliteLibrary
