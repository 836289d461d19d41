"""Where handles are served: this node's identity in its site, and the 301/303 checks.

:class:`Placement` answers whether a handle is served by this server (its prefix homed here,
and the handle hashing to this server of the site, spec §2.2, §4), where a delegated one is
served instead, and refuses administration a read-only server (a mirror) or another server of
the site must answer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from idnode.errors import ServerNotResponsible
from idnode.protocol.codes import OpCode, OpFlag
from idnode.protocol.message import Message
from idnode.protocol.types.hs_site import SiteInfo
from idnode.protocol.values import HandleValue
from idnode.store.base import HandleStore, handle_key, prefix_of

__all__ = [
    "HANDLE_WRITES",
    "NOT_PRIMARY",
    "WRITES",
    "WRONG_SERVER_HASH",
    "NodeIdentity",
    "Placement",
    "Referral",
]

#: Administration on one handle: answered only by the server the handle hashes to.
HANDLE_WRITES = {
    OpCode.CREATE_HANDLE,
    OpCode.DELETE_HANDLE,
    OpCode.ADD_VALUE,
    OpCode.REMOVE_VALUE,
    OpCode.MODIFY_VALUE,
}
#: Requests a read-only server (mirror) refuses (the reference server's admin requests).
WRITES = HANDLE_WRITES | {OpCode.HOME_NA, OpCode.UNHOME_NA}
#: 301 messages of the reference server.
NOT_PRIMARY = "Not a primary server"
WRONG_SERVER_HASH = "Request was hashed incorrectly"

_SITE_TYPES = frozenset({"HS_SITE", "HS_SITE.6", "HS_SERV"})
_DELEGATION_TYPES = frozenset({"HS_SITE.PREFIX", "HS_SERV.PREFIX", "HS_NA_DELEGATE"})


class Referral(ServerNotResponsible):
    """Not served here, but this node knows where (spec §4): answered with 303 and the
    sites over the native protocol; other transports see the 301 it derives from."""

    def __init__(self, handle: str, sites: tuple[HandleValue, ...]) -> None:
        super().__init__()
        self.handle = handle
        self.sites = sites


@dataclass(frozen=True)
class NodeIdentity:
    """What the node says about itself: its HS_SITE record (raw bytes) and serial, and which
    server of that site it is."""

    site_data: bytes
    site_serial: int
    server_index: int = 0
    """0-based position of this node in the site's server list (spec §2.2)."""

    @functools.cached_property
    def site(self) -> SiteInfo:
        return SiteInfo.from_bytes(self.site_data)

    def owns(self, handle: str) -> bool:
        """Whether ``handle`` hashes to this server, by the site's hash option (spec §2.2);
        always true in a site of one server."""
        site = self.site
        return len(site.servers) < 2 or site.server_index_for(handle) == self.server_index


class Placement:
    """Responsibility checks against the store's homed prefixes and the node's identity.

    ``node`` is called on every check: the node replaces its identity when its site changes.
    """

    def __init__(
        self, store: HandleStore, node: Callable[[], NodeIdentity], *, read_only: bool
    ) -> None:
        self._store = store
        self._node = node
        self._read_only = read_only

    def owns(self, handle: str) -> bool:
        """:meth:`NodeIdentity.owns` of the node's current identity."""
        return self._node().owns(handle)

    def check_placement(self, request: Message) -> None:
        """The reference server's first checks, before any challenge: 301 for administration
        on a read-only server, and for administration on a handle that hashes to another
        server of this site (a minted handle is checked once minted)."""
        if self._read_only and request.op in WRITES:
            raise ServerNotResponsible(NOT_PRIMARY)
        if request.op not in HANDLE_WRITES or request.has(OpFlag.MINT):
            return
        handle = getattr(request.body, "handle", None)
        if isinstance(handle, str):
            self.require_share(handle)

    def require_share(self, handle: str) -> None:
        """301 unless ``handle`` hashes to this server of the site (:meth:`NodeIdentity.owns`)."""
        if not self.owns(handle):
            raise ServerNotResponsible(WRONG_SERVER_HASH)

    async def require_responsible(self, handle: str) -> None:
        """301 unless ``handle`` hashes to this server and this node serves it (:meth:`serves`;
        spec §2.2, §4)."""
        self.require_share(handle)
        if not await self.serves(handle):
            raise ServerNotResponsible()

    async def serves(self, handle: str) -> bool:
        """Whether this node serves ``handle``.

        A handle ``P/S`` is served here when P is homed. A prefix handle ``0.NA/P`` is served
        when ``0.NA`` is homed (a root), or P or one of its ancestor prefixes is homed: the node
        answers for its own prefix handles and for the prefixes it delegated.
        """
        prefix = prefix_of(handle)
        if handle_key(prefix) != "0.NA":
            return await self._store.is_homed(prefix)
        if await self._store.is_homed("0.NA"):
            return True
        segments = handle.split("/", 1)[1].split(".")
        for i in range(len(segments), 0, -1):
            if await self._store.is_homed(".".join(segments[:i])):
                return True
        return False

    async def holds(self, handle: str) -> bool:
        """Whether this server holds ``handle`` in its store (the guard reads it there)."""
        return self.owns(handle) and await self.serves(handle)

    async def delegation(self, handle: str) -> tuple[HandleValue, ...]:
        """The values saying where ``handle`` is served, when this node delegated its prefix:
        the HS_SITE/HS_SERV values of the prefix handle it holds (for ``0.NA/P.C``, the
        HS_SITE.PREFIX/HS_SERV.PREFIX/HS_NA_DELEGATE values of the parent ``0.NA/P``)."""
        prefix = prefix_of(handle)
        if handle_key(prefix) == "0.NA":
            child = handle.split("/", 1)[1]
            if "." not in child:
                return ()
            holder, wanted = f"0.NA/{child.rsplit('.', 1)[0]}", _DELEGATION_TYPES
        else:
            holder, wanted = f"0.NA/{prefix}", _SITE_TYPES
        if not await self.serves(holder):
            return ()
        values = await self._store.get_handle(holder) or ()
        return tuple(v for v in values if v.type.upper() in wanted)
