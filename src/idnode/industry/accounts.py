"""Accounts, enterprises, enterprise prefixes and token login (spec §2.1 items 1, 2 and 7).

Theory of operation
-------------------
An **account** is a login of the REST APIs: a username (at most 50 characters), a password
(kept as a salted scrypt hash, compared in constant time), a :class:`Role`, the enterprise it
belongs to (enterprise admins and apps) and the Handle **identity** (``index:handle``) it acts
as. Nothing an account does bypasses the Handle layer: every write runs through
:meth:`~idnode.server.dispatch.Dispatcher.execute` as that identity, so HS_ADMIN permissions,
metadata templates, the write index and the audit trail apply exactly as over the native
protocol.

Roles: ``node_admin`` administers accounts, enterprises and prefixes (its identity should be
a server administrator of the node, which homing a prefix needs); ``auditor`` reads them;
``enterprise_admin`` and ``app`` write identifiers under their enterprise's prefixes, through
the enterprise's admin group.

An **enterprise** has a name, a contact, a status and the identity of its administrator. Its
**prefix applications** follow this table (every change by a node admin, recorded with who and
when; an enterprise admin may apply for its own enterprise)::

    action    from                          to
    apply     (none)                        applied
    approve   applied                       active (hosted here) / approved (hosted elsewhere)
    activate  approved                      active
    suspend   active                        suspended
    resume    suspended                     active
    cancel    applied, approved, active,    cancelled
              suspended

Approving creates the prefix handle ``0.NA/<prefix>`` through the dispatcher as the node admin:
an HS_ADMIN at 100 giving the enterprise's admin group ``200:0.NA/<prefix>`` the handle-admin
permissions (ADD_HANDLE included), and that group, an HS_VLIST at 200 of the enterprise
admin's identity and of every account of the enterprise. When the prefix is hosted here it is
then homed (``HOME_NA``) and becomes active. An account created later for the enterprise is
added to the group of each of its approved or active prefixes. Suspending or cancelling
unhomes the prefix: the node stops serving it (301 to every request for its identifiers, on
every write path) but keeps its records; resuming homes it again.

**App identities.** An app account may get an identity of its own with a key pair
(:meth:`AccountService.create_app`, ``idnode account add --role app``): the handle
``<prefix>/APP.<username>`` under the enterprise's first active prefix, holding an HS_ADMIN
at 100 naming the enterprise admin group and the app's public key as HS_PUBKEY at 300; the
account acts as ``300:<prefix>/APP.<username>``. The app then authenticates as itself over
the native protocol and ``Authorization: Handle`` (challenge-response with its private key),
or logs in with its password for a token, and as a member of the enterprise group it writes
identifiers under the enterprise's prefixes. **Disabling** an account (:meth:`AccountService.
set_enabled`, the web console, ``idnode account disable``) blocks it everywhere: its login
tokens and console sessions stop working, for good (below), it
leaves the admin groups (a group lists the enterprise admin identity and the enabled
accounts, and keeps members no account manages), and an app's key is renamed
``DISABLED.HS_PUBKEY`` so no challenge verifies against it; enabling restores both.
**Key rotation** (:meth:`AccountService.add_app_key`, :meth:`~AccountService.revoke_app_key`,
the web console): a further key goes to the next free index (301, 302, ...) of the app's
handle and its identity ``<index>:<handle>`` joins the enterprise's admin groups, so the app
works with either key while it switches; revoking removes the key and that group member.
Disabling renames every key of the handle.

**Tokens** (:class:`TokenStore`) are random 32-byte URL-safe strings valid for 24 hours, kept
in memory: a token is a bearer credential, so not writing it anywhere is the safer default,
and a restart only costs clients a new login (which SNMS clients do on -1 anyway). A node
served by several worker processes uses signed tokens instead, valid in every worker
(:class:`idnode.industry.tokens.SignedTokens`). No token works while its account is
disabled. **Ending logins**: every disable, whichever path makes it (the SNMS admin API, the
console, ``idnode account disable`` on the database while the node runs), stamps the
account's ``logins_after_ms`` in the database (:meth:`~idnode.store.accounts_sql.
AccountRepository.set_account_enabled`), and every use of a token or console session reads
the account and refuses a login issued at or before that moment (:meth:`AccountService.
current`), so the logins made before a disable stay ended once the account is enabled again.
Signed tokens and console cookies carry their issue time in whole seconds (expiry minus
lifetime, rounded down), so one issued in the same second as a disable, even just after it,
is refused too: refusing a fresh login is safe, accepting a stale one would not be. So that a
login made right after a disable and enable is not refused, :meth:`AccountService.login`
waits, when the account was disabled in the current second, until the next second begins.

The SNMS hashed login (``/identity/token/v1``) sends ``sha256(sha256(plain) + "yyyy-MM-dd")``
in lowercase hex. Checking it needs ``sha256(plain)``, which is therefore stored as well
(``v1_digest``): it is password-equivalent for that login, as the scheme implies. Today's,
yesterday's and tomorrow's dates (UTC) are accepted, for clients in other time zones.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import os
import re
import secrets
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from idnode.errors import (
    AuthenticationFailed,
    HandleNotFound,
    InsufficientPermissions,
    InvalidValue,
)
from idnode.protocol.bodies import (
    Body,
    HandleRequest,
    RemoveValuesRequest,
    ResolutionRequest,
    ValuesRequest,
)
from idnode.protocol.codes import AdminPermission, OpCode, OpFlag
from idnode.protocol.message import Message
from idnode.protocol.types.hs_admin import AdminRecord
from idnode.protocol.types.hs_pubkey import PublicKeyData
from idnode.protocol.types.hs_vlist import ValueList
from idnode.protocol.values import HandleValue, Reference
from idnode.server.authz import Identity
from idnode.server.dispatch import Dispatcher
from idnode.server.origin import PEER
from idnode.store.accounts_sql import (
    Account,
    AccountRepository,
    Enterprise,
    HasAccounts,
    PrefixApplication,
    Transition,
)
from idnode.store.base import HandleStore
from idnode.store.writectx import WriteContext, write_context

__all__ = [
    "ADMIN_GROUP_INDEX",
    "APP_KEY_INDEX",
    "DISABLED_KEY_TYPE",
    "ENTERPRISE_PERMISSIONS",
    "MAX_APP_KEYS",
    "TOKEN_LIFETIME",
    "AccountService",
    "Login",
    "PrefixState",
    "RecordWriter",
    "Role",
    "StoreWriter",
    "TokenStore",
    "app_handle",
    "app_values",
    "group_value",
    "hash_password",
    "home_prefix",
    "new_account",
    "parse_identity",
    "public_key_data",
    "refresh_groups",
    "service_for",
    "set_app_key_enabled",
    "set_group_member",
    "v1_answer",
    "verify_password",
]

#: Index of the enterprise admin group (HS_VLIST) on its prefix handles.
ADMIN_GROUP_INDEX = 200
#: What the enterprise group may do on its prefix handles and identifiers: everything but
#: creating or deleting prefixes (as the node's own handle admins, idnode.bootstrap).
ENTERPRISE_PERMISSIONS = 0x0FFF & ~(AdminPermission.ADD_NA | AdminPermission.DELETE_NA)
#: Index of an app identity's HS_PUBKEY; the account acts as ``300:<prefix>/APP.<name>``.
APP_KEY_INDEX = 300
#: Type an app's HS_PUBKEY takes while its account is disabled (no challenge verifies).
DISABLED_KEY_TYPE = "DISABLED.HS_PUBKEY"
#: Keys an app identity may hold at once (indexes 300-309): a few for key rotation.
MAX_APP_KEYS = 10
_KEY_TYPES = ("HS_PUBKEY", DISABLED_KEY_TYPE)
#: Seconds a login token is valid (spec §2.4: 24 h).
TOKEN_LIFETIME = 24 * 3600.0
MAX_USERNAME = 50
MAX_PASSWORD = 64
_SCRYPT = (2**14, 8, 1)  # n, r, p: 16 MiB, about 50 ms
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
_PREFIX = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]*")


class Role(enum.StrEnum):
    NODE_ADMIN = "node_admin"
    AUDITOR = "auditor"
    ENTERPRISE_ADMIN = "enterprise_admin"
    APP = "app"


class PrefixState(enum.StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


_S = PrefixState
#: action → (states it may start from, state it leads to); approve picks active or approved.
ACTIONS: dict[str, tuple[frozenset[PrefixState], PrefixState]] = {
    "approve": (frozenset({_S.APPLIED}), _S.ACTIVE),
    "activate": (frozenset({_S.APPROVED}), _S.ACTIVE),
    "suspend": (frozenset({_S.ACTIVE}), _S.SUSPENDED),
    "resume": (frozenset({_S.SUSPENDED}), _S.ACTIVE),
    "cancel": (frozenset({_S.APPLIED, _S.APPROVED, _S.ACTIVE, _S.SUSPENDED}), _S.CANCELLED),
}


# -- passwords -------------------------------------------------------------------------------
def hash_password(plain: str, salt: bytes | None = None) -> str:
    """``scrypt$n$r$p$<salt hex>$<hash hex>`` of ``plain`` with a fresh 16-byte salt."""
    n, r, p = _SCRYPT
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(plain.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(plain: str, stored: str) -> bool:
    """Whether ``plain`` matches ``stored`` (:func:`hash_password`), compared in constant
    time; False for a malformed ``stored``."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            plain.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(digest) // 2, maxmem=256 * 1024 * 1024,
        )  # fmt: skip
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def v1_answer(plain: str, day: str) -> str:
    """What an SNMS client sends to ``/identity/token/v1`` on ``day`` (``yyyy-MM-dd``)."""
    return _sha256_hex(_sha256_hex(plain) + day)


def parse_identity(text: str) -> Identity:
    """``index:handle`` → Identity; InvalidValue otherwise."""
    index, sep, handle = text.partition(":")
    if not sep or not index.isdigit() or "/" not in handle:
        raise InvalidValue(f"identity must be index:handle, e.g. 300:0.NA/88.118.8, not {text!r}")
    return Identity(handle, int(index))


def _check_name(what: str, text: str, limit: int) -> str:
    if not (0 < len(text) <= limit) or not _NAME.fullmatch(text):
        raise InvalidValue(f"{what} must be 1-{limit} of A-Z a-z 0-9 _ . @ - (not {text!r:.60})")
    return text


def _check_text(what: str, text: object, limit: int = 200) -> str:
    if not isinstance(text, str) or len(text) > limit or any(ord(c) < 32 for c in text):
        raise InvalidValue(f"{what} must be a text of at most {limit} printable characters")
    return text


def new_account(
    username: str,
    password: str,
    role: str,
    identity: str,
    *,
    enterprise_id: str | None = None,
    now_ms: int | None = None,
) -> Account:
    """A checked :class:`Account` with its password hashed; InvalidValue when a field is not
    acceptable (enterprise roles need ``enterprise_id``, the others must not have one)."""
    _check_name("username", username, MAX_USERNAME)
    if not (0 < len(password) <= MAX_PASSWORD):
        raise InvalidValue(f"password must have 1-{MAX_PASSWORD} characters")
    try:
        checked_role = Role(role)
    except ValueError as exc:
        raise InvalidValue(f"role must be one of {', '.join(Role)}") from exc
    parse_identity(identity)
    needs_enterprise = checked_role in (Role.ENTERPRISE_ADMIN, Role.APP)
    if needs_enterprise != (enterprise_id is not None):
        raise InvalidValue(f"role {role} {'needs' if needs_enterprise else 'has no'} enterprise")
    return Account(
        username=username,
        password_hash=hash_password(password),
        v1_digest=_sha256_hex(password),
        role=checked_role,
        enterprise_id=enterprise_id,
        identity=identity,
        enabled=True,
        created_ms=now_ms if now_ms is not None else int(time.time() * 1000),
    )


# -- tokens ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Login:
    """Who a login token or console session was issued to, and when (Unix seconds)."""

    username: str
    issued: float


@dataclass(frozen=True, slots=True)
class _Token:
    username: str
    issued: float
    expires: float


class TokenStore:
    """Login tokens in memory: token → username and issue time, each valid
    :data:`TOKEN_LIFETIME` seconds. Expired tokens are dropped when a new one is issued. The
    clock is injected."""

    def __init__(
        self, clock: Callable[[], float] = time.time, lifetime: float = TOKEN_LIFETIME
    ) -> None:
        self._clock = clock
        self._lifetime = lifetime
        self._tokens: dict[str, _Token] = {}

    def issue(self, username: str) -> str:
        now = self._clock()
        self._tokens = {k: t for k, t in self._tokens.items() if t.expires > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Token(username, now, now + self._lifetime)
        return token

    def check(self, token: str) -> Login | None:
        """Who ``token`` was issued to and when; None when unknown or expired."""
        found = self._tokens.get(token)
        if found is None or found.expires <= self._clock():
            return None
        return Login(found.username, found.issued)


# -- the service -----------------------------------------------------------------------------
class AccountService:
    """Login, and the administration of accounts, enterprises and prefixes, as the acting
    account. Raises :class:`~idnode.errors.HandleError` subclasses: AuthenticationFailed
    (login), InsufficientPermissions (role), InvalidValue / HandleNotFound /
    HandleAlreadyExists (requests), and whatever the dispatcher raises for the writes."""

    def __init__(
        self,
        repository: AccountRepository,
        dispatcher: Dispatcher,
        *,
        tokens: TokenStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repository = repository
        self.dispatcher = dispatcher
        self.tokens = tokens or TokenStore(clock)
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # login ------------------------------------------------------------------------------
    async def login(self, username: str, password: str, *, hashed: bool = False) -> str:
        """A token for ``username``; ``hashed``: ``password`` is the v1 answer
        (:func:`v1_answer`). A failure counts against the client's address in the
        dispatcher's limiter, and a blocked address gets ServerBusy before any check."""
        peer = PEER.get()
        self.dispatcher.limiter.check_auth(peer)
        account = await self.repository.get_account(username)
        if (
            account is None
            or not account.enabled
            or not self._password_ok(account, password, hashed)
        ):
            self.dispatcher.limiter.auth_failed(peer)
            raise AuthenticationFailed("wrong username or password")
        # a login stamped (in whole seconds) no later than the last disable would be refused
        wait = account.logins_after_ms // 1000 + 1 - self._clock()
        if wait > 0:
            await asyncio.sleep(min(wait, 1.0))
        return self.tokens.issue(account.username)

    def _password_ok(self, account: Account, password: str, hashed: bool) -> bool:
        if not hashed:
            return verify_password(password, account.password_hash)
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        days = (today + timedelta(days=d) for d in (0, -1, 1))
        answers = [_sha256_hex(account.v1_digest + d.isoformat()) for d in days]
        return any(hmac.compare_digest(password.lower(), a) for a in answers)

    async def authenticate(self, token: str) -> Account:
        """The enabled account ``token`` was issued to; AuthenticationFailed otherwise."""
        account = await self.current(self.tokens.check(token))
        if account is None:
            raise AuthenticationFailed("not logged in, or the token expired")
        return account

    async def current(self, login: Login | None) -> Account | None:
        """The account of ``login`` (a token's or a console session's) while it is still
        valid: the account exists, is enabled, and was not disabled at or after the login
        was issued (``logins_after_ms``; module docstring). None otherwise."""
        if login is None:
            return None
        account = await self.repository.get_account(login.username)
        if account is None or not account.enabled:
            return None
        if login.issued * 1000 <= account.logins_after_ms:
            return None
        return account

    @staticmethod
    def require(account: Account, *roles: Role) -> None:
        if account.role not in roles:
            names = " or ".join(roles)
            raise InsufficientPermissions(f"{account.username} ({account.role}) is not {names}")

    # accounts and enterprises ----------------------------------------------------------
    async def create_account(
        self,
        actor: Account,
        username: str,
        password: str,
        role: str,
        identity: str,
        enterprise_id: str | None = None,
    ) -> Account:
        """Node admins create any account. An account of an enterprise with approved prefixes
        joins their admin group (written as ``actor``)."""
        self.require(actor, Role.NODE_ADMIN)
        account = new_account(
            username, password, role, identity, enterprise_id=enterprise_id, now_ms=self._now_ms()
        )
        if (
            enterprise_id is not None
            and await self.repository.get_enterprise(enterprise_id) is None
        ):
            raise HandleNotFound(f"no enterprise {enterprise_id!r}")
        if not await self.repository.add_account(account):
            raise InvalidValue(f"the username {username!r} is taken")
        if enterprise_id is not None:
            writer = _DispatchWriter(self, actor)
            await refresh_groups(writer, self.repository, enterprise_id)
        return account

    async def create_enterprise(
        self, actor: Account, enterprise_id: str, name: str, contact: str, admin_identity: str
    ) -> Enterprise:
        self.require(actor, Role.NODE_ADMIN)
        _check_name("enterprise id", enterprise_id, 50)
        parse_identity(admin_identity)
        enterprise = Enterprise(
            enterprise_id, _check_text("name", name), _check_text("contact", contact),
            "active", admin_identity, self._now_ms(),
        )  # fmt: skip
        if not await self.repository.add_enterprise(enterprise):
            raise InvalidValue(f"the enterprise id {enterprise_id!r} is taken")
        return enterprise

    # prefixes ---------------------------------------------------------------------------
    async def apply(
        self, actor: Account, prefix: str, enterprise_id: str, *, hosted: bool = True
    ) -> PrefixApplication:
        """Apply for ``prefix`` for the enterprise: node admins for any, enterprise admins for
        their own."""
        self.require(actor, Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
        if actor.role == Role.ENTERPRISE_ADMIN and actor.enterprise_id != enterprise_id:
            raise InsufficientPermissions("an enterprise admin applies for its own enterprise")
        if not _PREFIX.fullmatch(prefix) or len(prefix) > 128:
            raise InvalidValue(f"not a prefix: {prefix!r:.60}")
        if await self.repository.get_enterprise(enterprise_id) is None:
            raise HandleNotFound(f"no enterprise {enterprise_id!r}")
        application = PrefixApplication(
            prefix, enterprise_id, PrefixState.APPLIED, hosted, actor.username, self._now_ms()
        )
        if not await self.repository.add_application(application):
            raise InvalidValue(f"the prefix {prefix} has an application already")
        return application

    async def transition(self, actor: Account, prefix: str, action: str) -> PrefixApplication:
        """Apply ``action`` (:data:`ACTIONS`) to ``prefix``'s application as a node admin,
        with its effect on the node (create and home, home, unhome) before the state change
        is recorded. InvalidValue when the current state does not allow it."""
        self.require(actor, Role.NODE_ADMIN)
        if action not in ACTIONS:
            raise InvalidValue(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        application = await self.repository.get_application(prefix)
        if application is None:
            raise HandleNotFound(f"no application for the prefix {prefix}")
        sources, target = ACTIONS[action]
        if application.state not in sources:
            raise InvalidValue(f"cannot {action} a prefix that is {application.state}")
        prefix = application.prefix
        if action == "approve":
            await self._write_prefix_handle(actor, application)
            if not application.hosted:
                target = PrefixState.APPROVED
        homed, will_be_homed = application.state == PrefixState.ACTIVE, target == PrefixState.ACTIVE
        if will_be_homed and not homed:
            await self._execute(actor, OpCode.HOME_NA, HandleRequest(f"0.NA/{prefix}"))
        elif homed and not will_be_homed:
            await self._execute(actor, OpCode.UNHOME_NA, HandleRequest(f"0.NA/{prefix}"))
        changed = await self.repository.set_prefix_state(
            prefix, application.state, target, actor.username, self._now_ms()
        )
        if not changed:
            raise InvalidValue(f"the prefix {prefix} changed state meanwhile; read it again")
        return await self._application(prefix)

    async def _application(self, prefix: str) -> PrefixApplication:
        found = await self.repository.get_application(prefix)
        if found is None:
            raise HandleNotFound(f"no application for the prefix {prefix}")
        return found

    async def history(self, prefix: str) -> list[Transition]:
        return await self.repository.transitions(prefix)

    async def _execute(self, actor: Account, op: int, body: Body, flags: int = 0) -> Message:
        request = Message(op=op, body=body, flags=flags)
        return await self.dispatcher.execute(request, parse_identity(actor.identity))

    async def _group(self, enterprise_id: str) -> HandleValue:
        enterprise = await self.repository.get_enterprise(enterprise_id)
        if enterprise is None:
            raise HandleNotFound(f"no enterprise {enterprise_id!r}")
        return await group_value(self.repository, enterprise)

    async def _write_prefix_handle(self, actor: Account, application: PrefixApplication) -> None:
        handle = f"0.NA/{application.prefix}"
        admin = AdminRecord(ENTERPRISE_PERMISSIONS, handle, ADMIN_GROUP_INDEX).to_bytes()
        values = (HandleValue(100, "HS_ADMIN", admin), await self._group(application.enterprise_id))
        await self._execute(actor, OpCode.CREATE_HANDLE, ValuesRequest(handle, values))

    # app identities and enabling -----------------------------------------------------------
    async def create_app(
        self,
        actor: Account,
        username: str,
        password: str,
        enterprise_id: str,
        public_key: bytes,
    ) -> Account:
        """Create the app account ``username`` of the enterprise with an identity of its own
        (module docstring) holding ``public_key`` (HS_PUBKEY data, :func:`public_key_data`).
        Node admins for any enterprise, enterprise admins for their own; the handle and the
        groups are written as ``actor``."""
        self.require(actor, Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
        if actor.role == Role.ENTERPRISE_ADMIN and actor.enterprise_id != enterprise_id:
            raise InsufficientPermissions("an enterprise admin adds apps to its own enterprise")
        prefix = await home_prefix(self.repository, enterprise_id)
        handle = app_handle(prefix, username)
        account = new_account(
            username, password, Role.APP, f"{APP_KEY_INDEX}:{handle}",
            enterprise_id=enterprise_id, now_ms=self._now_ms(),
        )  # fmt: skip
        if await self.repository.get_account(username) is not None:
            raise InvalidValue(f"the username {username!r} is taken")
        writer = _DispatchWriter(self, actor)
        await writer.create(handle, app_values(prefix, public_key))
        if not await self.repository.add_account(account):
            raise InvalidValue(f"the username {username!r} is taken")
        await refresh_groups(writer, self.repository, enterprise_id)
        return account

    async def set_enabled(self, actor: Account, username: str, enabled: bool) -> Account:
        """Enable or disable ``username`` (node admins; enterprise admins for the accounts of
        their enterprise): the account, its enterprise's admin groups and an app's key.
        Disabling ends the account's logins made so far (:meth:`current`)."""
        self.require(actor, Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
        account = await self.repository.get_account(username)
        if account is None:
            raise HandleNotFound(f"no account {username!r}")
        if actor.role == Role.ENTERPRISE_ADMIN and (
            account.enterprise_id != actor.enterprise_id or account.role != Role.APP
        ):
            raise InsufficientPermissions("an enterprise admin enables its own apps only")
        await self.repository.set_account_enabled(username, enabled, now_ms=self._now_ms())
        writer = _DispatchWriter(self, actor)
        if account.enterprise_id is not None:
            await refresh_groups(writer, self.repository, account.enterprise_id)
        await set_app_key_enabled(writer, account, enabled)
        found = await self.repository.get_account(username)
        assert found is not None
        return found

    async def _own_app(self, actor: Account, username: str) -> tuple[Account, Identity]:
        """The app account ``username`` with an identity handle of its own, if ``actor`` may
        manage it (node admins; enterprise admins for their enterprise's apps)."""
        self.require(actor, Role.NODE_ADMIN, Role.ENTERPRISE_ADMIN)
        account = await self.repository.get_account(username)
        if account is None:
            raise HandleNotFound(f"no account {username!r}")
        if actor.role == Role.ENTERPRISE_ADMIN and account.enterprise_id != actor.enterprise_id:
            raise InsufficientPermissions("an enterprise admin manages its own apps only")
        identity = parse_identity(account.identity)
        if account.role != Role.APP or "/APP." not in identity.handle:
            raise InvalidValue(f"{username} is not an app with an identity handle of its own")
        return account, identity

    async def add_app_key(self, actor: Account, username: str, public_key: bytes) -> int:
        """Add ``public_key`` (HS_PUBKEY data) to the app's identity handle at the first free
        index from :data:`APP_KEY_INDEX`, and that identity (``<index>:<handle>``) to the
        enterprise's admin groups: the app authenticates with either key until the old one
        is revoked (key rotation). A disabled app's new key is stored disabled. The index."""
        account, identity = await self._own_app(actor, username)
        record = await self.dispatcher.store.get_handle(identity.handle) or ()
        used = {v.index for v in record}
        free = [i for i in range(APP_KEY_INDEX, APP_KEY_INDEX + MAX_APP_KEYS) if i not in used]
        if not free or sum(v.type in _KEY_TYPES for v in record) >= MAX_APP_KEYS:
            raise InvalidValue(f"an app holds at most {MAX_APP_KEYS} keys; revoke one first")
        key_type = "HS_PUBKEY" if account.enabled else DISABLED_KEY_TYPE
        writer = _DispatchWriter(self, actor)
        await writer.put(identity.handle, (HandleValue(free[0], key_type, public_key),))
        assert account.enterprise_id is not None
        member = f"{free[0]}:{identity.handle}"
        await set_group_member(writer, self.repository, account.enterprise_id, member, True)
        return free[0]

    async def revoke_app_key(self, actor: Account, username: str, index: int) -> None:
        """Remove the key at ``index`` from the app's identity handle and its identity from
        the enterprise's admin groups (the account's own identity stays: its login tokens act
        as it). The app's last key cannot be revoked: add its successor first."""
        account, identity = await self._own_app(actor, username)
        record = await self.dispatcher.store.get_handle(identity.handle) or ()
        keys = [v.index for v in record if v.type in _KEY_TYPES]
        if index not in keys:
            raise InvalidValue(f"{identity.handle} has no key at index {index}")
        if len(keys) == 1:
            raise InvalidValue("this is the app's only key: add another one before revoking it")
        body = RemoveValuesRequest(identity.handle, (index,))
        await self._execute(actor, OpCode.REMOVE_VALUE, body)
        member = f"{index}:{identity.handle}"
        if member != account.identity:
            assert account.enterprise_id is not None
            writer = _DispatchWriter(self, actor)
            await set_group_member(writer, self.repository, account.enterprise_id, member, False)

    async def resolve_as(self, account: Account, handle: str) -> tuple[HandleValue, ...]:
        """``handle``'s values as ``account`` may see them (a RESOLUTION through the
        dispatcher as its identity)."""
        response = await self._execute(account, OpCode.RESOLUTION, ResolutionRequest(handle))
        return tuple(getattr(response.body, "values", ()))


# -- app identities, groups and the writers they are written with ------------------------------
def app_handle(prefix: str, username: str) -> str:
    """The identity handle of the app ``username`` under ``prefix``."""
    return f"{prefix}/APP.{username}"


def public_key_data(key: bytes) -> bytes:
    """HS_PUBKEY data of a PEM public key (or of a private key file, whose public half is
    taken); InvalidValue when it is neither."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import dsa, rsa

    from idnode.protocol.types.hs_pubkey import load_private_key

    public: object
    try:
        public = serialization.load_pem_public_key(key)
    except (ValueError, TypeError):
        try:
            public = load_private_key(key).public_key()
        except Exception as exc:
            raise InvalidValue("not a PEM public key (RSA or DSA)") from exc
    if not isinstance(public, rsa.RSAPublicKey | dsa.DSAPublicKey):
        raise InvalidValue("only RSA and DSA public keys can be app keys")
    return PublicKeyData.from_public_key(public).to_bytes()


def app_values(prefix: str, pubkey: bytes) -> tuple[HandleValue, ...]:
    """The record of an app identity under ``prefix``: HS_ADMIN naming the enterprise admin
    group, HS_PUBKEY ``pubkey`` at :data:`APP_KEY_INDEX`."""
    group = f"0.NA/{prefix}"
    admin = AdminRecord(ENTERPRISE_PERMISSIONS, group, ADMIN_GROUP_INDEX).to_bytes()
    return (
        HandleValue(100, "HS_ADMIN", admin),
        HandleValue(APP_KEY_INDEX, "HS_PUBKEY", pubkey),
    )


async def home_prefix(repository: AccountRepository, enterprise_id: str) -> str:
    """The enterprise's first active prefix (where its apps' identities live)."""
    if await repository.get_enterprise(enterprise_id) is None:
        raise HandleNotFound(f"no enterprise {enterprise_id!r}")
    for application in await repository.list_applications(enterprise_id):
        if application.state == PrefixState.ACTIVE and application.hosted:
            return application.prefix
    raise InvalidValue(f"the enterprise {enterprise_id} has no active prefix hosted here")


async def group_value(
    repository: AccountRepository,
    enterprise: Enterprise,
    existing: tuple[HandleValue, ...] | None = None,
) -> HandleValue:
    """The admin group of ``enterprise``'s prefixes: its admin identity and the identities of
    its enabled accounts, after the members of the group in ``existing`` (a prefix handle's
    record) that are not identities of its disabled accounts: members the accounts do not
    manage (e.g. a key identity of the node's own prefix) are kept."""
    accounts = await repository.list_accounts(enterprise.id)
    enabled = {a.identity for a in accounts if a.enabled}
    disabled = (
        {a.identity for a in accounts if not a.enabled} - enabled - {enterprise.admin_identity}
    )
    members: list[str] = []
    current = next(
        (v for v in existing or () if v.index == ADMIN_GROUP_INDEX and v.type == "HS_VLIST"), None
    )
    if current is not None:
        try:
            members += [f"{r.index}:{r.handle}" for r in ValueList.from_bytes(current.data)]
        except Exception:  # a malformed group is replaced
            members = []
    members = [m for m in members if m not in disabled]
    members += [enterprise.admin_identity, *sorted(enabled)]
    unique = [parse_identity(m) for m in dict.fromkeys(members)]
    data = ValueList(tuple(Reference(i.handle, i.index) for i in unique)).to_bytes()
    return HandleValue(ADMIN_GROUP_INDEX, "HS_VLIST", data)


class RecordWriter(Protocol):
    """How account administration writes records: through the dispatcher as an account
    (:class:`AccountService`), or straight into a store (:class:`StoreWriter`, the CLI)."""

    async def read(self, handle: str) -> tuple[HandleValue, ...] | None: ...

    async def create(self, handle: str, values: Sequence[HandleValue]) -> None: ...

    async def put(self, handle: str, values: Sequence[HandleValue]) -> None:
        """Add ``values``, replacing those at the same indexes."""
        ...


class _DispatchWriter:
    def __init__(self, service: AccountService, actor: Account) -> None:
        self.service, self.actor = service, actor

    async def read(self, handle: str) -> tuple[HandleValue, ...] | None:
        return await self.service.dispatcher.store.get_handle(handle)

    async def create(self, handle: str, values: Sequence[HandleValue]) -> None:
        body = ValuesRequest(handle, tuple(values))
        await self.service._execute(self.actor, OpCode.CREATE_HANDLE, body)

    async def put(self, handle: str, values: Sequence[HandleValue]) -> None:
        body = ValuesRequest(handle, tuple(values))
        await self.service._execute(self.actor, OpCode.ADD_VALUE, body, OpFlag.OVRW)


class StoreWriter:
    """Writes straight into ``store`` (values timestamped now), recorded in the audit trail
    with the actor ``actor`` and the origin ``origin``."""

    def __init__(self, store: HandleStore, actor: str, origin: str = "cli") -> None:
        self.store = store
        self.context = WriteContext(actor=actor, origin=origin)

    def _stamped(self, values: Sequence[HandleValue]) -> list[HandleValue]:
        now = int(time.time())
        return [v.with_changes(timestamp=now) for v in values]

    async def read(self, handle: str) -> tuple[HandleValue, ...] | None:
        return await self.store.get_handle(handle)

    async def create(self, handle: str, values: Sequence[HandleValue]) -> None:
        with write_context(self.context):
            await self.store.create_handle(handle, self._stamped(values))

    async def put(self, handle: str, values: Sequence[HandleValue]) -> None:
        with write_context(self.context):
            await self.store.add_values(handle, self._stamped(values), overwrite=True)


async def refresh_groups(
    writer: RecordWriter, repository: AccountRepository, enterprise_id: str
) -> None:
    """Rewrite the admin group on ``0.NA/<prefix>`` of each approved or active prefix of the
    enterprise with its current members (:func:`group_value`), where it changes."""
    enterprise = await repository.get_enterprise(enterprise_id)
    if enterprise is None:
        return
    for application in await repository.list_applications(enterprise_id):
        handle = f"0.NA/{application.prefix}"
        if application.state not in (PrefixState.APPROVED, PrefixState.ACTIVE):
            continue
        record = await writer.read(handle)
        if record is not None:
            group = await group_value(repository, enterprise, record)
            current = [v.data for v in record if v.index == ADMIN_GROUP_INDEX]
            if current != [group.data]:
                await writer.put(handle, (group,))


async def set_app_key_enabled(writer: RecordWriter, account: Account, enabled: bool) -> None:
    """An app identity's keys (every HS_PUBKEY of its handle: the one at its identity's
    index and those added for key rotation) as HS_PUBKEY (enabled) or
    :data:`DISABLED_KEY_TYPE`; nothing for accounts without an identity of their own."""
    identity = parse_identity(account.identity)
    if account.role != Role.APP or "/APP." not in identity.handle:
        return
    record = await writer.read(identity.handle)
    wanted = "HS_PUBKEY" if enabled else DISABLED_KEY_TYPE
    changed = [v.with_changes(type=wanted) for v in record or ()
               if v.type in _KEY_TYPES and v.type != wanted]  # fmt: skip
    if changed:
        await writer.put(identity.handle, changed)


async def set_group_member(
    writer: RecordWriter,
    repository: AccountRepository,
    enterprise_id: str,
    member: str,
    present: bool,
) -> None:
    """Add ``member`` (``index:handle``) to, or remove it from, the admin group of each
    approved or active prefix of the enterprise. A member added this way is one the accounts
    do not manage, so :func:`refresh_groups` keeps it (:func:`group_value`)."""
    enterprise = await repository.get_enterprise(enterprise_id)
    if enterprise is None:
        return
    wanted = parse_identity(member)
    for application in await repository.list_applications(enterprise_id):
        if application.state not in (PrefixState.APPROVED, PrefixState.ACTIVE):
            continue
        handle = f"0.NA/{application.prefix}"
        record = await writer.read(handle)
        if record is None:
            continue
        edited: list[HandleValue] = []
        for value in record:
            if value.index == ADMIN_GROUP_INDEX and value.type == "HS_VLIST":
                try:
                    refs = list(ValueList.from_bytes(value.data).entries)
                except Exception:  # a malformed group is replaced by group_value
                    refs = []
                refs = [r for r in refs if (r.handle, r.index) != (wanted.handle, wanted.index)]
                if present:
                    refs.append(Reference(wanted.handle, wanted.index))
                value = value.with_changes(data=ValueList(tuple(refs)).to_bytes())
            edited.append(value)
        group = await group_value(repository, enterprise, tuple(edited))
        current = [v.data for v in record if v.index == ADMIN_GROUP_INDEX]
        if current != [group.data]:
            await writer.put(handle, (group,))


_SERVICES: weakref.WeakKeyDictionary[Dispatcher, AccountService] = weakref.WeakKeyDictionary()


def service_for(dispatcher: Dispatcher) -> AccountService | None:
    """The one :class:`AccountService` (and so the one token store) of ``dispatcher``'s
    node, shared by every interface that accepts login tokens (the SNMS API, ``/api/stats``,
    ``/api/audit``); None when its store keeps no accounts."""
    if not isinstance(dispatcher.store, HasAccounts):
        return None
    service = _SERVICES.get(dispatcher)
    if service is None:
        service = AccountService(dispatcher.store.accounts(), dispatcher)
        _SERVICES[dispatcher] = service
    return service
