"""Disabling an account ends its logins for good, whichever way it is disabled: SNMS login
tokens and console sessions issued before a disable stay refused once the account is enabled
again, while a new login works. Disabled with ``idnode account disable`` (click's CliRunner on
the node's database) while the node runs, and through the SNMS admin API; on a node of one
worker (tokens in memory) and on two nodes of one directory standing for two workers (signed
tokens, a login at one used at the other). All over real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from idnode.cli import main
from idnode.industry.accounts import AccountService, Login, new_account
from tests.console.test_pages import csrf_of
from tests.server.nodeutil import (
    PREFIX_HANDLE,
    RunningNode,
    create_node_dir,
    no_internal_errors,
    running_node,
)
from tests.server.test_workers import two_worker_dir

__all__ = ["no_internal_errors"]

PASSWORD = "ops-pass"


@pytest.fixture(params=["one worker", "two workers"])
def nodes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RunningNode, ...]]:
    """The node(s) serving one directory with the accounts ``root`` and ``ops``: one, or
    two (``workers = 2``: signed tokens) where logins made at the first are used at the
    second."""
    if request.param == "one worker":
        create_node_dir(tmp_path)
        with running_node(tmp_path) as single:
            add_accounts(single)
            yield (single,)
    else:
        two_worker_dir(tmp_path)
        with running_node(tmp_path) as first, running_node(tmp_path) as second:
            add_accounts(first)
            yield first, second


def add_accounts(node: RunningNode) -> None:
    repo = service_of(node).repository
    for name, role in (("root", "node_admin"), ("ops", "node_admin")):
        account = new_account(name, PASSWORD, role, f"300:{PREFIX_HANDLE}")
        assert node.call(repo.add_account(account))


def service_of(node: RunningNode) -> AccountService:
    service = node.node.console.service
    assert service is not None
    return service


def base(node: RunningNode) -> str:
    return f"http://127.0.0.1:{node.node.http_port}"


def snms_login(node: RunningNode, username: str) -> str:
    body = {"username": username, "password": PASSWORD}
    r = httpx.post(f"{base(node)}/identity/token", json=body, timeout=10.0)
    assert r.status_code == 200 and r.json()["status"] == 1, r.text
    token: str = r.json()["data"]["token"]
    return token


def token_works(node: RunningNode, token: str) -> bool:
    """Whether ``token`` authenticates an admin request (the account list)."""
    headers = {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{base(node)}/api/admin/accounts", headers=headers, timeout=10.0)
    assert r.status_code == 200, r.text
    return bool(r.json()["status"] == 1)


def console_login(node: RunningNode, username: str) -> str:
    with httpx.Client(base_url=base(node), timeout=10.0) as http:
        form = {"username": username, "password": PASSWORD,
                "csrf": csrf_of(http.get("/console/login").text)}  # fmt: skip
        assert http.post("/console/login", data=form).status_code == 303
        return http.cookies["idnode_session"]


def session_works(node: RunningNode, cookie: str) -> bool:
    """Whether the console takes ``cookie`` for a logged-in session (else: to the login)."""
    with httpx.Client(base_url=base(node), timeout=10.0) as http:
        http.cookies.set("idnode_session", cookie)
        r = http.get("/console/admin")
        assert r.status_code in (200, 303), r.text
        return r.status_code == 200


def cli(node: RunningNode, *args: str) -> None:
    done = CliRunner().invoke(main, ["account", *args, "--config", str(node.config_path)])
    assert done.exit_code == 0, done.output


def api(node: RunningNode, token: str, username: str, action: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base(node)}/api/admin/accounts/{username}/{action}"
    r = httpx.post(url, headers=headers, timeout=10.0)
    assert r.status_code == 200 and r.json()["status"] == 1, r.text


def test_cli_disable_of_a_running_node_ends_tokens_and_sessions(
    nodes: tuple[RunningNode, ...],
) -> None:
    first, last = nodes[0], nodes[-1]
    token, cookie = snms_login(first, "ops"), console_login(first, "ops")
    assert token_works(last, token) and session_works(last, cookie)
    cli(first, "disable", "ops")
    assert not token_works(last, token) and not session_works(last, cookie)
    cli(first, "enable", "ops")
    # enabled again: the logins made before the disable stay ended, in every worker ...
    assert not token_works(first, token) and not token_works(last, token)
    assert not session_works(first, cookie) and not session_works(last, cookie)
    # ... while new ones (made at once, in the second of the disable) work everywhere
    token, cookie = snms_login(first, "ops"), console_login(first, "ops")
    for node in nodes:
        assert token_works(node, token) and session_works(node, cookie)
    root = snms_login(last, "root")  # another account's logins are untouched
    assert token_works(first, root)


def test_api_disable_ends_console_sessions_too(nodes: tuple[RunningNode, ...]) -> None:
    first, last = nodes[0], nodes[-1]
    root = snms_login(first, "root")
    token, cookie = snms_login(last, "ops"), console_login(last, "ops")
    api(first, root, "ops", "disable")
    api(last, root, "ops", "enable")
    assert not token_works(first, token) and not session_works(first, cookie)
    assert not token_works(last, token) and not session_works(last, cookie)
    assert token_works(first, snms_login(last, "ops"))
    assert session_works(first, console_login(last, "ops"))


def test_a_login_in_the_second_of_the_disable_is_refused(nodes: tuple[RunningNode, ...]) -> None:
    """Issue times are whole seconds: a login stamped in the second of the disable is
    refused (it may be from before it), one stamped the second after is accepted."""
    service = service_of(nodes[-1])
    cli(nodes[0], "disable", "ops")
    cli(nodes[0], "enable", "ops")
    account = nodes[-1].call(service.repository.get_account("ops"))
    assert account is not None and account.enabled and account.logins_after_ms > 0
    second = account.logins_after_ms // 1000
    for issued, accepted in ((second - 1, False), (second, False), (second + 1, True)):
        found = nodes[-1].call(service.current(Login("ops", issued)))
        assert (found is not None) == accepted, issued
    assert nodes[-1].call(service.current(Login("nobody", second + 1))) is None
    assert nodes[-1].call(service.current(None)) is None
