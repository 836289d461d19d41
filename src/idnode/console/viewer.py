"""Who looks at a console page, and what their account may administer.

A logged-in viewer acts as its account's Handle identity everywhere: pages show what
resolution and the trace API show that identity, and every write runs through
:meth:`~idnode.server.dispatch.Dispatcher.execute` as it (permissions, templates, audit
trail). An anonymous viewer sees public values only.
"""

from __future__ import annotations

from dataclasses import dataclass

from idnode.industry.accounts import PrefixState, Role, parse_identity
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.store.accounts_sql import Account, AccountRepository

__all__ = ["Viewer"]


@dataclass(frozen=True)
class Viewer:
    account: Account | None = None
    token: str | None = None

    @property
    def identity(self) -> Identity | None:
        return None if self.account is None else parse_identity(self.account.identity)

    @property
    def name(self) -> str:
        return "" if self.account is None else self.account.username

    @property
    def role(self) -> str:
        return "" if self.account is None else str(self.account.role)

    @property
    def writes(self) -> bool:
        return self.account is not None and self.account.role in (
            Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN, Role.APP,
        )  # fmt: skip

    @property
    def reads_node(self) -> bool:
        """Node administrators and auditors: the dashboard and every enterprise's lists."""
        return self.account is not None and self.account.role in (Role.NODE_ADMIN, Role.AUDITOR)

    async def prefixes(self, repository: AccountRepository, dispatcher: Dispatcher) -> list[str]:
        """The prefixes this account administers: its enterprise's active ones; for node
        administrators and auditors every prefix homed here."""
        if self.account is None:
            return []
        if self.reads_node:
            return sorted(await dispatcher.store.homed_prefixes())
        if self.account.enterprise_id is None:
            return []
        applications = await repository.list_applications(self.account.enterprise_id)
        return sorted(a.prefix for a in applications if a.state == PrefixState.ACTIVE)
