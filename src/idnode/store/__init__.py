"""Storage of handle records: one interface (:mod:`idnode.store.base`), several backends."""

from __future__ import annotations

from pathlib import Path

from idnode.store.base import HandleStore, handle_key, prefix_of

__all__ = ["HandleStore", "handle_key", "is_database_url", "open_store", "prefix_of"]


def is_database_url(database: str) -> bool:
    """Whether ``database`` names a PostgreSQL server rather than a SQLite file."""
    return database.startswith(("postgresql://", "postgres://"))


async def open_store(database: str | Path) -> HandleStore:
    """Open (creating and migrating as needed) the store named by ``database``: a
    ``postgresql://`` URL, or the path of a SQLite file."""
    if isinstance(database, str) and is_database_url(database):
        from idnode.store.postgres import PostgresStore

        return await PostgresStore.open(database)
    from idnode.store.sqlite import SQLiteStore

    return await SQLiteStore.open(Path(database))
