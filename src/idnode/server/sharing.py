"""Sessions and login tokens of a node served by several worker processes (``workers = N``).

:func:`share_sessions` opens the node's shared session database
(:mod:`idnode.server.sessiondb`) and puts there what a single process keeps in memory: the
dispatcher's native sessions (:class:`~idnode.server.shared_sessions.SharedSessionTable`),
the ``/api/sessions`` sessions (:class:`~idnode.http.sessions.SharedSessionStore`) and the
SNMS login tokens, which become signed (:class:`~idnode.industry.tokens.SignedTokens`).
"""

from __future__ import annotations

from pathlib import Path

from idnode.http.sessions import SessionStore, SharedSessionStore
from idnode.industry.accounts import service_for
from idnode.industry.tokens import SignedTokens
from idnode.server.dispatch import Dispatcher
from idnode.server.sessiondb import SessionDatabase
from idnode.server.shared_sessions import SharedSessionTable

__all__ = ["share_sessions"]


def share_sessions(dispatcher: Dispatcher, directory: Path) -> tuple[SessionDatabase, SessionStore]:
    """Share ``dispatcher``'s sessions and tokens through the database in ``directory``;
    returns the database (to close with the node) and the ``/api/sessions`` store to use."""
    db = SessionDatabase(directory)
    table = dispatcher.sessions.table
    dispatcher.sessions.table = SharedSessionTable(
        db, capacity=table.capacity, max_timeout=table.max_timeout
    )
    service = service_for(dispatcher)
    if service is not None:
        service.tokens = SignedTokens(db)
    return db, SharedSessionStore(db)
