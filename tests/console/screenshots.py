"""Take the console screenshots of docs/ against the demo topology::

    .venv/bin/python -m tests.console.screenshots [OUTPUT_DIR]   # default: docs/

It creates the demo (``idnode demo topology``, :mod:`idnode.demo`) in a temporary directory
with free ports on 127.0.0.1, starts its nodes in a background thread, and photographs the
enterprise node's console with Debian's chromium (``/usr/bin/chromium``, as the browser
tests launch it): ``console-resolve.png``, a PV module's page as a phone shows it, and
``console-trace.png``, the module's trace graph reaching the wafer maker on the secondary
node. Chinese text needs a CJK font (Debian: ``fonts-wqy-zenhei`` or ``fonts-noto-cjk``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from idnode.demo import pv_module
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.console.demo import running_demo


def main(output: Path) -> None:
    from playwright.sync_api import sync_playwright

    module = pv_module()
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_demo(Path(tmp) / "demo") as base,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            locale="zh-CN",
            viewport={"width": 430, "height": 900},
            device_scale_factor=2,
        )
        page = context.new_page()
        page.goto(f"{base}/")
        page.fill("#q", f"hdl:{module}")
        page.keyboard.press("Enter")
        page.wait_for_selector("#attributes")
        page.screenshot(path=str(output / "console-resolve.png"), full_page=False)
        page.set_viewport_size({"width": 1400, "height": 560})
        page.goto(f"{base}/console/trace/{quote(module)}?direction=up&lang=en")
        page.wait_for_selector("svg#trace-graph")
        page.screenshot(path=str(output / "console-trace.png"), full_page=False)
        context.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
