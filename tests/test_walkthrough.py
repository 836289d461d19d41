"""The README's walkthrough (between ``<!-- walkthrough:start -->`` and ``<!-- walkthrough:end
-->``), run as written with bash against a demo topology on free ports: its CLI commands and
HTTP calls, in order, and what it says each prints (``# expect:`` lines, found in order in
the output)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.test_topology import topology
from tests.topology import HOST, Topology

__all__ = ["topology"]  # the module-scoped topology fixture of tests/test_topology.py

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(
    r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", re.DOTALL
)


def walkthrough(api: str, native: str, node_dir: Path) -> tuple[str, list[str]]:
    """The walkthrough's script with the node's addresses and directory put in, and its
    expectations in order."""
    match = _BLOCK.search(README.read_text(encoding="utf-8"))
    assert match is not None, "README.md has no walkthrough block"
    script = match.group(1)
    settings = {"N": str(node_dir), "API": api, "NATIVE": native}
    for name, value in settings.items():
        script, count = re.subn(rf"(?m)^{name}=\S+", f"{name}={value}", script)
        assert count == 1, f"the walkthrough sets {name} once"
    expected = re.findall(r"(?m)^# expect: (.*)$", script)
    return "set -euo pipefail\n" + script, expected


def test_the_readme_walkthrough_runs_as_written(topology: Topology, tmp_path: Path) -> None:
    spec = topology.specs["enterprise-a"]
    script, expected = walkthrough(
        f"http://{HOST}:{spec.http_port}", f"{HOST}:{spec.port}", spec.config_path.parent
    )
    assert len(expected) >= 10
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    position = 0
    for text in expected:
        found = done.stdout.find(text, position)
        assert found >= 0, f"expected {text!r} after position {position} in:\n{done.stdout}"
        position = found + len(text)
