"""Replication requests, the primary's side (ops 1000-1002; see :mod:`idnode.server.replication`).

Only server administrators and the configured replication administrators may pull the
transaction log and dumps; the streams themselves come from the :class:`ReplicationSource`,
which needs the server key (without it the ops are not supported).
"""

from __future__ import annotations

from collections.abc import Sequence

from idnode.errors import InvalidAdmin, OperationNotSupported
from idnode.protocol.bodies import Body, EmptyBody
from idnode.protocol.message import Message
from idnode.protocol.replication import (
    DumpHandlesRequest,
    NextTxnIdBody,
    RetrieveTxnRequest,
    RetrieveTxnResponseBody,
)
from idnode.server.authz import Authorizer, Identity
from idnode.server.replication import ReplicationSource, stream_sink

__all__ = ["ReplicationHandlers"]


class ReplicationHandlers:
    def __init__(
        self,
        replication: ReplicationSource | None,
        authorizer: Authorizer,
        replication_admins: Sequence[Identity],
    ) -> None:
        self._replication = replication
        self._authorizer = authorizer
        self._replication_admins = tuple(replication_admins)

    async def _replication_source(self, identity: Identity | None) -> ReplicationSource:
        assert identity is not None
        if self._replication is None:
            raise OperationNotSupported("replication needs the server key")
        admins = self._replication_admins
        if not (
            await self._authorizer.is_server_admin(identity)
            or await self._authorizer.is_any_of(identity, admins)
        ):
            raise InvalidAdmin(f"{identity} is not a replication administrator")
        return self._replication

    async def next_txn_id(self, request: Message, identity: Identity | None) -> Body:
        source = await self._replication_source(identity)
        return NextTxnIdBody(await source.next_txn_id())

    async def retrieve_txn_log(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, RetrieveTxnRequest)
        source = await self._replication_source(identity)
        if body.state_json is not None:
            raise OperationNotSupported("multi-primary replication is not supported")
        stream_sink().append(source.txn_stream(body))
        return RetrieveTxnResponseBody()

    async def dump_handles(self, request: Message, identity: Identity | None) -> Body:
        body = request.body
        assert isinstance(body, DumpHandlesRequest)
        source = await self._replication_source(identity)
        stream_sink().append(source.dump_stream(body))
        return EmptyBody()
