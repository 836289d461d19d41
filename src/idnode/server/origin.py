"""The client address of the request being answered, for the audit trail.

The transports set :data:`PEER` (``host:port``) in the task answering a request: UDP per
datagram, TCP per connection, HTTP per request (from the ASGI scope's ``client``). The
dispatcher reads it into each write's :class:`~idnode.store.writectx.WriteContext`
(``origin``). Each of those runs in a task of its own, so a value set there stays with that
request; outside any transport (a library call, a test) it is None.
"""

from __future__ import annotations

import contextvars

__all__ = ["PEER", "peer_text"]

#: ``host:port`` of the client whose request is being answered; None when unknown.
PEER: contextvars.ContextVar[str | None] = contextvars.ContextVar("idnode_peer", default=None)


def peer_text(address: object) -> str | None:
    """``host:port`` of a socket address (``(host, port, ...)``), None when there is none."""
    if isinstance(address, tuple | list) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return None
