"""The shared session database of a node's workers (idnode.server.sessiondb) and what it
keeps: native sessions (SharedSessionTable), /api/sessions (SharedSessionStore) and signed SNMS
tokens (SignedTokens). Two connections to one database stand for two workers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from idnode.http.sessions import SharedSessionStore
from idnode.industry.accounts import Login
from idnode.industry.tokens import SignedTokens
from idnode.protocol.bodies import ResolutionRequest
from idnode.protocol.codes import OpCode
from idnode.protocol.message import Message
from idnode.server.authz import Identity
from idnode.server.challenges import PendingChallenge
from idnode.server.sessiondb import SessionDatabase
from idnode.server.sessions import COUNTER_WINDOW, ServerSession, _ReplayWindow
from idnode.server.shared_sessions import SharedSessionTable, admit

ADMIN = Identity("0.NA/88.118.8", 300)


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[SessionDatabase, SessionDatabase]:
    return SessionDatabase(tmp_path / ".sessions"), SessionDatabase(tmp_path / ".sessions")


def _session(table: SharedSessionTable, now: float, timeout: float = 60.0) -> ServerSession:
    session = ServerSession(table.new_id(), b"k" * 16, 1, 4, ADMIN, timeout, now)
    table.add(session, now)
    return session


def test_admit_is_the_replay_window() -> None:
    rng = random.Random(7)
    window, floor, seen = _ReplayWindow(), 0, b""
    for _ in range(3000):
        counter = rng.choice([0, rng.randrange(1, 600), rng.randrange(1, 5000)])
        unique = rng.random() < 0.8
        accepted, floor, seen = admit(floor, seen, counter, unique=unique)
        assert accepted == window.add(counter, unique=unique)
        assert len(seen) <= 4 * COUNTER_WINDOW


def test_counters_once_across_connections(dbs: tuple[SessionDatabase, SessionDatabase]) -> None:
    one, two = SharedSessionTable(dbs[0]), SharedSessionTable(dbs[1])
    session = _session(one, 100.0)
    seen_by_two = two.get(session.session_id, 101.0)
    assert seen_by_two is not None and seen_by_two.identity == ADMIN
    assert one.record_counter(session, 1, unique=True)
    assert not two.record_counter(seen_by_two, 1, unique=True)  # replayed to the other
    assert two.record_counter(seen_by_two, 2, unique=True)
    assert not one.record_counter(session, 2, unique=True)
    counters = {one.next_counter(session) for _ in range(5)} | {
        two.next_counter(seen_by_two) for _ in range(5)
    }
    assert counters == set(range(1, 11))  # the server's counters never repeat
    two.remove(session.session_id)
    assert one.get(session.session_id, 102.0) is None
    with pytest.raises(Exception, match="session"):
        one.record_counter(session, 3, unique=True)


def test_state_changes_seen_by_all(dbs: tuple[SessionDatabase, SessionDatabase]) -> None:
    one, two = SharedSessionTable(dbs[0]), SharedSessionTable(dbs[1])
    session = _session(one, 100.0)
    one.set_authenticated(session)
    one.set_key(session, 2, b"n" * 16)
    request = Message(op=OpCode.RESOLUTION, body=ResolutionRequest("88.118.8/X"), request_id=5)
    one.hold(session, PendingChallenge(request, b"nonce", b"digest", 160.0))
    other = two.get(session.session_id, 101.0)
    assert other is not None and other.authenticated and other.key == b"n" * 16
    assert other.algorithm == 2
    assert other.pending is not None and other.pending.request == request
    taken = two.take_pending(other)
    assert taken is not None and taken.nonce == b"nonce" and taken.digest == b"digest"
    assert one.take_pending(session) is None  # single use


def test_expiry_and_capacity(dbs: tuple[SessionDatabase, SessionDatabase]) -> None:
    table = SharedSessionTable(dbs[0], capacity=3)
    first = _session(table, 100.0, timeout=60.0)
    assert table.get(first.session_id, 150.0) is not None  # used: its idle time restarts
    assert table.get(first.session_id, 205.0) is not None
    assert table.get(first.session_id, 266.0) is None  # 61 s idle
    assert len(table) == 0
    sessions = [_session(table, 300.0 + n) for n in range(4)]
    assert len(table) == 3
    assert table.peek(sessions[0].session_id, 305.0) is None  # least recently used went
    assert all(table.peek(s.session_id, 305.0) for s in sessions[1:])


def test_sessions_dropped_after_a_reboot(tmp_path: Path) -> None:
    db = SessionDatabase(tmp_path / ".sessions")
    table = SharedSessionTable(db)
    session = _session(table, 100.0)
    http = SharedSessionStore(db, clock=lambda: 100.0).create()
    token = SignedTokens(db, clock=lambda: 100.0).issue("audit")
    db.connection.execute("UPDATE meta SET value = x'00' WHERE name = 'boot'")  # another boot
    db.close()
    again = SessionDatabase(tmp_path / ".sessions")
    assert SharedSessionTable(again).peek(session.session_id, 101.0) is None
    assert SharedSessionStore(again, clock=lambda: 101.0).get(http.id) is None
    assert SignedTokens(again, clock=lambda: 101.0).check(token) == Login("audit", 100)  # stays


def test_http_sessions_shared(dbs: tuple[SessionDatabase, SessionDatabase]) -> None:
    now = [1000.0]
    one = SharedSessionStore(dbs[0], timeout=100.0, clock=lambda: now[0])
    two = SharedSessionStore(dbs[1], timeout=100.0, clock=lambda: now[0])
    session = one.create()
    other = two.get(session.id)
    assert other is not None and other.nonce == session.nonce and other.identity is None
    two.authenticated(other, ADMIN, "Handle ...")
    found = one.get(session.id)
    assert found is not None and found.identity == ADMIN and found.auth_header == "Handle ..."
    now[0] += 99.0
    assert two.get(session.id) is not None
    now[0] += 99.0  # 99 s after the last use
    assert one.get(session.id) is not None
    now[0] += 100.0
    assert two.get(session.id) is None
    session = two.create()
    assert one.delete(session.id) and two.get(session.id) is None and not two.delete(session.id)


def test_signed_tokens(dbs: tuple[SessionDatabase, SessionDatabase]) -> None:
    now = [1000.0]
    one = SignedTokens(dbs[0], clock=lambda: now[0], lifetime=60.0)
    two = SignedTokens(dbs[1], clock=lambda: now[0], lifetime=60.0)
    token = one.issue("root")
    assert two.check(token) == Login("root", 1000) and one.check(token) == Login("root", 1000)
    name, expires, mac = token.split(".")
    for forged in (
        token[:-2] + "AA", f"{name}.{int(expires) + 60}.{mac}",
        f"YWRtaW4.{expires}.{mac}",  # another account ("admin")
        f"{name}.0.{expires}.{mac}", "", "..", f"{name}.{'9' * 5000}.{mac}", f"{name}.1².{mac}",
    ):  # fmt: skip
        assert two.check(forged) is None, forged
    now[0] += 0.5
    assert two.check(one.issue("root")) == Login("root", 1000)  # whole seconds, rounded down
    now[0] += 59.5
    assert two.check(token) is None  # expired
