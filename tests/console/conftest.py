"""Fixtures of the console tests: a real node on 127.0.0.1 (``tests.server.nodeutil``) with
accounts, two enterprises with active prefixes, and the PV chain of the traceability tests;
Debian's chromium driven by Playwright (one browser for the browser tests).

Chromium comes from Debian: ``/usr/bin/chromium``, installed here with apt-get when missing
and running as root (as ``.ci/run`` does); otherwise the browser tests are skipped with the
reason. Playwright never downloads a browser. A browser test that fails saves a screenshot
of its page to ``var/test-screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from idnode.industry.accounts import new_account
from tests.industry import pvchain
from tests.server.nodeutil import PREFIX_HANDLE, RunningNode, create_node_dir, running_node

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test-screenshots"
ENT_A, ENT_B = "88.118.8.1", "88.118.8.2"
PASSWORDS = {"root": "root-pass", "ent-a-admin": "pw-ent-a", "ent-b-admin": "pw-ent-b"}
#: A module of the PV chain (its trace goes up to the polysilicon lot).
MODULE = next(i.handle for i in pvchain.chain(1) if "MODULE" in i.template.id)


@dataclass(frozen=True)
class ConsoleNode:
    running: RunningNode
    base_url: str


@pytest.fixture(scope="package")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleNode]:
    directory = tmp_path_factory.mktemp("consolenode")
    create_node_dir(directory)
    with running_node(directory) as running:
        node = running.node
        service = node.console.service
        assert service is not None
        root = new_account("root", PASSWORDS["root"], "node_admin", f"300:{PREFIX_HANDLE}")

        async def setup() -> None:
            await service.repository.add_account(root)
            for ent, prefix in (("ent-a", ENT_A), ("ent-b", ENT_B)):
                admin = f"300:0.NA/{prefix}"
                await service.create_enterprise(root, ent, ent.upper(), "ops@example.com", admin)
                await service.create_account(
                    root, f"{ent}-admin", PASSWORDS[f"{ent}-admin"], "enterprise_admin", admin,
                    ent,
                )  # fmt: skip
                await service.apply(root, prefix, ent)
                await service.transition(root, prefix, "approve")
            await pvchain.load(node.store, pvchain.chain(1))

        running.call(setup())
        yield ConsoleNode(running, f"http://127.0.0.1:{node.http_port}")
        assert not running.internal_errors, [r.getMessage() for r in running.internal_errors]


@pytest.fixture()
def http(console_node: ConsoleNode) -> Iterator[httpx.Client]:
    """A fresh client (no cookies) that does not follow redirects."""
    with httpx.Client(base_url=console_node.base_url, timeout=10.0) as client:
        yield client


def _chromium() -> str | None:
    """Why the browser tests cannot run, or None once /usr/bin/chromium is there."""
    if Path(CHROMIUM).exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing (install Debian's chromium package as root)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=900)
    return None if Path(CHROMIUM).exists() else "apt-get could not install chromium"


@pytest.fixture(scope="module")
def browser_context(
    console_node: ConsoleNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One headless Debian chromium for the browser tests, with a fresh profile. Module
    scope: Playwright's sync API holds an event loop on this thread while the browser is
    open, so it must be closed before other modules' tests use asyncio.run."""
    reason = _chromium()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
            locale="en-US", viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture()
def page(
    console_node: ConsoleNode, browser_context: Any, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A new tab (cookies cleared); a screenshot of it is saved if the test fails."""
    browser_context.clear_cookies()
    tab = browser_context.new_page()
    try:
        yield tab
    finally:
        if request.node.stash.get(_FAILED, False):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        tab.close()
