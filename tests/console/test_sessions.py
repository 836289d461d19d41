"""Console logins as signed cookies: accepted by another process of the node and after a
restart, ended by logging out (everywhere) and by disabling the account; forged, expired
and malformed cookies refused; the key file private to the node's user."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from idnode.console.sessions import KEY_FILE, Sessions
from idnode.industry.accounts import Login, new_account
from tests.console.test_pages import csrf_of
from tests.server.nodeutil import PREFIX_HANDLE, create_node_dir, running_node


def holder(sessions: Sessions, cookie: str) -> str | None:
    """Who ``cookie`` is a valid session of, if anyone."""
    login = sessions.check(cookie)
    return None if login is None else login.username


def test_cookies_are_signed_and_revocable(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    directory = tmp_path / ".console"
    sessions = Sessions(directory, clock=lambda: now[0])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((directory / KEY_FILE).stat().st_mode) == 0o600
    cookie = sessions.issue("ops@ent-a.example")
    assert sessions.check(cookie) == Login("ops@ent-a.example", 1_800_000_000)  # issued then
    now[0] += 0.9
    later = sessions.check(sessions.issue("root"))
    assert later == Login("root", 1_800_000_000)  # in whole seconds, rounded down
    now[0] -= 0.9
    assert holder(sessions, cookie) == "ops@ent-a.example"
    again = Sessions(directory, clock=lambda: now[0])  # another worker, or after a restart
    assert holder(again, cookie) == "ops@ent-a.example"
    assert again.csrf_key == sessions.csrf_key
    name, generation, expires, mac = cookie.split(".")
    for forged in (
        f"{name}.{generation}.{int(expires) + 3600}.{mac}",  # a longer life
        f"cm9vdA.{generation}.{expires}.{mac}",  # another account ("root")
        f"{name}.{generation}.{expires}.{mac[:-2]}AA",
        "", "...", "a.b.c.d", f"{name}.1².{expires}.{mac}", f"{name}.{generation}.{'9' * 5000}.x",
    ):  # fmt: skip
        assert holder(sessions, forged) is None, forged
    assert holder(Sessions(tmp_path / "other"), cookie) is None  # another node's key
    now[0] += 24 * 3600
    assert holder(sessions, cookie) is None  # expired
    now[0] -= 24 * 3600
    other = sessions.issue("root")
    again.revoke("ops@ent-a.example")  # logging out in one process ends it in every one
    assert holder(sessions, cookie) is None
    assert holder(sessions, other) == "root"
    assert holder(sessions, sessions.issue("ops@ent-a.example")) == "ops@ent-a.example"


def test_another_process_accepts_the_cookie(tmp_path: Path) -> None:
    directory = tmp_path / ".console"
    cookie = Sessions(directory).issue("root")
    code = (
        "import sys; from pathlib import Path; from idnode.console.sessions import Sessions; "
        "s = Sessions(Path(sys.argv[1])); print(s.check(sys.argv[2]).username); "
        "s.revoke('root')"
    )
    done = subprocess.run([sys.executable, "-c", code, str(directory), cookie],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "root"
    assert holder(Sessions(directory), cookie) is None  # revoked over there


def test_a_broken_key_file_is_reported(tmp_path: Path) -> None:
    directory = tmp_path / ".console"
    directory.mkdir()
    (directory / KEY_FILE).write_text("not hex")
    with pytest.raises(ValueError, match="console key"):
        Sessions(directory)


def test_login_survives_a_restart_and_logout_ends_it(tmp_path: Path) -> None:
    create_node_dir(tmp_path)
    with running_node(tmp_path) as running:
        service = running.node.console.service
        assert service is not None
        account = new_account("keeper", "keeper-pass", "node_admin", f"300:{PREFIX_HANDLE}")
        running.call(service.repository.add_account(account))
        base = f"http://127.0.0.1:{running.node.http_port}"
        with httpx.Client(base_url=base, timeout=10.0) as http:
            token = csrf_of(http.get("/console/login").text)
            r = http.post("/console/login", data={"username": "keeper", "password":
                                                  "keeper-pass", "csrf": token})  # fmt: skip
            assert r.status_code == 303
            cookie = http.cookies["idnode_session"]
            form_token = csrf_of(http.get("/console/admin").text)
    with running_node(tmp_path) as running:  # the node restarted
        base = f"http://127.0.0.1:{running.node.http_port}"
        with httpx.Client(base_url=base, timeout=10.0) as http:
            http.cookies.set("idnode_session", cookie)
            r = http.get("/console/admin")
            assert r.status_code == 200 and "keeper" in r.text
            assert csrf_of(r.text) == form_token  # the forms' tokens carry over too
            r = http.post("/console/logout", data={"csrf": form_token})
            assert r.status_code == 303
        with httpx.Client(base_url=base, timeout=10.0) as stolen:  # a copy of the cookie
            stolen.cookies.set("idnode_session", cookie)
            r = stolen.get("/console/admin")
            assert r.status_code == 303 and "/console/login" in r.headers["location"]
