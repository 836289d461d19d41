"""Coalesced record reads on PostgreSQL (:mod:`idnode.store.pgbatch`): concurrent
``get_record`` calls answered by shared statements give exactly what single reads give, keep
to the bounds (keys per statement, waiting readers), pass an error to every reader of the
batch, survive the cancellation of a reader, and see the writes that returned before them.

Every test runs against the session's throwaway server (``pg_server`` in conftest). To watch
the batches, some tests build their own :class:`ReadCoalescer` over the store's real read
methods, wrapped only to record what each statement was asked for.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.errors import StoreError
from idnode.protocol.values import HandleValue, encode_record
from idnode.store import postgres as backend
from idnode.store.base import handle_key
from idnode.store.pgbatch import ReadCoalescer
from idnode.store.postgres import PostgresStore, connect, to_db
from tests.pgserver import PostgresServer


def record_of(handle: str) -> bytes:
    return encode_record([HandleValue(1, "URL", f"https://example.org/{handle}".encode())])


class Recorder:
    """The store's two reads, recording the keys each call was given."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.singles: list[str] = []
        self.batches: list[list[str]] = []

    async def read_one(self, key: str) -> bytes | None:
        self.singles.append(key)
        return await self.store._read_one(key)

    async def read_many(self, keys: Sequence[str]) -> Mapping[str, bytes]:
        self.batches.append(list(keys))
        return await self.store._read_many(keys)

    def coalescer(self, **bounds: int) -> ReadCoalescer:
        return ReadCoalescer(self.read_one, self.read_many, **bounds)


def key(handle: str) -> str:
    return to_db(handle_key(handle))


@pytest.fixture
def pg_store(runner: asyncio.Runner, pg_url: str) -> Iterator[PostgresStore]:
    store = runner.run(PostgresStore.open(pg_url, timeout=5))
    yield store
    runner.run(store.close())


async def populate(store: PostgresStore, handles: Sequence[str]) -> None:
    created = await store.create_records([(h, record_of(h)) for h in handles])
    assert all(created)


class TableLock:
    """Holds ``LOCK TABLE handles`` (ACCESS EXCLUSIVE) from another session, so that every
    read of the store waits until :meth:`release` (or its lock timeout)."""

    def __init__(self, conn: asyncpg.Connection[asyncpg.Record]) -> None:
        self.conn = conn

    @classmethod
    async def take(cls, database_url: str) -> TableLock:
        conn = await connect(database_url)
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE handles IN ACCESS EXCLUSIVE MODE")
        return cls(conn)

    async def waiters(self) -> int:
        # Within a transaction pg_stat_activity is read once; drop that snapshot first.
        await self.conn.execute("SELECT pg_stat_clear_snapshot()")
        return int(
            await self.conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND application_name = 'idnode' AND pid <> pg_backend_pid()"
            )
        )

    async def wait_for_waiters(self, count: int) -> None:
        for _ in range(1000):
            if await self.waiters() >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"fewer than {count} sessions waited for the lock")

    async def release(self) -> None:
        await self.conn.execute("ROLLBACK")
        await self.conn.close(timeout=5)


# -- answers ---------------------------------------------------------------------------------
async def test_concurrent_reads_get_their_own_records(pg_store: PostgresStore) -> None:
    present = [f"B/{i}" for i in range(300)]
    await populate(pg_store, present)
    asked = [*present, *(f"B/absent-{i}" for i in range(200)), "b/7", "B/7", "B/\x00"]
    random.Random(3).shuffle(asked)
    got = await asyncio.gather(*(pg_store.get_record(h) for h in asked))
    by_key = {key(h): h for h in present}
    for handle, record in zip(asked, got, strict=True):
        stored = by_key.get(key(handle))
        assert record == (None if stored is None else record_of(stored)), handle
    values = await asyncio.gather(*(pg_store.get_handle(h) for h in ("B/1", "B/nope", "b/2")))
    assert values == [
        (HandleValue(1, "URL", b"https://example.org/B/1"),),
        None,
        (HandleValue(1, "URL", b"https://example.org/B/2"),),
    ]


async def test_reads_of_one_turn_share_a_statement(pg_store: PostgresStore) -> None:
    handles = [f"S/{i}" for i in range(40)]
    await populate(pg_store, handles[::2])
    recorder = Recorder(pg_store)
    reads = recorder.coalescer(max_batches=2)
    asked = [key(h) for h in handles] + [key("S/0")] * 5  # a key asked several times
    got = await asyncio.gather(*(reads.read(k) for k in asked))
    # Nothing was running: the first read went at once, alone; the others shared a statement
    # (each key once).
    assert recorder.singles == [key("S/0")]
    assert recorder.batches == [[key(h) for h in handles[1:]] + [key("S/0")]]
    assert (
        got
        == [record_of(h) if i % 2 == 0 else None for i, h in enumerate(handles)]
        + [record_of("S/0")] * 5
    )
    # A lone read runs the single-key statement.
    assert await reads.read(key("S/2")) == record_of("S/2")
    assert recorder.singles == [key("S/0"), key("S/2")]
    assert reads.waiting == 0 and reads.in_flight == 0


async def test_batch_sizes_keep_to_the_bound(pg_store: PostgresStore, pg_url: str) -> None:
    handles = [f"K/{i}" for i in range(100)]
    await populate(pg_store, handles)
    recorder = Recorder(pg_store)
    reads = recorder.coalescer(max_batches=1, max_keys=16, max_waiting=1000)
    lock = await TableLock.take(pg_url)
    try:
        first = asyncio.ensure_future(reads.read(key("K/0")))  # goes at once, holds the slot
        await lock.wait_for_waiters(1)
        # While it waits, the others gather: full batches are queued, the rest stays open.
        rest = [asyncio.ensure_future(reads.read(key(h))) for h in handles[1:]]
        for _ in range(3):
            await asyncio.sleep(0)
        assert reads.in_flight == 1 and reads.waiting == 100
    finally:
        await lock.release()
    got = await asyncio.gather(first, *rest)
    assert got == [record_of(h) for h in handles]
    assert recorder.singles == [key("K/0")]
    assert all(len(batch) <= 16 for batch in recorder.batches)
    assert [len(batch) for batch in recorder.batches] == [16] * 6 + [3]
    assert sorted(k for batch in recorder.batches for k in batch) == sorted(
        key(h) for h in handles[1:]
    )


async def test_readers_beyond_the_bound_read_alone(pg_store: PostgresStore, pg_url: str) -> None:
    handles = [f"W/{i}" for i in range(40)]
    await populate(pg_store, handles)
    recorder = Recorder(pg_store)
    reads = recorder.coalescer(max_batches=1, max_keys=4, max_waiting=10)
    lock = await TableLock.take(pg_url)
    try:
        tasks = [asyncio.ensure_future(reads.read(key(h))) for h in handles]
        await lock.wait_for_waiters(2)  # the first read, and at least one on its own
        assert reads.waiting == 10
    finally:
        await lock.release()
    assert await asyncio.gather(*tasks) == [record_of(h) for h in handles]
    # The first read went at once (nothing was running); the next 9 joined batches of at most
    # 4 keys, which waited for the only slot (the last batch, of one key, ran the single-key
    # statement); the 30 past the bound read alone.
    k = [key(h) for h in handles]
    assert recorder.batches == [k[1:5], k[5:9]]
    assert sorted(recorder.singles) == sorted([k[0], k[9], *k[10:]])


# -- failures --------------------------------------------------------------------------------
async def test_an_error_reaches_every_reader_of_the_batch(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url, timeout=0.5)  # lock waits give up after 250 ms
    try:
        await populate(store, ["E/1"])
        lock = await TableLock.take(pg_url)
        try:
            got = await asyncio.gather(
                *(store.get_record(f"E/{i}") for i in range(50)), return_exceptions=True
            )
        finally:
            await lock.release()
        errors = [error for error in got if isinstance(error, StoreError)]
        assert len(errors) == 50, got
        assert all("lock timeout" in str(error) for error in errors)
        assert len({id(error) for error in errors}) == 50  # each its own instance
        assert all(isinstance(error.__cause__, asyncpg.PostgresError) for error in errors)
        assert await store.get_record("E/1") == record_of("E/1")  # and then it works
    finally:
        await store.close()


async def test_a_stopped_server_fails_every_reader_then_reads_resume(
    pg_server: PostgresServer, pg_store: PostgresStore
) -> None:
    await populate(pg_store, ["D/1", "D/2"])
    await asyncio.gather(*(pg_store.get_record("D/1") for _ in range(20)))  # fill the pool
    await asyncio.to_thread(pg_server.pg_ctl, "stop")
    try:
        got = await asyncio.gather(
            *(pg_store.get_record(f"D/{i}") for i in range(30)), return_exceptions=True
        )
    finally:
        await asyncio.to_thread(pg_server.pg_ctl, "start")
    assert all(isinstance(error, StoreError) for error in got), got
    after = await asyncio.gather(pg_store.get_record("D/1"), pg_store.get_record("D/3"))
    assert list(after) == [record_of("D/1"), None]


async def test_a_closed_store_refuses_reads(pg_url: str) -> None:
    store = await PostgresStore.open(pg_url)
    await populate(store, ["C/1"])
    lock = await TableLock.take(pg_url)
    try:
        pending = [asyncio.ensure_future(store.get_record(f"C/{i}")) for i in range(10)]
        await lock.wait_for_waiters(2)  # the first read (alone) and the batch of the others
        closing = asyncio.ensure_future(store.close())  # waits for the reads in progress
        await asyncio.sleep(0.05)
        assert not closing.done()
    finally:
        await lock.release()
    await closing
    assert await asyncio.gather(*pending) == [None, record_of("C/1")] + [None] * 8
    with pytest.raises(StoreError, match="closed"):
        await store.get_record("C/1")


async def test_cancelling_a_reader_leaves_the_others(pg_store: PostgresStore, pg_url: str) -> None:
    handles = [f"X/{i}" for i in range(30)]
    await populate(pg_store, handles)
    lock = await TableLock.take(pg_url)
    try:
        tasks = [asyncio.ensure_future(pg_store.get_record(h)) for h in handles]
        await lock.wait_for_waiters(1)  # the batch's statement is waiting
        for task in tasks[::3]:
            task.cancel()
    finally:
        await lock.release()
    got = await asyncio.gather(*tasks, return_exceptions=True)
    for i, (handle, result) in enumerate(zip(handles, got, strict=True)):
        if i % 3 == 0:
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert result == record_of(handle)
    assert await pg_store.get_record("X/0") == record_of("X/0")


async def test_cancelled_leaders_hand_their_batches_over(
    pg_store: PostgresStore, pg_url: str
) -> None:
    handles = [f"L/{i}" for i in range(11)]
    await populate(pg_store, handles)
    k = [key(h) for h in handles]
    recorder = Recorder(pg_store)
    reads = recorder.coalescer(max_batches=1, max_keys=5, max_waiting=100)
    lock = await TableLock.take(pg_url)
    try:
        first = asyncio.ensure_future(reads.read(k[0]))  # goes at once, holds the only slot
        await lock.wait_for_waiters(1)
        # Two batches wait for the slot: k[1:6] (full, queued) and k[6:11] (open).
        tasks = [asyncio.ensure_future(reads.read(one)) for one in k[1:]]
        await asyncio.sleep(0)  # every reader has joined; the leaders are in their first turn
        tasks[0].cancel()  # the first batch's leader, in its first turn
        for _ in range(3):
            await asyncio.sleep(0)
        tasks[5].cancel()  # the second batch's leader, waiting for the slot
        await asyncio.sleep(0)
        assert reads.in_flight == 1
    finally:
        await lock.release()
    got = await asyncio.gather(first, *tasks, return_exceptions=True)
    assert isinstance(got[1], asyncio.CancelledError)
    assert isinstance(got[6], asyncio.CancelledError)
    expected = [record_of(h) for h in handles]
    assert [g for i, g in enumerate(got) if i not in (1, 6)] == [
        e for i, e in enumerate(expected) if i not in (1, 6)
    ]
    assert recorder.batches == [k[1:6], k[6:11]]  # each sent once, by the task taking over
    assert recorder.singles == [k[0]]
    assert reads.waiting == 0 and reads.in_flight == 0


async def test_record_reads_hold_a_connection_and_survive_its_loss(
    pg_store: PostgresStore, pg_url: str
) -> None:
    handles = [f"Q/{i}" for i in range(50)]
    await populate(pg_store, handles)
    for _ in range(500):  # the first read asks for the connection, in the background
        assert await pg_store.get_record("Q/1") == record_of("Q/1")
        if pg_store._reader is not None:
            break
        await asyncio.sleep(0.01)
    reader = pg_store._reader
    assert reader is not None
    pid = await reader.fetchval("SELECT pg_backend_pid()")
    assert await pg_store.get_record("Q/2") == record_of("Q/2")
    assert pg_store._reader is reader  # a lone read used it, and kept it
    conn = await connect(pg_url)
    try:  # end every session of the store: the held one and the pooled ones
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = 'idnode' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close(timeout=5)
    # The next reads find dead sessions; each is retried on a new connection.
    assert await pg_store.get_record("Q/3") == record_of("Q/3")
    got = await asyncio.gather(*(pg_store.get_record(h) for h in [*handles, "Q/none"]))
    assert got == [*(record_of(h) for h in handles), None]
    for _ in range(500):  # and a new connection is held again
        await pg_store.get_record("Q/4")
        if pg_store._reader is not None and pg_store._reader is not reader:
            break
        await asyncio.sleep(0.01)
    assert pg_store._reader is not None and pg_store._reader is not reader
    assert await pg_store._reader.fetchval("SELECT pg_backend_pid()") != pid


# -- consistency -----------------------------------------------------------------------------
async def test_a_read_after_a_write_sees_it(pg_store: PostgresStore) -> None:
    await populate(pg_store, [f"R/{i}" for i in range(20)])
    stop = asyncio.Event()

    async def background() -> None:  # keeps batches forming and in flight
        rnd = random.Random(5)
        while not stop.is_set():
            await asyncio.gather(*(pg_store.get_record(f"R/{rnd.randrange(40)}") for _ in range(8)))

    async def writer(n: int) -> None:
        handle = f"R/new-{n}"
        assert await pg_store.get_record(handle) is None
        await pg_store.create_handle(handle, [HandleValue(1, "URL", b"one")])
        assert await pg_store.get_record(handle) == encode_record([HandleValue(1, "URL", b"one")])
        await pg_store.add_values(handle, [HandleValue(2, "URL", b"two")])
        assert await pg_store.get_handle(handle) == (
            HandleValue(1, "URL", b"one"),
            HandleValue(2, "URL", b"two"),
        )
        await pg_store.delete_handle(handle)
        assert await pg_store.get_record(handle) is None

    loaders = [asyncio.ensure_future(background()) for _ in range(4)]
    try:
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(20))), 60)
    finally:
        stop.set()
        await asyncio.gather(*loaders)


async def test_the_batch_statement_uses_the_primary_key_index(pg_url: str) -> None:
    conn = await connect(pg_url)
    try:
        await conn.execute("SET enable_seqscan = off")
        await conn.execute("SET enable_bitmapscan = off")
        rows = await conn.fetch("EXPLAIN " + backend._GET_MANY, ["P/1", "P/2"])
        plan = "\n".join(row[0] for row in rows)
    finally:
        await conn.close(timeout=5)
    assert "handles_pkey" in plan and "Seq Scan" not in plan, plan


_stored = [f"H/{i}" for i in range(24)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    asked=st.lists(
        st.sampled_from([*_stored, "h/3", "H/absent", "H/x\x00", "H/30"]), min_size=1, max_size=60
    ),
    delays=st.lists(st.integers(0, 3), min_size=60, max_size=60),
    max_batches=st.integers(1, 3),
    max_keys=st.integers(1, 8),
)
def test_any_interleaving_reads_what_sequential_reads_read(
    runner: asyncio.Runner,
    pg_store: PostgresStore,
    asked: list[str],
    delays: list[int],
    max_batches: int,
    max_keys: int,
) -> None:
    async def check() -> None:
        if await pg_store.count_handles() == 0:
            await populate(pg_store, _stored)
        sequential = [await pg_store._read_one(key(h)) for h in asked]
        reads = Recorder(pg_store).coalescer(max_batches=max_batches, max_keys=max_keys)

        async def reader(handle: str, delay: int) -> bytes | None:
            for _ in range(delay):  # start in a later turn of the loop
                await asyncio.sleep(0)
            return await reads.read(key(handle))

        got = await asyncio.gather(*(reader(h, d) for h, d in zip(asked, delays, strict=False)))
        assert got == sequential
        # And through the store's own coalescer.
        assert await asyncio.gather(*(pg_store.get_record(h) for h in asked)) == sequential
        assert reads.waiting == 0 and reads.in_flight == 0

    runner.run(check())
