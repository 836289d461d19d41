"""End-to-end: Debian's chromium driven by Playwright against a live node. Resolve an
identifier and open its trace graph; log in, create a template, register an identifier,
grant an attribute and see the other enterprise's view change; upload an import file and
watch it finish."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.console.conftest import ENT_A, ENT_B, MODULE, PASSWORDS, ConsoleNode

CELL_LOT = "88.118.3/CL20260111-0001"
TEMPLATE = f"{ENT_A}/META_battery"
BATTERY = f"{ENT_A}/BATTERY-0001"


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORDS[username])
    page.click("form.stack button[type=submit]")
    page.wait_for_url(re.compile(r"/console/admin$"))


def log_out(page: Any) -> None:
    page.click("header form button[type=submit]")
    page.wait_for_url(re.compile(r"/console/$"))


def test_resolve_and_trace(page: Any, console_node: ConsoleNode) -> None:
    base = console_node.base_url
    page.goto(f"{base}/")
    page.fill("#q", f"hdl:{MODULE}")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/console/id/{MODULE}")
    assert "Rated power" in page.inner_text("#attributes")
    page.click("a.lang")  # 中文
    page.wait_for_selector("html[lang='zh-CN']")
    assert "额定功率" in page.inner_text("#attributes")
    page.click("a.button")  # the trace graph
    page.wait_for_selector("svg#trace-graph")
    nodes = page.locator("svg#trace-graph a.node")
    before = nodes.count()
    assert before == 5  # module, cell lot, wafer lot, ingot, polysilicon lot
    page.focus(f'svg a.node[data-handle="{CELL_LOT}"]')  # expand by keyboard
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile("expand="))
    assert page.locator("svg#trace-graph a.node").count() > before  # the other modules
    page.click(f'ul.nodes a[href="/console/id/{CELL_LOT}"]')
    page.wait_for_url(f"{base}/console/id/{CELL_LOT}")
    page.click("a.lang")  # back to English for the other tests
    page.wait_for_selector("html[lang='en']")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{base}/console/id/{MODULE}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    page.set_viewport_size({"width": 1200, "height": 900})


def test_template_registration_and_grants(page: Any, console_node: ConsoleNode) -> None:
    base = console_node.base_url
    log_in(page, base, "ent-a-admin")
    page.click("nav.sub >> text=Templates")
    page.select_option("#prefix", ENT_A)
    page.fill("#version", "battery")
    page.fill("#name_zh", "电池")
    page.fill("#name_en", "Battery")
    rows = page.locator(".attr-row")
    page.click("#add-row")  # the script adds a sixth row
    assert rows.count() == 6
    for n, (key, zh, en, kind) in enumerate(
        [("model", "型号", "Model", "string"), ("capacity", "容量", "Capacity", "number")]
    ):
        row = rows.nth(n)
        row.locator("input[name=key]").fill(key)
        row.locator("input[name=attr_zh]").fill(zh)
        row.locator("input[name=attr_en]").fill(en)
        row.locator("select[name=type]").select_option(kind)
    rows.nth(0).locator("input[name=required]").check()
    page.click("#template-form > button[type=submit]")
    assert TEMPLATE in page.inner_text("p.done")

    page.goto(f"{base}/console/admin/register?template={quote(TEMPLATE)}")
    page.fill("#handle", BATTERY)
    page.fill("#f_model", "LFP-280")
    page.fill("#f_capacity", "280")
    page.click("#register-form button[type=submit]")
    assert BATTERY in page.inner_text("p.done")

    page.goto(f"{base}/")
    page.fill("#q", BATTERY)
    page.click("form.search button")
    page.wait_for_url(f"{base}/console/id/{BATTERY}")
    assert page.locator('#attributes tr[data-type="capacity"]').count() == 1
    assert page.locator("#history tbody tr").count() >= 1  # A administers it

    def set_capacity_grant(users: str) -> None:
        page.goto(f"{base}/console/admin/grants?template={quote(TEMPLATE)}")
        page.select_option("select[name=scope_capacity]", "specified")
        page.fill("textarea[name=users_capacity]", users)
        page.click("#grants-form button[type=submit]")
        page.wait_for_selector("p.done")

    def b_sees_capacity() -> bool:
        log_out(page)
        log_in(page, base, "ent-b-admin")
        page.goto(f"{base}/console/id/{BATTERY}")
        assert page.locator('#attributes tr[data-type="model"]').count() == 1
        seen = page.locator('#attributes tr[data-type="capacity"]').count() == 1
        log_out(page)
        log_in(page, base, "ent-a-admin")
        return bool(seen)

    set_capacity_grant("")
    assert not b_sees_capacity()
    set_capacity_grant(f"300:0.NA/{ENT_B}")
    assert b_sees_capacity()


def test_bulk_import(page: Any, console_node: ConsoleNode, tmp_path: Path) -> None:
    base = console_node.base_url
    rows = [f"{ENT_A}/IMPORT-{n:04d},https://example.com/items/{n}" for n in range(600)]
    upload = tmp_path / "items.csv"
    upload.write_text("handle,1:URL\n" + "\n".join(rows) + "\n", encoding="utf-8")
    log_in(page, base, "ent-a-admin")
    page.click("nav.sub >> text=Bulk import")
    page.set_input_files("#file", str(upload))
    page.click("#import-form button[type=submit]")
    page.wait_for_url(re.compile(r"/console/admin/import/[0-9-]+$"))
    page.wait_for_selector("#import-job[data-done='true']", timeout=30_000)
    assert page.inner_text("#import-phase") == "Finished"
    assert page.inner_text("#import-created") == "600"
    assert page.get_attribute("#import-bar", "value") == "100"
    assert console_node.running.get_handle(f"{ENT_A}/IMPORT-0599") is not None


def test_app_identity_keys_and_state(page: Any, console_node: ConsoleNode, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from idnode.protocol.types.hs_pubkey import PublicKeyData, load_private_key

    base = console_node.base_url
    app = f"{ENT_A}/APP.browser-app"
    log_in(page, base, "ent-a-admin")
    page.click("nav.sub >> text=Apps and keys")
    page.get_by_label("Username", exact=True).fill("browser-app")
    page.get_by_label("Password", exact=True).fill("browser-pass")
    assert page.get_by_label("Make a key pair here (RSA 2048)").is_checked()
    page.click("#app-form button[type=submit]")
    page.wait_for_selector("#private-key")
    assert "never stored" in page.inner_text("main") or "does not keep it" in page.inner_text(
        "main"
    )
    with page.expect_download() as download:
        page.click("#download-key")
    saved = tmp_path / "app-key.pem"
    download.value.save_as(saved)
    private = load_private_key(saved.read_bytes())
    stored = console_node.running.get_handle(app) or ()
    key_300 = next(v for v in stored if v.index == 300)
    assert PublicKeyData.from_bytes(key_300.data).to_public_key() == private.public_key()
    page.goto(f"{base}/console/admin/app?name=browser-app")  # shown once only
    assert page.locator("#private-key").count() == 0

    successor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = successor.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    page.get_by_label("Use my public key (PEM)").check()
    page.get_by_label("Public key (PEM, RSA or DSA)").fill(pem.decode("ascii"))
    page.click("#add-key-form button[type=submit]")
    assert "Key added at index: 301" in page.inner_text("p.done")
    assert page.locator("#app-keys tbody tr").count() == 2
    page.get_by_role("button", name="Revoke 300").click()
    assert "Key revoked at index: 300" in page.inner_text("p.done")
    assert page.locator("#app-keys tbody tr").count() == 1
    page.click("#state-form button[type=submit]")
    assert page.inner_text("#app-state") == "Disabled"
    page.click("#state-form button[type=submit]")
    assert page.inner_text("#app-state") == "Enabled"
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    for path in ("/console/admin/app?name=browser-app", "/console/admin/apps",
                 "/console/admin/registrations"):  # fmt: skip
        page.goto(base + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 392, path
    page.set_viewport_size({"width": 1200, "height": 900})


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement ? document.activeElement.id : ''"))


def _tab_to(page: Any, element_id: str, limit: int = 60) -> list[str]:
    """Press Tab until the element ``element_id`` has the focus; the ids passed on the way."""
    seen = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        seen.append(_focused(page))
        if seen[-1] == element_id:
            return seen
    raise AssertionError(f"Tab never reached #{element_id}: {seen}")


def test_keyboard_only_admin_flow_and_labels(page: Any, console_node: ConsoleNode) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    base = console_node.base_url
    page.goto(f"{base}/console/login")
    _tab_to(page, "username")
    page.keyboard.type("ent-a-admin")
    page.keyboard.press("Tab")
    assert _focused(page) == "password"
    page.keyboard.type(PASSWORDS["ent-a-admin"])
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/admin$"))

    # the sub-navigation by keyboard, then the new app form, in the order it reads
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Apps and keys":
            break
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/console/admin/apps$"))
    _tab_to(page, "app-username")
    page.keyboard.type("kbd-app")
    order = [_focused(page)]
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(_focused(page))
    assert order == ["app-username", "app-password", "app-enterprise", "app-generate",
                     "app-public-key"], order  # fmt: skip
    page.keyboard.press("Shift+Tab")  # back to the radio group: the arrow keys choose
    page.keyboard.press("ArrowDown")
    assert _focused(page) == "app-paste" and page.is_checked("#app-paste")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    page.keyboard.press("Tab")
    page.keyboard.insert_text(pem.decode("ascii"))
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert _focused(page) == "app-password"
    page.keyboard.type("kbd-pass")
    for _ in range(6):  # on to the form's button
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "submit":
            break
    assert page.evaluate("document.activeElement.closest('form').id") == "app-form"
    page.keyboard.press("Enter")
    page.wait_for_selector("#app-info")
    assert "300:88.118.8.1/APP.kbd-app" in page.inner_text("#app-info")

    # every field of every admin form has a label Playwright finds it by
    forms = {
        "/console/admin/apps": ["Username", "Password", "Enterprise",
                                "Make a key pair here (RSA 2048)", "Use my public key (PEM)",
                                "Public key (PEM, RSA or DSA)"],
        "/console/admin/app?name=kbd-app": ["Make a key pair here (RSA 2048)",
                                            "Use my public key (PEM)",
                                            "Public key (PEM, RSA or DSA)"],
        "/console/admin/templates": ["Prefix", "Template name (version) (META_…)",
                                     "Chinese name", "English name", "Key 1", "Chinese name 1",
                                     "English name 1", "Data type 1", "Required 1", "Key 5"],
        f"/console/admin/register?template={quote(TEMPLATE)}": ["Identifier",
                                                                "Link (URL, optional)"],
        f"/console/admin/grants?template={quote(TEMPLATE)}": [
            "Viewers: Model (model)", "Identities (index:handle, one per line): Model (model)"],
        "/console/admin/registrations": ["Prefix", "Template", "Contains"],
        "/console/admin/import": ["CSV or JSON Lines file"],
        "/console/admin": ["Prefix"],
    }  # fmt: skip
    for path, labels in forms.items():
        page.goto(base + path)
        for label in labels:
            found = page.get_by_label(label, exact=True)
            assert found.count() == 1, (path, label, found.count())
            field_id = found.evaluate("el => el.id || el.name")
            assert field_id, (path, label)
