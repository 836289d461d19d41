"""How the dispatcher writes identifiers: each write checked by the
:class:`~idnode.industry.enforce.TemplateGuard`, then run in a write context.

* :meth:`Writes.check` asks the guard about one write (with the server's clock for the
  version link it may set);
* :meth:`Writes.run` runs a store call in a :func:`~idnode.store.writectx.write_context`
  naming the identity, the client address (:data:`~idnode.server.origin.PEER`) and the index
  entries of the identifiers written, and drops their cached templates afterwards;
* :meth:`Writes.change` writes a checked add/modify/remove: as the store's own change, or as
  the whole record when the guard set the template version link;
* :meth:`Writes.create_records` and :meth:`Writes.create_one_by_one` write a batch (the
  second after a race on a unique value), reporting per item as :class:`BatchResult`.

The authorisation of each write stays with the dispatcher, which calls these once it passed.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import NamedTuple, TypeVar

from idnode.errors import HandleError, UniqueValueTaken
from idnode.industry.codes import FieldError, TemplateViolation
from idnode.industry.directory import Pending
from idnode.industry.enforce import TemplateGuard, WritePlan
from idnode.protocol.values import HandleValue, decode_record, encode_record
from idnode.server.authz import Identity
from idnode.server.origin import PEER
from idnode.store.base import HandleStore
from idnode.store.writectx import WriteContext, write_context

__all__ = ["BatchResult", "Writes", "batch_error", "edited"]

T = TypeVar("T")

#: A batch's checked items: position in the batch → (handle, plan).
Planned = Mapping[int, tuple[str, WritePlan]]


class BatchResult(NamedTuple):
    """The outcome of one item of a batch registration."""

    code: int
    """SUCCESS, or the response code of the error."""
    message: str = ""
    errors: tuple[FieldError, ...] = ()
    """The per-field errors when the item broke its template."""


def batch_error(exc: HandleError) -> BatchResult:
    """The result of an item refused with ``exc``."""
    errors = exc.errors if isinstance(exc, TemplateViolation) else ()
    return BatchResult(exc.response_code, exc.message, errors)


def edited(
    record: tuple[HandleValue, ...], edit: Callable[[bytes | None], bytes]
) -> tuple[HandleValue, ...]:
    """``record`` after a store edit (:mod:`idnode.store.records`): the record a change will
    leave, with the errors the store would raise (ValueAlreadyExists, ValuesNotFound)."""
    return decode_record(edit(encode_record(record)))


class Writes:
    """Template-checked writes to ``store`` (module docstring); ``clock`` gives epoch
    seconds, the timestamp of a version link the guard sets."""

    def __init__(
        self, store: HandleStore, guard: TemplateGuard, clock: Callable[[], float]
    ) -> None:
        self.store = store
        self.guard = guard
        self._clock = clock

    async def check(
        self,
        handle: str,
        before: Sequence[HandleValue] | None,
        after: Sequence[HandleValue],
        given: Sequence[HandleValue],
        pending: Pending | None = None,
        writer: Identity | None = None,
    ) -> WritePlan:
        """:meth:`TemplateGuard.check` of the write by ``writer`` (raises
        TemplateViolation)."""
        timestamp = int(self._clock())
        return await self.guard.check(
            handle, before, after, given=given, timestamp=timestamp, pending=pending,
            writer=writer,
        )  # fmt: skip

    async def run(
        self,
        identity: Identity,
        plans: Mapping[str, WritePlan],
        write: Callable[[], Awaitable[T]],
    ) -> T:
        """Run the store call ``write`` in a write context: who (``identity``), from where
        (the transport's peer) and the index entries of the identifiers of ``plans`` that
        have a template (the others have none and keep none). For the write of one
        identifier, a unique value taken since the check becomes the ``unique`` field error
        (a batch sees the store's UniqueValueTaken). Cached templates of the handles written
        are dropped afterwards, whatever the outcome."""
        index = {h: p.entries for h, p in plans.items() if p.template is not None}
        context = WriteContext(actor=str(identity), origin=PEER.get(), index=index)
        try:
            with write_context(context):
                return await write()
        except UniqueValueTaken as exc:
            if len(plans) != 1:
                raise
            (plan,) = plans.values()
            raise plan.unique_violation(exc) from exc
        finally:
            for handle in plans:
                self.guard.written(handle)

    async def change(
        self,
        identity: Identity,
        handle: str,
        before: tuple[HandleValue, ...],
        after: tuple[HandleValue, ...],
        given: Sequence[HandleValue],
        change: Callable[[], Awaitable[None]],
    ) -> None:
        """Check the change of ``handle`` from ``before`` to ``after`` (``given``: the values
        the request sets) and write it: as ``change`` (the store's own add/modify/remove),
        or, when the guard set the template version link, as the whole record."""
        plan = await self.check(handle, before, after, given, writer=identity)
        if plan.rewritten:
            record = plan.values or ()
            change = functools.partial(self.store.create_handle, handle, record, overwrite=True)
        await self.run(identity, {handle: plan}, change)

    async def create_records(self, identity: Identity, plans: Planned) -> dict[int, bool]:
        """Write the planned records in one transaction; per position, whether it was
        created (False: the handle existed and was left unchanged)."""
        if not plans:
            return {}
        records = [(h, encode_record(p.values or ())) for h, p in plans.values()]
        by_handle = {h: p for h, p in plans.values()}
        created = await self.run(identity, by_handle, lambda: self.store.create_records(records))
        return dict(zip(plans, created, strict=True))

    async def create_one_by_one(
        self, identity: Identity, plans: Planned, results: list[BatchResult]
    ) -> dict[int, bool]:
        """A batch's fallback after a race on a unique value: each item checked again
        (earlier items are written by then) and written in a transaction of its own; items
        refused now get their error in ``results``."""
        created: dict[int, bool] = {}
        for position, (handle, plan) in plans.items():
            values = plan.values or ()
            try:
                again = await self.check(handle, None, values, values, writer=identity)
                created |= await self.create_records(identity, {position: (handle, again)})
            except HandleError as exc:
                results[position] = batch_error(exc)
        return created
