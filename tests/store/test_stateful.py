"""Stateful tests: random sequences of store operations against an in-memory model.

A :class:`hypothesis.stateful.RuleBasedStateMachine` drives one backend (the ``store``
fixture, so every entry of ``conftest.BACKENDS``) through create (with or without
overwrite), create_records, delete, add/modify/remove values and home/unhome, on a small
alphabet of handles that differ only in letter case often, so collisions are common. After
every step the store must agree with the model: ``get_handle`` of every handle the model has
(and of the rest of the alphabet: None), ``list_handles`` of every prefix, ``homed_prefixes``,
``is_homed`` and ``count_handles``. Each operation must raise exactly the error the model
predicts (HandleAlreadyExists, HandleNotFound, ValueAlreadyExists, ValuesNotFound) or none.

The machine is synchronous; it drives the async store on the test's ``runner`` loop. The
store is emptied (through its own API) at the start of every example.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from idnode.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    ValueAlreadyExists,
    ValuesNotFound,
)
from idnode.protocol.values import HandleValue, encode_record
from idnode.store.base import HandleStore, handle_key, prefix_of

PREFIXES = ("88.1", "88.A", "88.a", "0.NA")
SUFFIXES = ("x", "X", "doc-1", "DOC-1", "é", "É")  # é has no ASCII upper case: stays distinct
HANDLES = tuple(f"{p}/{s}" for p in PREFIXES for s in SUFFIXES)
#: Distinct lookup keys of PREFIXES, for list_handles.
PREFIX_KEYS = tuple(sorted({handle_key(p) for p in PREFIXES}))

SETTINGS = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

handles = st.sampled_from(HANDLES)
prefixes = st.sampled_from(PREFIXES)
indexes = st.integers(1, 6)
values = st.builds(
    HandleValue,
    index=indexes,
    type=st.sampled_from(["URL", "EMAIL", "DESC", "HS_ADMIN"]),
    data=st.binary(max_size=12),
    ttl=st.sampled_from([0, 86400, 0xFFFFFFFF]),
    ttl_type=st.integers(0, 1),
    timestamp=st.integers(0, 0xFFFFFFFF),
    permissions=st.integers(0, 15),
)
#: Value lists with distinct indexes (the store's precondition).
value_lists = st.lists(values, max_size=4, unique_by=lambda v: v.index)


@dataclass
class Record:
    display: str
    values: dict[int, HandleValue] = field(default_factory=dict)

    def ordered(self) -> tuple[HandleValue, ...]:
        return tuple(self.values[i] for i in sorted(self.values))


class StoreMachine(RuleBasedStateMachine):
    """Set :attr:`store` and :attr:`runner` on a subclass before running it."""

    store: HandleStore
    runner: asyncio.Runner

    def __init__(self) -> None:
        super().__init__()
        self.handles: dict[str, Record] = {}  # handle_key -> record
        self.homed: dict[str, str] = {}  # handle_key(prefix) -> prefix as first homed

    # -- plumbing --------------------------------------------------------------------------
    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.runner.run(coro)

    def expect(self, coro: Coroutine[Any, Any, Any], error: type[Exception] | None) -> None:
        """Run ``coro``: it must raise exactly ``error`` (None: must not raise)."""
        try:
            self.run(coro)
        except Exception as exc:
            assert error is not None and type(exc) is error, f"expected {error}, got {exc!r}"
            return
        assert error is None, f"expected {error.__name__}, nothing was raised"

    async def _empty(self) -> None:
        while batch := await self.store.scan(limit=500):
            for handle, _ in batch:
                await self.store.delete_handle(handle)
        for prefix in await self.store.homed_prefixes():
            await self.store.unhome_prefix(prefix)

    @initialize()
    def empty_store(self) -> None:
        self.run(self._empty())

    # -- rules -----------------------------------------------------------------------------
    @rule(handle=handles, new=value_lists, overwrite=st.booleans())
    def create(self, handle: str, new: list[HandleValue], overwrite: bool) -> None:
        key = handle_key(handle)
        exists = key in self.handles
        error = HandleAlreadyExists if exists and not overwrite else None
        self.expect(self.store.create_handle(handle, new, overwrite=overwrite), error)
        if error is None:
            self.handles[key] = Record(handle, {v.index: v for v in new})

    @rule(
        batch=st.lists(
            st.tuples(handles, value_lists), max_size=4, unique_by=lambda r: handle_key(r[0])
        )
    )
    def create_records(self, batch: list[tuple[str, list[HandleValue]]]) -> None:
        records = [(handle, encode_record(vals)) for handle, vals in batch]
        expected = [handle_key(handle) not in self.handles for handle, _ in batch]
        assert self.run(self.store.create_records(records)) == expected
        for (handle, vals), created in zip(batch, expected, strict=True):
            if created:
                self.handles[handle_key(handle)] = Record(handle, {v.index: v for v in vals})

    @rule(handle=handles)
    def delete(self, handle: str) -> None:
        key = handle_key(handle)
        error = None if key in self.handles else HandleNotFound
        self.expect(self.store.delete_handle(handle), error)
        self.handles.pop(key, None)

    @rule(handle=handles, new=value_lists, overwrite=st.booleans())
    def add_values(self, handle: str, new: list[HandleValue], overwrite: bool) -> None:
        record = self.handles.get(handle_key(handle))
        error: type[Exception] | None = None
        if record is None:
            error = HandleNotFound
        elif not overwrite and any(v.index in record.values for v in new):
            error = ValueAlreadyExists
        self.expect(self.store.add_values(handle, new, overwrite=overwrite), error)
        if error is None and record is not None:
            record.values.update({v.index: v for v in new})

    @rule(handle=handles, new=value_lists)
    def modify_values(self, handle: str, new: list[HandleValue]) -> None:
        record = self.handles.get(handle_key(handle))
        error: type[Exception] | None = None
        if record is None:
            error = HandleNotFound
        elif any(v.index not in record.values for v in new):
            error = ValuesNotFound
        self.expect(self.store.modify_values(handle, new), error)
        if error is None and record is not None:
            record.values.update({v.index: v for v in new})

    @rule(handle=handles, gone=st.lists(indexes, max_size=3, unique=True))
    def remove_values(self, handle: str, gone: list[int]) -> None:
        record = self.handles.get(handle_key(handle))
        error: type[Exception] | None = None
        if record is None:
            error = HandleNotFound
        elif any(i not in record.values for i in gone):
            error = ValuesNotFound
        self.expect(self.store.remove_values(handle, gone), error)
        if error is None and record is not None:
            for i in gone:
                del record.values[i]

    @rule(prefix=prefixes)
    def home(self, prefix: str) -> None:
        self.expect(self.store.home_prefix(prefix), None)
        self.homed.setdefault(handle_key(prefix), prefix)

    @rule(prefix=prefixes)
    def unhome(self, prefix: str) -> None:
        key = handle_key(prefix)
        error = None if key in self.homed else HandleNotFound
        self.expect(self.store.unhome_prefix(prefix), error)
        self.homed.pop(key, None)

    # -- invariants ------------------------------------------------------------------------
    async def _observed(self) -> dict[str, Any]:
        store = self.store
        return {
            "count": await store.count_handles(),
            "records": {h: await store.get_handle(h) for h in HANDLES},
            "lists": {p: await store.list_handles(p) for p in PREFIX_KEYS},
            "homed": await store.homed_prefixes(),
            "is_homed": {p: await store.is_homed(p) for p in PREFIXES},
        }

    def _expected(self) -> dict[str, Any]:
        by_key = sorted(self.handles.items())
        return {
            "count": len(self.handles),
            "records": {
                h: (r.ordered() if (r := self.handles.get(handle_key(h))) else None)
                for h in HANDLES
            },
            "lists": {
                p: [r.display for k, r in by_key if handle_key(prefix_of(k)) == p]
                for p in PREFIX_KEYS
            },
            "homed": [self.homed[k] for k in sorted(self.homed)],
            "is_homed": {p: handle_key(p) in self.homed for p in PREFIXES},
        }

    @invariant()
    def store_matches_model(self) -> None:
        observed, expected = self.run(self._observed()), self._expected()
        for what in expected:
            assert observed[what] == expected[what], f"{what}: {observed[what]} != model"


def _machine(store: HandleStore, runner: asyncio.Runner) -> type[StoreMachine]:
    return type("BoundStoreMachine", (StoreMachine,), {"store": store, "runner": runner})


def test_store_matches_model(store: HandleStore, runner: asyncio.Runner) -> None:
    run_state_machine_as_test(_machine(store, runner), settings=SETTINGS)


def test_model_alphabet_collides() -> None:
    """The alphabet has case-only twins (so the case-insensitivity is exercised)."""
    keys: Sequence[str] = [handle_key(h) for h in HANDLES]
    assert len(set(keys)) < len(keys)
    assert handle_key("88.1/é") != handle_key("88.1/É")
