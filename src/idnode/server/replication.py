"""The primary's side of replication: ops 1000-1002 answered from the store's transaction log.

A mirror (an idnode :mod:`~idnode.server.mirror`, or any compatible server) authenticates as a
replication administrator and asks for the transactions after the last one it has
(RETRIEVE_TXN_LOG), or for everything (DUMP_HANDLES). The success response is an ordinary
message; the data follows it on the TCP connection as a signed stream
(:mod:`idnode.protocol.replication`) that this module produces. Transports that can carry a
stream (TCP) install a :data:`STREAMS` list for the duration of one dispatch; a handler that
answers with a stream appends its producer to it.

When the mirror must start over (NEED_TO_REDUMP): it is ahead of this log (this store was
restored or replaced), or the entries after its last one have been pruned. Transaction ids are
handed out in commit order without gaps (:mod:`idnode.store.txnlog`), so "the entry after the
mirror's last one is still kept" is an exact test, where the reference server compares dates.

Each block of a stream is signed with the server key (RSA or DSA with SHA-1, as the reference
does; SM2 with SM3 for an SM2 key; the key HS_SITE publishes); signing runs on a worker thread
in batches, so a large dump does not stall the event loop. Every handle of a dump is a block:
with an SM2 key (pure Python, about 12 ms a signature) a dump costs that per handle.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import AsyncIterator
from typing import Final

from idnode.crypto.sm2 import Sm2PrivateKey
from idnode.errors import HandleError, OperationNotSupported
from idnode.protocol import auth
from idnode.protocol import replication as rp
from idnode.protocol.types.hs_pubkey import PrivateKey
from idnode.protocol.types.hs_site import handle_hash
from idnode.protocol.values import HandleValue
from idnode.store import HandleStore
from idnode.store.txnlog import Action, Txn, now_ms

__all__ = ["STREAMS", "ReplicationSource", "needs_redump", "stream_sink"]

log = logging.getLogger(__name__)

#: Set by a transport that can send a stream after the response: producers of the bytes that
#: follow it. None (the default) on transports that cannot (UDP, HTTP).
STREAMS: contextvars.ContextVar[list[AsyncIterator[bytes]] | None] = contextvars.ContextVar(
    "idnode_replication_streams", default=None
)

#: Blocks signed per worker-thread call, and log entries / handles read per store call.
_BATCH: Final = 256


def needs_redump(first_kept: int | None, last_id: int, mirror_last: int) -> bool:
    """Whether a mirror that has every transaction up to ``mirror_last`` must reload all
    handles, given the oldest entry kept here (None: none kept) and the last id handed out."""
    if mirror_last > last_id:
        return True  # the mirror has seen transactions this log never had
    if mirror_last == last_id:
        return False
    return first_kept is None or first_kept > mirror_last + 1


def _in_share(handle: str, share: rp.RetrieveTxnRequest | rp.DumpHandlesRequest) -> bool:
    """Whether ``handle`` hashes to the receiving server (an unknown hash type: send it, as
    the reference server does)."""
    if share.server_count == 1:
        return True
    try:
        return handle_hash(handle, share.hash_type) % share.server_count == share.server_number
    except HandleError:
        return True


def _encoded(values: tuple[HandleValue, ...]) -> list[bytes]:
    return [v.encode() for v in values]


class ReplicationSource:
    """Answers replication requests from ``store``, signing streams with ``key``."""

    def __init__(self, store: HandleStore, key: PrivateKey) -> None:
        self.store = store
        if isinstance(key, Sm2PrivateKey):
            sign = functools.partial(auth.sign_data, key, auth.SM3_HASH_NAME)
            self._writer = rp.SignedStreamWriter(sign, rp.SM3_HASH_NAME)
        else:
            self._writer = rp.SignedStreamWriter(functools.partial(auth.sign_data, key, "SHA1"))

    async def next_txn_id(self) -> int:
        return (await self.store.txn_log_state()).last_txn_id + 1

    async def _signed(self, blocks: list[bytes]) -> bytes:
        return b"".join(await asyncio.to_thread(lambda: [self._writer.block(b) for b in blocks]))

    async def txn_stream(self, request: rp.RetrieveTxnRequest) -> AsyncIterator[bytes]:
        """The transaction stream answering ``request`` (single-source form)."""
        state = await self.store.txn_log_state()
        redump = needs_redump(state.first_txn_id, state.last_txn_id, request.last_txn_id)
        status = rp.StreamStatus.NEED_TO_REDUMP if redump else rp.StreamStatus.SENDING_TRANSACTIONS
        yield self._writer.start() + await self._signed([rp.txn_header(status)])
        if redump:
            log.info(
                "mirror at txn %d must reload (log keeps %s..%d)",
                request.last_txn_id,
                state.first_txn_id,
                state.last_txn_id,
            )
            yield await self._signed([rp.txn_end(request.last_query_date_ms)])
            return
        after = request.last_txn_id
        while after < state.last_txn_id:
            txns = await self.store.txn_log(after, _BATCH)
            if not txns:
                break
            blocks = [
                await self._txn_block(t, request) for t in txns if t.txn_id <= state.last_txn_id
            ]
            after = txns[-1].txn_id
            chunk = [b for b in blocks if b is not None]
            if chunk:
                yield await self._signed(chunk)
        yield await self._signed([rp.txn_end(now_ms())])

    async def _txn_block(self, txn: Txn, request: rp.RetrieveTxnRequest) -> bytes | None:
        """The stream record of ``txn``, or None when it is not sent: not in the receiver's
        share, or superseded (an update of a handle deleted since, a delete of one re-created
        since: the later transaction carries the current state)."""
        handle = txn.handle.encode("utf-8")
        if txn.action in (Action.HOME_PREFIX, Action.UNHOME_PREFIX):
            return rp.txn_record(txn.txn_id, handle, txn.action, txn.date_ms, None)
        if not _in_share(txn.handle, request):
            return None
        values = await self.store.get_handle(txn.handle)
        if txn.action == Action.DELETE_HANDLE:
            if values is not None:
                return None
            return rp.txn_record(txn.txn_id, handle, txn.action, txn.date_ms, None)
        if values is None:
            return None
        return rp.txn_record(txn.txn_id, handle, txn.action, txn.date_ms, _encoded(values))

    async def dump_stream(self, request: rp.DumpHandlesRequest) -> AsyncIterator[bytes]:
        """Every handle in the receiver's share, then the homed prefixes. The log position
        comes first: transactions committed during the dump are sent again by the next
        RETRIEVE_TXN_LOG, which applies them idempotently."""
        state = await self.store.txn_log_state()
        head = [rp.dump_header(), rp.dump_server_state(now_ms(), state.last_txn_id)]
        yield self._writer.start() + await self._signed(head)
        after: str | None = None
        while True:
            page = await self.store.scan(after, _BATCH)
            if not page:
                break
            after = page[-1][0]
            blocks = [
                rp.dump_handle(h.encode("utf-8"), _encoded(v))
                for h, v in page
                if _in_share(h, request)
            ]
            if blocks:
                yield await self._signed(blocks)
        prefixes = await self.store.homed_prefixes()
        blocks = [rp.dump_homed_prefix(f"0.NA/{p}".encode()) for p in prefixes]
        yield (await self._signed(blocks) if blocks else b"") + rp.dump_done()


def stream_sink() -> list[AsyncIterator[bytes]]:
    """Where a handler puts the stream that follows its response (see :data:`STREAMS`);
    OperationNotSupported on a transport that cannot send one."""
    sink = STREAMS.get()
    if sink is None:
        raise OperationNotSupported("replication streams are sent over TCP only")
    return sink
