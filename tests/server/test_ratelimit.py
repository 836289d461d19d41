"""The per-client limits (idnode.server.ratelimit), with an injected clock."""

from __future__ import annotations

import pytest

from idnode.errors import ServerBusy
from idnode.server.ratelimit import ClientLimiter, LimitSettings, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **settings: float) -> ClientLimiter:
    return ClientLimiter(LimitSettings(**settings), clock)  # type: ignore[arg-type]


def test_client_key_is_the_host() -> None:
    assert client_key("10.0.0.7:5123") == "10.0.0.7"
    assert client_key("[2001:db8::1]:2641") == "[2001:db8::1]"
    assert client_key(None) is None


def test_failures_block_the_address_then_expire() -> None:
    clock = Clock()
    limits = limiter(clock, max_failures=3, window=60, block=300)
    for _ in range(2):
        limits.auth_failed("10.0.0.7:1")
    limits.check_auth("10.0.0.7:2")  # two failures: still allowed
    limits.auth_failed("10.0.0.7:3")
    with pytest.raises(ServerBusy):
        limits.check_auth("10.0.0.7:4")  # any port of that host
    limits.check_auth("10.0.0.8:1")  # other hosts are not affected
    clock.now += 301
    limits.check_auth("10.0.0.7:5")
    assert limits.refused["auth"] == 1


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    limits = limiter(clock, max_failures=3, window=60, block=300)
    for _ in range(10):
        limits.auth_failed("10.0.0.7:1")
        clock.now += 31  # at most two in any 60 s
    limits.check_auth("10.0.0.7:1")


def test_write_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    limits = limiter(clock, writes_per_second=10, write_burst=5)
    for _ in range(5):
        limits.check_write("10.0.0.7:1")
    with pytest.raises(ServerBusy):
        limits.check_write("10.0.0.7:1")
    clock.now += 0.1  # one token back
    limits.check_write("10.0.0.7:1")
    with pytest.raises(ServerBusy):
        limits.check_write("10.0.0.7:1")
    limits.check_write("10.0.0.9:1")


def test_unknown_address_is_not_limited() -> None:
    limits = limiter(Clock(), writes_per_second=0, write_burst=0, max_failures=1)
    limits.auth_failed(None)
    limits.check_auth(None)
    limits.check_write(None)


def test_tracked_addresses_are_bounded() -> None:
    limits = limiter(Clock(), max_clients=100)
    for i in range(10_000):
        limits.check_write(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:1")
    assert limits.tracked() == 100


def test_pending_challenges_are_bounded_and_expire() -> None:
    """A flood of unauthenticated administrative requests leaves at most ``capacity``
    challenges (the oldest go first), each for ``timeout`` seconds."""
    from idnode.protocol.bodies import HandleRequest
    from idnode.protocol.message import Message
    from idnode.server.challenges import Challenges

    challenges = Challenges(timeout=60, capacity=100)
    request = Message(op=101, body=HandleRequest("88.118.8/X"))
    ids = [challenges.add(request, b"n" * 16, b"d" * 20, 1000.0) for _ in range(1000)]
    assert len(challenges) == 100
    assert challenges.take(ids[0], 1000.0) is None  # dropped to make room
    assert challenges.take(ids[-1], 1000.0) is not None
    assert challenges.take(ids[-2], 1061.0) is None  # expired
    assert len(challenges) == 0
