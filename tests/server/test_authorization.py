"""Authorization matrix: every administrative operation × every kind of caller (spec §2.1, §3).

Each case runs against a fresh target handle whose HS_ADMIN values name the handle admin
(USER-H), the partial admin (USER-P: ADD_VALUE|MODIFY_VALUE) and the prefix-admin group
(201:0.NA/88.118.8, whose member is USER-G), but not the server-admin group. The prefix
handle 0.NA/88.118.8 names the server-admin group (200), the prefix-admin group (201) and
USER-P with LIST_HANDLES only (see :func:`tests.server.nodeutil.add_identities`).

After every refusal the target handle, the handle a create would make, the prefix handle
and the set of homed prefixes are checked to be exactly as before; after every success the
operation's effect is checked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from idnode.bootstrap import HANDLE_ADMIN_PERMISSIONS
from idnode.client import Credentials, PublicKeyCredentials, SecretKeyCredentials
from idnode.errors import (
    AuthenticationFailed,
    AuthenticationRequired,
    AuthenticationTimeout,
    HandleAlreadyExists,
    HandleError,
    InsufficientPermissions,
    InvalidAdmin,
    error_for_code,
)
from idnode.protocol import auth
from idnode.protocol.bodies import (
    Body,
    ChallengeAnswer,
    ChallengeBody,
    HandleListBody,
    HandleRequest,
    RemoveValuesRequest,
    ValuesRequest,
)
from idnode.protocol.codes import OpCode, OpFlag, ResponseCode
from idnode.protocol.credential import Credential
from idnode.protocol.message import Message
from idnode.protocol.values import HandleValue
from idnode.server.config import NodeConfig
from tests.server.nodeutil import (
    PREFIX,
    PREFIX_GROUP_INDEX,
    PREFIX_HANDLE,
    RunningNode,
    Users,
    admin_value,
    create_node_dir,
    make_dsa_key,
    make_rsa_key,
    matrix_target,
    running_node,
    text_value,
    vlist_value,
)

OK = None
Outcome = type[HandleError] | None


# -- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """Names used by one matrix case."""

    key: str

    @property
    def target(self) -> str:
        return f"{PREFIX}/MX-{self.key}"

    @property
    def new(self) -> str:
        return f"{PREFIX}/MX-{self.key}-NEW"

    @property
    def new_prefix(self) -> str:
        return f"66.{self.key}"


@dataclass(frozen=True)
class Op:
    code: int
    body: Callable[[Case], Body]
    #: Checks the effect of a successful request (given the success body).
    effect: Callable[[RunningNode, Case, Body], None]


def _values(node: RunningNode, handle: str) -> dict[int, tuple[str, bytes]]:
    record = node.get_handle(handle)
    assert record is not None, f"{handle} should exist"
    return {v.index: (v.type, v.data) for v in record}


def _created(node: RunningNode, case: Case, body: Body) -> None:
    assert _values(node, case.new)[1] == ("URL", b"https://example.com/new")


def _deleted(node: RunningNode, case: Case, body: Body) -> None:
    assert node.get_handle(case.target) is None


def _added(node: RunningNode, case: Case, body: Body) -> None:
    assert _values(node, case.target)[3] == ("EMAIL", b"added@example.com")


def _modified(node: RunningNode, case: Case, body: Body) -> None:
    assert _values(node, case.target)[2] == ("DESC", b"changed")


def _removed(node: RunningNode, case: Case, body: Body) -> None:
    values = _values(node, case.target)
    assert 2 not in values and 1 in values


NEW_ADMIN = admin_value(105, 0x0FFF, f"{PREFIX}/USER-A", 300)


def _admin_added(node: RunningNode, case: Case, body: Body) -> None:
    assert _values(node, case.target)[105] == ("HS_ADMIN", NEW_ADMIN.data)


def _listed(node: RunningNode, case: Case, body: Body) -> None:
    assert isinstance(body, HandleListBody)
    assert case.target in body.handles
    assert f"{PREFIX}/PV-2026-000123" in body.handles


def _homed(node: RunningNode, case: Case, body: Body) -> None:
    assert node.is_homed(case.new_prefix)


def _new_values(case: Case) -> tuple[HandleValue, ...]:
    return (
        text_value(1, "URL", "https://example.com/new"),
        admin_value(100, 0x0FFF, f"{PREFIX}/USER-H", 300),
    )


OPS: dict[str, Op] = {
    "create": Op(OpCode.CREATE_HANDLE, lambda c: ValuesRequest(c.new, _new_values(c)), _created),
    "delete": Op(OpCode.DELETE_HANDLE, lambda c: HandleRequest(c.target), _deleted),
    "add": Op(
        OpCode.ADD_VALUE,
        lambda c: ValuesRequest(c.target, (text_value(3, "EMAIL", "added@example.com"),)),
        _added,
    ),
    "modify": Op(
        OpCode.MODIFY_VALUE,
        lambda c: ValuesRequest(c.target, (text_value(2, "DESC", "changed"),)),
        _modified,
    ),
    "remove": Op(OpCode.REMOVE_VALUE, lambda c: RemoveValuesRequest(c.target, (2,)), _removed),
    "add-admin": Op(
        OpCode.ADD_VALUE, lambda c: ValuesRequest(c.target, (NEW_ADMIN,)), _admin_added
    ),
    "list": Op(OpCode.LIST_HANDLES, lambda c: HandleRequest(PREFIX_HANDLE), _listed),
    "home": Op(OpCode.HOME_NA, lambda c: HandleRequest(f"0.NA/{c.new_prefix}"), _homed),
}


# -- callers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strangers:
    """Keys that belong to no identity on the node."""

    rsa_key: rsa.RSAPrivateKey
    dsa_key: dsa.DSAPrivateKey


@pytest.fixture(scope="module")
def strangers() -> Strangers:
    return Strangers(make_rsa_key(), make_dsa_key())


CallerFactory = Callable[[RunningNode, Users, Strangers], Credentials | None]

CALLERS: dict[str, CallerFactory] = {
    "anonymous": lambda n, u, s: None,
    "wrong-secret": lambda n, u, s: SecretKeyCredentials(PREFIX_HANDLE, 300, b"not-the-secret"),
    "wrong-rsa-key": lambda n, u, s: PublicKeyCredentials(PREFIX_HANDLE, 301, s.rsa_key),
    "wrong-dsa-key": lambda n, u, s: PublicKeyCredentials(f"{PREFIX}/USER-DSA", 300, s.dsa_key),
    "secret-for-pubkey-index": lambda n, u, s: SecretKeyCredentials(
        PREFIX_HANDLE, 301, n.admin_secret
    ),
    "unknown-identity": lambda n, u, s: SecretKeyCredentials(f"{PREFIX}/NOBODY", 300, b"x"),
    "unknown-index": lambda n, u, s: SecretKeyCredentials(PREFIX_HANDLE, 399, n.admin_secret),
    "identity-elsewhere": lambda n, u, s: PublicKeyCredentials("99.1/NOBODY", 300, s.rsa_key),
    "non-admin-rsa": lambda n, u, s: u.user_a,
    "non-admin-secret": lambda n, u, s: u.user_a_seckey,
    "handle-admin": lambda n, u, s: u.handle_admin,
    "partial-admin": lambda n, u, s: u.partial,
    "prefix-group-member": lambda n, u, s: u.group_member,
    "server-admin-secret": lambda n, u, s: n.secret_credentials,
    "server-admin-rsa": lambda n, u, s: n.key_credentials,
    "server-admin-group-dsa": lambda n, u, s: u.dsa,
}

_AUTH_FAILED = (
    "wrong-secret",
    "wrong-rsa-key",
    "wrong-dsa-key",
    "secret-for-pubkey-index",
    "unknown-identity",
    "unknown-index",
    "identity-elsewhere",
)


def _row(default: Outcome, **overrides: Outcome) -> dict[str, Outcome]:
    row: dict[str, Outcome] = dict.fromkeys(OPS, default)
    for name, outcome in overrides.items():
        row[name.replace("_", "-")] = outcome
    return row


EXPECTED: dict[str, dict[str, Outcome]] = {
    "anonymous": _row(AuthenticationRequired),
    **{caller: _row(AuthenticationFailed) for caller in _AUTH_FAILED},
    "non-admin-rsa": _row(InvalidAdmin),
    "non-admin-secret": _row(InvalidAdmin),
    # Named in the target's HS_ADMIN only: allowed there, nothing at the prefix level.
    "handle-admin": _row(OK, create=InvalidAdmin, list=InvalidAdmin, home=InvalidAdmin),
    # ADD_VALUE|MODIFY_VALUE on the target, LIST_HANDLES on the prefix.
    "partial-admin": _row(
        InsufficientPermissions,
        add=OK,
        modify=OK,
        list=OK,
        home=InvalidAdmin,
    ),
    # Prefix and target name the group 201; it is not a server admin.
    "prefix-group-member": _row(OK, home=InvalidAdmin),
    "server-admin-secret": _row(OK),
    "server-admin-rsa": _row(OK),
    "server-admin-group-dsa": _row(OK),
}
assert set(EXPECTED) == set(CALLERS)

MATRIX = [
    pytest.param(op, caller, EXPECTED[caller][op], id=f"{op}-by-{caller}")
    for caller in CALLERS
    for op in OPS
]


# -- state -----------------------------------------------------------------------------------


def snapshot(node: RunningNode, case: Case) -> tuple[Any, ...]:
    return (
        node.get_handle(case.target),
        node.get_handle(case.new),
        node.get_handle(PREFIX_HANDLE),
        node.homed_prefixes(),
    )


def setup_case(node: RunningNode, key: str) -> Case:
    case = Case(key)
    matrix_target(node, case.target)
    assert node.get_handle(case.new) is None
    return case


def run_request(node: RunningNode, creds: Credentials | None, op: Op, case: Case) -> Body:
    client = node.client(creds, tcp=True)
    return asyncio.run(client.request(op.code, op.body(case), admin=True))


@pytest.mark.parametrize(("op_name", "caller", "expected"), MATRIX)
def test_matrix(
    node: RunningNode,
    users: Users,
    strangers: Strangers,
    op_name: str,
    caller: str,
    expected: Outcome,
) -> None:
    op = OPS[op_name]
    case = setup_case(node, f"{op_name}.{caller}")
    creds = CALLERS[caller](node, users, strangers)
    before = snapshot(node, case)
    if expected is None:
        body = run_request(node, creds, op, case)
        op.effect(node, case, body)
    else:
        with pytest.raises(HandleError) as info:
            run_request(node, creds, op, case)
        assert type(info.value) is expected, f"got {type(info.value).__name__}: {info.value}"
        assert snapshot(node, case) == before


# -- challenge sessions ----------------------------------------------------------------------


def send(node: RunningNode, message: Message) -> Message:
    return asyncio.run(node.client(tcp=True).exchange(message, True))


def challenge_for(node: RunningNode, op: Op, case: Case) -> tuple[Message, Message]:
    """Send ``op`` unauthenticated; returns (request, its 402 challenge)."""
    client = node.client(tcp=True)
    request = client.build(op.code, op.body(case))
    reply = send(node, request)
    assert reply.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert reply.session_id != 0
    return request, reply


def answer_for(
    node: RunningNode, creds: Credentials, request: Message, challenge: Message, **changes: Any
) -> Message:
    """The op-200 answer to ``challenge`` as HandleClient builds it; ``changes`` edits it."""
    body = challenge.body
    assert isinstance(body, ChallengeBody)
    assert challenge.request_digest is not None
    version = min(challenge.version, challenge.suggested_version)
    answer_body = ChallengeAnswer(
        creds.auth_type,
        creds.handle,
        creds.index,
        creds.answer(body.nonce, challenge.request_digest.digest, version),
    )
    answer = node.client().build(OpCode.CHALLENGE_RESPONSE, answer_body, request.flags)
    return answer.replace(session_id=challenge.session_id).replace(**changes)


def outcome(reply: Message) -> Outcome:
    if reply.response_code == ResponseCode.SUCCESS:
        return None
    return type(error_for_code(reply.response_code))


SESSION_OPS = [pytest.param(name, id=name) for name in OPS]


@pytest.mark.parametrize("op_name", SESSION_OPS)
@pytest.mark.parametrize(
    "session_id",
    [
        pytest.param(lambda sid: 0, id="session-0"),
        pytest.param(lambda sid: sid % 0x7FFFFFFF + 12345, id="unknown-session"),
    ],
)
def test_answer_with_wrong_session_id(
    node: RunningNode, op_name: str, session_id: Callable[[int], int]
) -> None:
    op = OPS[op_name]
    case = setup_case(node, f"{op_name}.wrong-session-{session_id(0)}")
    before = snapshot(node, case)
    request, challenge = challenge_for(node, op, case)
    answer = answer_for(
        node, node.secret_credentials, request, challenge,
        session_id=session_id(challenge.session_id),
    )  # fmt: skip
    reply = send(node, answer)
    assert outcome(reply) is AuthenticationTimeout
    assert reply.request_id == answer.request_id
    assert snapshot(node, case) == before
    # The pending challenge itself is still good.
    reply = send(node, answer_for(node, node.secret_credentials, request, challenge))
    assert outcome(reply) is None
    op.effect(node, case, reply.body)


@pytest.mark.parametrize("op_name", SESSION_OPS)
@pytest.mark.parametrize("fresh_request_id", [False, True], ids=["same-message", "new-request-id"])
def test_replayed_answer_is_refused(
    node: RunningNode, op_name: str, fresh_request_id: bool
) -> None:
    op = OPS[op_name]
    case = setup_case(node, f"{op_name}.replay-{int(fresh_request_id)}")
    request, challenge = challenge_for(node, op, case)
    answer = answer_for(node, node.secret_credentials, request, challenge)
    first = send(node, answer)
    assert outcome(first) is None
    assert first.op == op.code
    assert first.request_id == answer.request_id
    assert first.session_id == 0
    op.effect(node, case, first.body)
    if op_name == "delete":
        matrix_target(node, case.target)  # a replay must not delete the re-created handle
    after_first = snapshot(node, case)
    replay = answer.replace(request_id=answer.request_id + 1) if fresh_request_id else answer
    second = send(node, replay)
    assert outcome(second) is AuthenticationTimeout
    assert snapshot(node, case) == after_first


def test_answer_to_another_challenge_fails(node: RunningNode) -> None:
    """An answer signed for challenge A, sent with challenge B's session id, does not verify."""
    op = OPS["add"]
    case = setup_case(node, "add.cross-challenge")
    before = snapshot(node, case)
    request_a, challenge_a = challenge_for(node, op, case)
    _request_b, challenge_b = challenge_for(node, op, case)
    answer = answer_for(
        node, node.secret_credentials, request_a, challenge_a, session_id=challenge_b.session_id
    )
    assert outcome(send(node, answer)) is AuthenticationFailed
    assert snapshot(node, case) == before


def test_tampered_signed_response_fails(node: RunningNode) -> None:
    op = OPS["modify"]
    case = setup_case(node, "modify.tampered")
    before = snapshot(node, case)
    request, challenge = challenge_for(node, op, case)
    answer = answer_for(node, node.key_credentials, request, challenge)
    body = answer.body
    assert isinstance(body, ChallengeAnswer)
    signed = bytearray(body.signed_response)
    signed[-1] ^= 0x01
    tampered = answer.replace(
        body=ChallengeAnswer(
            body.auth_type, body.identity_handle, body.identity_index, bytes(signed)
        )
    )
    assert outcome(send(node, tampered)) is AuthenticationFailed
    assert snapshot(node, case) == before
    # A failed answer used the challenge up.
    assert outcome(send(node, answer)) is AuthenticationTimeout
    assert snapshot(node, case) == before


def test_challenge_expires(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An answer after the configured challenge_timeout is refused with AUTHEN_TIMEOUT."""
    directory = tmp_path_factory.mktemp("expiring")
    create_node_dir(directory)
    config_path = directory / "idnode.toml"
    config = dataclasses.replace(NodeConfig.load(config_path), challenge_timeout=0.3)
    config_path.write_text(config.dump(), encoding="utf-8")
    with running_node(directory) as node:
        op = OPS["add"]
        case = setup_case(node, "add.expired")
        before = snapshot(node, case)
        request, challenge = challenge_for(node, op, case)
        time.sleep(0.6)
        reply = send(node, answer_for(node, node.secret_credentials, request, challenge))
        assert outcome(reply) is AuthenticationTimeout
        assert snapshot(node, case) == before


# -- finer points of the HS_ADMIN rules ----------------------------------------------------


def _request(node: RunningNode, creds: Credentials, code: int, body: Body, flags: int = 0) -> Body:
    client = node.client(creds, tcp=True)
    return asyncio.run(client.request(code, body, flags=flags, admin=True))


def _expect(
    node: RunningNode, creds: Credentials, code: int, body: Body, expected: Outcome, flags: int = 0
) -> None:
    watched = [PREFIX_HANDLE, f"{PREFIX}/PV-2026-000123"]
    if isinstance(body, ValuesRequest | HandleRequest | RemoveValuesRequest):
        watched.append(body.handle)
    before = [node.get_handle(h) for h in watched]
    if expected is None:
        _request(node, creds, code, body, flags)
        return
    with pytest.raises(HandleError) as info:
        _request(node, creds, code, body, flags)
    assert type(info.value) is expected, f"got {type(info.value).__name__}: {info.value}"
    assert [node.get_handle(h) for h in watched] == before


def test_admin_index_0_names_every_index(node: RunningNode, users: Users) -> None:
    """An HS_ADMIN admin index of 0 matches any key-bearing index of the admin handle."""
    handle = f"{PREFIX}/MX-INDEX-0"
    node.put_handle(
        handle,
        [text_value(1, "URL", "u"), admin_value(100, 0x0FFF, f"{PREFIX}/USER-A", 0)],
    )
    body = ValuesRequest(handle, (text_value(2, "DESC", "by user A"),))
    _expect(node, users.user_a, OpCode.ADD_VALUE, body, OK)
    body = ValuesRequest(handle, (text_value(3, "DESC", "by user A's secret"),))
    _expect(node, users.user_a_seckey, OpCode.ADD_VALUE, body, OK)
    body = ValuesRequest(handle, (text_value(4, "DESC", "by user H"),))
    _expect(node, users.handle_admin, OpCode.ADD_VALUE, body, InvalidAdmin)


def test_nested_groups(node: RunningNode, users: Users) -> None:
    """Groups are followed recursively; a cycle terminates and grants nothing."""
    outer, inner, loop_a, loop_b = (f"{PREFIX}/GROUP-{n}" for n in ("OUTER", "INNER", "A", "B"))
    node.put_handle(outer, [vlist_value(200, (inner, 200))])
    node.put_handle(inner, [vlist_value(200, (f"{PREFIX}/USER-A", 300))])
    node.put_handle(loop_a, [vlist_value(200, (loop_b, 200))])
    node.put_handle(loop_b, [vlist_value(200, (loop_a, 200))])
    handle = f"{PREFIX}/MX-NESTED"
    node.put_handle(
        handle,
        [
            text_value(1, "URL", "u"),
            admin_value(100, 0x0FFF, loop_a, 200),
            admin_value(101, 0x0FFF, outer, 200),
        ],
    )
    body = ValuesRequest(handle, (text_value(2, "DESC", "via nested group"),))
    _expect(node, users.user_a, OpCode.ADD_VALUE, body, OK)
    body = ValuesRequest(handle, (text_value(3, "DESC", "not a member"),))
    _expect(node, users.handle_admin, OpCode.ADD_VALUE, body, InvalidAdmin)


def test_overwrite_create_needs_delete_right_on_existing(node: RunningNode, users: Users) -> None:
    """A prefix admin may create handles, but replacing (OVRW) one whose HS_ADMIN does not
    name it must be refused."""
    body = ValuesRequest(f"{PREFIX}/PV-2026-000123", (text_value(1, "URL", "hijacked"),))
    _expect(node, users.group_member, OpCode.CREATE_HANDLE, body, InvalidAdmin, OpFlag.OVRW)
    _expect(node, users.group_member, OpCode.CREATE_HANDLE, body, HandleAlreadyExists)


def test_partial_admin_cannot_touch_admin_values(node: RunningNode, users: Users) -> None:
    case = setup_case(node, "partial.admin-values")
    # MODIFY_VALUE does not cover an HS_ADMIN value (MODIFY_ADMIN does).
    body = ValuesRequest(case.target, (admin_value(101, 0x0FFF, f"{PREFIX}/USER-P", 300),))
    _expect(node, users.partial, OpCode.MODIFY_VALUE, body, InsufficientPermissions)
    # Overwriting an HS_ADMIN value with a plain one is a change of an admin value.
    body = ValuesRequest(case.target, (text_value(100, "DESC", "admin gone"),))
    _expect(node, users.partial, OpCode.ADD_VALUE, body, InsufficientPermissions, OpFlag.OVRW)
    _expect(node, users.partial, OpCode.MODIFY_VALUE, body, InsufficientPermissions)
    # ...while overwriting a plain value needs MODIFY_VALUE only.
    body = ValuesRequest(case.target, (text_value(2, "DESC", "overwritten"),))
    _expect(node, users.partial, OpCode.ADD_VALUE, body, OK, OpFlag.OVRW)
    # REMOVE_VALUE is missing.
    _expect(
        node, users.partial, OpCode.REMOVE_VALUE, RemoveValuesRequest(case.target, (1,)),
        InsufficientPermissions,
    )  # fmt: skip


def test_handle_admin_cannot_delete_other_handles(node: RunningNode, users: Users) -> None:
    cases: list[tuple[int, Body]] = [
        (OpCode.DELETE_HANDLE, HandleRequest(f"{PREFIX}/PV-2026-000123")),
        (OpCode.REMOVE_VALUE, RemoveValuesRequest(f"{PREFIX}/PV-2026-000123", (1,))),
        (OpCode.ADD_VALUE, ValuesRequest(PREFIX_HANDLE, (text_value(7, "DESC", "x"),))),
        (OpCode.MODIFY_VALUE, ValuesRequest(f"{PREFIX}/USER-A", (text_value(100, "DESC", "x"),))),
    ]
    for code, body in cases:
        _expect(node, users.handle_admin, code, body, InvalidAdmin)


def test_derived_prefix_needs_add_na(node: RunningNode, users: Users) -> None:
    """The prefix-admin group has everything but ADD_NA/DELETE_NA on the prefix handle."""
    body = ValuesRequest(f"{PREFIX_HANDLE}.GROUP", (text_value(1, "DESC", "derived"),))
    _expect(node, users.group_member, OpCode.CREATE_HANDLE, body, InsufficientPermissions)
    _expect(node, users.handle_admin, OpCode.CREATE_HANDLE, body, InvalidAdmin)
    _expect(node, node.key_credentials, OpCode.CREATE_HANDLE, body, OK)


def test_list_derived_prefixes_permissions(node: RunningNode, users: Users) -> None:
    body = HandleRequest(PREFIX_HANDLE)
    _expect(node, users.partial, OpCode.LIST_DERIVED_PREFIXES, body, OK)
    _expect(node, users.group_member, OpCode.LIST_DERIVED_PREFIXES, body, OK)
    _expect(node, users.user_a, OpCode.LIST_DERIVED_PREFIXES, body, InvalidAdmin)
    _expect(node, users.handle_admin, OpCode.LIST_DERIVED_PREFIXES, body, InvalidAdmin)


def test_unhome_needs_server_admin(node: RunningNode, users: Users) -> None:
    node.call(node.node.store.home_prefix("66.UNHOME"))
    body = HandleRequest("0.NA/66.UNHOME")
    for creds in (users.group_member, users.partial, users.handle_admin, users.user_a):
        _expect(node, creds, OpCode.UNHOME_NA, body, InvalidAdmin)
        assert node.is_homed("66.UNHOME")
    _expect(node, users.dsa, OpCode.UNHOME_NA, body, OK)
    assert not node.is_homed("66.UNHOME")


def test_deleting_derived_prefix_needs_delete_na(node: RunningNode, users: Users) -> None:
    """Creating a derived prefix handle needs ADD_NA; deleting one needs DELETE_NA (spec §2.1).

    The prefix-admin group holds HANDLE_ADMIN_PERMISSIONS (everything but ADD_NA/DELETE_NA)
    on the prefix handle and on the derived prefix handle itself: it must not delete it.
    """
    derived = f"{PREFIX_HANDLE}.DNA"
    node.put_handle(
        derived,
        [
            text_value(1, "DESC", "derived prefix"),
            admin_value(100, HANDLE_ADMIN_PERMISSIONS, PREFIX_HANDLE, PREFIX_GROUP_INDEX),
        ],
    )
    before = node.get_handle(derived)
    with pytest.raises((InsufficientPermissions, InvalidAdmin)):
        _request(node, users.group_member, OpCode.DELETE_HANDLE, HandleRequest(derived))
    assert node.get_handle(derived) == before
    # A server admin may.
    _request(node, node.secret_credentials, OpCode.DELETE_HANDLE, HandleRequest(derived))
    assert node.get_handle(derived) is None


@pytest.mark.parametrize("answer_flags", ["copied", "none"])
def test_certified_admin_request_gets_signed_final_response(
    node: RunningNode, answer_flags: str
) -> None:
    """With CT on the request, the response to it (sent after the challenge) is signed by
    the server key (spec §3.3), whether or not the challenge answer repeats CT."""
    op = OPS["add"]
    case = setup_case(node, f"add.certified-{answer_flags}")
    client = node.client(tcp=True)
    request = client.build(op.code, op.body(case), OpFlag.CT)
    challenge = send(node, request)
    assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
    answer = answer_for(node, node.secret_credentials, request, challenge)
    if answer_flags == "none":
        answer = answer.replace(flags=0)
    reply = send(node, answer)
    assert outcome(reply) is None
    op.effect(node, case, reply.body)
    assert reply.credential, "the response to a certified request is unsigned"
    credential = Credential.from_bytes(reply.credential)
    assert auth.verify_message_signature(
        node.server_key.public_key(),
        credential,
        reply.version,
        reply.suggested_version,
        reply.session_id,
        reply.request_id,
        reply.header_and_body(),
    )


VERSIONS = [(2, 0), (2, 1), (2, 5), (2, 6), (2, 7), (2, 10), (2, 11)]


@pytest.mark.parametrize("version", VERSIONS, ids=[f"v{a}.{b}" for a, b in VERSIONS])
@pytest.mark.parametrize("who", ["secret", "rsa", "dsa"])
def test_authentication_at_protocol_version(
    node: RunningNode, users: Users, version: tuple[int, int], who: str
) -> None:
    """Clients of older protocol versions authenticate too: the challenge carries the request
    digest their version expects (old MD5 format before 2.1, RD prefix from 2.1) and their
    answers (MD5/SHA-1/PBKDF2 secret-key MACs, SHA1/SHA-256 signatures) are accepted."""
    choices: dict[str, Credentials] = {
        "secret": node.secret_credentials,
        "rsa": node.key_credentials,
        "dsa": users.dsa,
    }
    creds = choices[who]
    op = OPS["add"]
    case = setup_case(node, f"add.v{version[0]}.{version[1]}-{who}")
    request = node.client().build(op.code, op.body(case))
    request = request.replace(version=version, suggested_version=version)
    challenge = send(node, request)
    assert challenge.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert challenge.version == version
    body = challenge.body
    assert isinstance(body, ChallengeBody)
    if version < (2, 1):
        assert challenge.request_digest is None
        assert body.old_digest is not None
        digest = body.old_digest
        assert digest == auth.request_digest(request.encode_header_and_body(), 0)
    else:
        assert challenge.request_digest is not None
        digest = challenge.request_digest.digest
        hash_type = challenge.request_digest.hash_type
        assert digest == auth.request_digest(request.encode_header_and_body(), hash_type)
        assert hash_type == (3 if version >= (2, 7) else 2)
    answer_body = ChallengeAnswer(
        creds.auth_type, creds.handle, creds.index, creds.answer(body.nonce, digest, version)
    )
    answer = node.client().build(OpCode.CHALLENGE_RESPONSE, answer_body)
    answer = answer.replace(
        version=version, suggested_version=version, session_id=challenge.session_id
    )
    reply = send(node, answer)
    assert outcome(reply) is None, reply.body
    op.effect(node, case, reply.body)
