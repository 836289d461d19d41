"""Every ``console`` example of docs/http-api.md, run with the real ``curl`` against a live node.

Each code block is one bash script (so shell variables carry from one command to the next);
``NODE`` and ``SECRET`` are set as the document says. For every command whose shown output
has a status line (``HTTP/1.1 NNN ...``) the real output must have the same status, and when
the shown body has a ``responseCode`` the real body must have the same one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.server.nodeutil import RunningNode

DOC = Path(__file__).resolve().parents[2] / "docs" / "http-api.md"
_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
_STATUS = re.compile(r"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_CODE = re.compile(r'"responseCode":\s*(\d+)')
_MARK = "@@idnode-doc-example-end@@"

Example = tuple[str, str]  # command, shown output


def examples(text: str) -> list[list[Example]]:
    blocks = []
    for block in _BLOCK.findall(text):
        commands: list[Example] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append((line[2:], ""))
            elif commands:
                command, shown = commands[-1]
                commands[-1] = (command, shown + line + "\n")
        blocks.append(commands)
    return blocks


def test_the_document_has_examples() -> None:
    blocks = examples(DOC.read_text(encoding="utf-8"))
    commands = [c for block in blocks for c in block]
    assert len(commands) >= 30
    assert all(
        c.startswith(("curl ", "SESSION=", "SID=", "NONCE=", "CNONCE=", "SIG="))
        for c, _ in commands
    )
    assert sum(1 for _, shown in commands if _STATUS.search(shown)) >= 25


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)"
)
def test_curl_examples(node: RunningNode) -> None:
    env = dict(
        os.environ,
        NODE=f"http://{node.host}:{node.node.http_port}",
        SECRET=node.admin_secret.decode(),
    )
    checked = 0
    for block in examples(DOC.read_text(encoding="utf-8")):
        script = "".join(f"{command}\nprintf '\\n%s\\n' '{_MARK}'\n" for command, _ in block)
        result = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        outputs = result.stdout.split(_MARK)
        assert len(outputs) == len(block) + 1, (result.stdout, result.stderr)
        for (command, shown), actual in zip(block, outputs, strict=False):
            expected_status = _STATUS.search(shown)
            if expected_status is None:
                continue
            actual_status = _STATUS.search(actual.replace("\r\n", "\n"))
            assert actual_status is not None, (command, actual, result.stderr)
            assert actual_status.group(1) == expected_status.group(1), (command, actual)
            expected_code = _CODE.search(shown)
            if expected_code is not None:
                actual_code = _CODE.search(actual)
                assert actual_code is not None and actual_code.group(1) == expected_code.group(1), (
                    command,
                    actual,
                )
            checked += 1
    assert checked >= 25
