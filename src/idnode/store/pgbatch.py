"""Coalescing of concurrent record reads on PostgreSQL: many ``get_record`` calls, one statement.

A resolution that misses the response cache reads one record by primary key. On PostgreSQL
each such read used to cost a pool acquire and release and one round trip, and at a few
thousand reads a second that, more than the look-up itself, set the pace. :class:`ReadCoalescer`
answers the reads that are waiting at the same moment with one statement
(``SELECT handle_key, record FROM handles WHERE handle_key = ANY($1)``) on one connection
(which one is the store's business: :meth:`~.postgres.PostgresStore.get_record`).

How reads are grouped (all of it on the event loop's thread, no locks, no timers):

* A read issued while no statement of this object is running and no batch is open goes at
  once, alone, with the single-key statement: nobody is waiting who could share it, and the
  reads that come after it in the same turn form the next batch. A lone read thus runs as
  it did without coalescing (measured: the same time within 1-2 µs).
* Otherwise the first read of an event-loop turn opens a *batch* and becomes its *leader*: it
  yields once (``asyncio.sleep(0)``, which puts it behind every callback already due in this
  turn of the loop), and the reads issued meanwhile join the batch as *followers*, each
  waiting on a future of its own.
* After that yield the batch is sent if fewer than ``max_batches`` batches are in flight.
  Otherwise it stays open, and the reads that arrive while the statements in flight run join
  it, until one of them finishes (then it is sent at once) or it holds ``max_keys`` distinct
  keys (then it is closed and queued, and the next read opens a new batch). So under load the
  batches grow with the load, which is what makes each read cheaper, and a slow statement
  holds up only its own batch: up to ``max_batches`` run side by side.
* The leader runs the statement in its own task (no task is created for it) and answers the
  followers; a batch of one key is read with the single-key statement.
* At most ``max_waiting`` reads wait in batches (open, queued or in flight). A read beyond it
  does not join one: it is read on its own, through the store's ordinary path, where it waits
  for a pooled connection at most the store's ``timeout``. Waiting memory stays bounded, and an
  overloaded node degrades to what it did without coalescing.

What every read keeps: a batch runs through the store's ``_run`` (statement timeout, the retry
after a lost connection, the standby pool while no primary is reachable) exactly as a single
read does (the store passes its reads in). If the statement fails, every reader of that batch
gets a StoreError of the same kind and message as a single read would raise (the leader the
original, each follower its own copy, caused by the same driver error). Cancelling a
follower only drops its own result. Cancelling the leader hands its batch to a new task, which
sends it (again, if the statement was interrupted) for the followers. A read cancelled before
its batch is sent still has its key read, which is harmless.

Consistency: a batch is sent after every read in it was issued, so a read issued after a write
returned sees that write (the statement starts after the write's COMMIT); the response cache
notes a handle's change counter before asking for the record, so a batched read is no older
than a single read issued at the same point would be.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["MAX_KEYS", "ReadCoalescer"]

#: Most distinct keys read by one statement.
MAX_KEYS = 256

#: Reads one key: its record, or None if absent.
ReadOne = Callable[[str], Awaitable[bytes | None]]
#: Reads several distinct keys: the records of those that exist, by key.
ReadMany = Callable[[Sequence[str]], Awaitable[Mapping[str, bytes]]]
#: What a batch read gave: the records found by key, or the error it raised.
_Outcome = Mapping[str, bytes | None] | Exception


class _Batch:
    """The readers of one statement: for each key, the futures of the followers asking for it
    (the leader has none)."""

    __slots__ = ("ended", "go", "granted", "waiters")

    def __init__(self, key: str) -> None:
        self.waiters: dict[str, list[asyncio.Future[bytes | None]]] = {key: []}
        #: The leader's first turn is over: it can be sent as soon as a slot is free.
        self.ended = False
        #: It holds a slot: its statement may run.
        self.granted = False
        #: Resolved when it is granted a slot, for a leader that waits for one.
        self.go: asyncio.Future[None] | None = None


class ReadCoalescer:
    """Groups the concurrent reads of one event loop into few statements (see the module
    docstring). ``read_one`` and ``read_many`` are the store's reads; they raise the store's
    errors (StoreError).

    Must be used from one event loop (the store's); :meth:`read` may be called by any number
    of tasks at once.
    """

    def __init__(
        self,
        read_one: ReadOne,
        read_many: ReadMany,
        *,
        max_batches: int,
        max_keys: int = MAX_KEYS,
        max_waiting: int | None = None,
    ) -> None:
        if max_batches < 1 or max_keys < 1:
            raise ValueError("max_batches and max_keys must be at least 1")
        self._read_one = read_one
        self._read_many = read_many
        self._max_batches = max_batches
        self._max_keys = max_keys
        #: Default: enough for every slot and one full batch more waiting to be sent.
        self._max_waiting = (max_batches + 1) * max_keys if max_waiting is None else max_waiting
        self._open: _Batch | None = None  # collecting readers
        self._queued: deque[_Batch] = deque()  # full, waiting for a slot
        self._busy = 0  # slots held (batches granted and not yet answered)
        self._waiting = 0  # readers of open, queued or running batches
        self._takeovers: set[asyncio.Task[None]] = set()  # see _abandon

    @property
    def waiting(self) -> int:
        """Readers waiting for a batch's answer."""
        return self._waiting

    @property
    def in_flight(self) -> int:
        """Batches holding a slot (about to run or running)."""
        return self._busy

    async def read(self, key: str) -> bytes | None:
        """The record stored under ``key`` (as the store writes keys), or None if absent."""
        if self._waiting >= self._max_waiting:
            return await self._read_one(key)
        batch = self._open
        self._waiting += 1
        if batch is None and self._busy == 0:
            # Idle: no statement is running, so no reader is waiting to be joined: this one
            # goes at once, alone (readers of this turn after it form the next batch).
            self._busy += 1
            try:
                return await self._read_one(key)
            finally:
                self._waiting -= 1
                self._busy -= 1
                self._dispatch()
        try:
            if batch is None:
                return await self._lead(key)
            return await self._follow(batch, key)
        finally:
            self._waiting -= 1

    async def _follow(self, batch: _Batch, key: str) -> bytes | None:
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        readers = batch.waiters.get(key)
        if readers is not None:
            readers.append(future)
        else:
            batch.waiters[key] = [future]
            if len(batch.waiters) >= self._max_keys:
                self._open = None
                self._queued.append(batch)
                self._dispatch()
        return await future

    async def _lead(self, key: str) -> bytes | None:
        batch = self._open = _Batch(key)
        try:
            await asyncio.sleep(0)  # the rest of this turn: others join
            batch.ended = True
            self._dispatch()
            if not batch.granted:
                batch.go = asyncio.get_running_loop().create_future()
                await batch.go
            outcome = await self._send(batch)
        except asyncio.CancelledError:
            self._abandon(batch)
            raise
        self._finish(batch, outcome)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome.get(key)

    # -- slots -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Grant free slots: to the full batches first, then to the open one if its leader's
        first turn is over."""
        while self._busy < self._max_batches:
            if self._queued:
                batch = self._queued.popleft()
            elif self._open is not None and self._open.ended:
                batch, self._open = self._open, None
            else:
                return
            self._busy += 1
            batch.granted = True
            if batch.go is not None and not batch.go.done():
                batch.go.set_result(None)

    async def _send(self, batch: _Batch) -> _Outcome:
        """Read the keys of ``batch`` (which holds a slot)."""
        waiters = batch.waiters
        try:
            if len(waiters) == 1:
                (key,) = waiters
                return {key: await self._read_one(key)}
            return await self._read_many(list(waiters))
        except Exception as exc:
            return exc

    def _finish(self, batch: _Batch, outcome: _Outcome) -> None:
        """Answer the followers of ``batch`` and free its slot."""
        for key, futures in batch.waiters.items():
            for future in futures:
                if future.done():  # a cancelled follower
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(_copy(outcome))
                else:
                    future.set_result(outcome.get(key))
        self._busy -= 1
        self._dispatch()

    def _abandon(self, batch: _Batch) -> None:
        """The leader of ``batch`` was cancelled (before or while its statement ran): a new
        task sends it for the followers, keeping its place (open, queued or holding a slot)."""
        try:
            task = asyncio.get_running_loop().create_task(self._take_over(batch))
        except RuntimeError:  # the loop is closing: the followers are cancelled with it
            return
        self._takeovers.add(task)
        task.add_done_callback(self._takeovers.discard)

    async def _take_over(self, batch: _Batch) -> None:
        if not batch.granted:
            batch.ended = True
            if batch.go is None or batch.go.done():
                batch.go = asyncio.get_running_loop().create_future()
            self._dispatch()
            if not batch.granted:
                await batch.go
        self._finish(batch, await self._send(batch))


def _copy(exc: Exception) -> Exception:
    """An exception of the same type and message as ``exc``, caused by what caused it: each
    reader raises its own instance (raising one instance from several tasks would splice
    their tracebacks together)."""
    try:
        twin = type(exc)(*exc.args)
    except Exception:  # a type that cannot be rebuilt from its args
        return exc
    twin.__cause__ = exc.__cause__ if exc.__cause__ is not None else exc
    twin.__suppress_context__ = True
    return twin
