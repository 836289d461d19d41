"""The console's pages without a browser (httpx over real HTTP): resolve, identifier pages,
the trace graph's SVG, bad input, the login and CSRF rules, the proxy left working."""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import httpx
import pytest

from tests.console.conftest import ENT_A, ENT_B, MODULE, PASSWORDS, ConsoleNode

CELL_LOT = "88.118.3/CL20260111-0001"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(http: httpx.Client, username: str) -> None:
    r = http.get("/console/login")
    r = http.post("/console/login", data={"username": username, "password": PASSWORDS[username],
                                          "csrf": csrf_of(r.text), "next": ""})  # fmt: skip
    assert r.status_code == 303, r.text
    assert "idnode_session" in http.cookies


def test_home_is_the_console_and_the_proxy_still_answers(http: httpx.Client) -> None:
    r = http.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert 'action="/console/resolve"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    r = http.get("/", params={"hdl": f"hdl:{MODULE}"})
    assert r.status_code == 302 and r.headers["location"] == f"/{MODULE}"
    r = http.get(f"/{MODULE}", params={"noredirect": ""})
    assert r.status_code == 200 and MODULE in r.text
    r = http.get("/console/static/console.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert http.get("/console/static/../app.py").status_code == 404


@pytest.mark.parametrize(
    "typed", [MODULE, f"hdl:{MODULE}", f"doi:{MODULE}", f"http://hdl.handle.net/{MODULE}"]
)
def test_resolve_names(http: httpx.Client, typed: str) -> None:
    r = http.get("/console/resolve", params={"q": typed})
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/id/{MODULE}"


@pytest.mark.parametrize(
    "typed",
    [
        "(01)06912345678902(21)SN-0001",
        "]d20106912345678902",
        "https://id.example.com/01/06912345678902",
    ],
)
def test_resolve_gs1(http: httpx.Client, typed: str) -> None:
    r = http.get("/console/resolve", params={"q": typed})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/console/id/88.118.8/MD-UDI-06912345678902")


def test_bad_and_unknown_input(http: httpx.Client) -> None:
    r = http.get("/console/resolve", params={"q": "(01)06912345678903"})  # bad check digit
    assert r.status_code == 400 and 'role="alert"' in r.text
    r = http.get("/console/resolve", params={"q": "   "})
    assert r.status_code == 400
    r = http.get("/console/id/88.118.8/NO-SUCH-THING")
    assert r.status_code == 404
    r = http.get("/console/id/77.77/ELSEWHERE")  # not served here, no resolver
    assert r.status_code in (400, 404) and "<h1>" in r.text
    r = http.get("/console/trace/88.118.8/NO-SUCH-THING")
    assert r.status_code == 404
    r = http.get(f"/console/trace/{MODULE}", params={"depth": "x"})
    assert r.status_code == 400
    r = http.get("/console/id/88.118.8/%FF")
    assert r.status_code == 400
    assert http.get("/console/nowhere").status_code == 404
    for path in ("/console/id/", "/console/id/%00", "/console/id/a%2Fb", "/console/trace/x",
                 "/console/trace/%2F", "/console/admin/import/zzz", "/console/static/x.css",
                 "/console/resolve?q=%FF", "/console/resolve?q=(01)", "/console/resolve?q=]d2",
                 "/console/trace/88.118.8/PV-2026-000001?depth=-5&expand=%00"):  # fmt: skip
        r = http.get(path)
        assert r.status_code < 500, (path, r.status_code)
    assert http.request("PUT", "/console/login").status_code == 405


def test_identifier_page_labels_in_both_languages(http: httpx.Client) -> None:
    r = http.get(f"/console/id/{MODULE}", params={"lang": "en"})
    assert r.status_code == 200
    assert "Rated power" in r.text or "Pmax" in r.text, r.text
    assert "idnode_lang=en" in r.headers["set-cookie"]
    r = http.get(f"/console/id/{MODULE}", params={"lang": "zh"})
    assert 'lang="zh-CN"' in r.text and "属性" in r.text
    assert f'href="/console/id/{CELL_LOT}"' in r.text  # the reference attribute links upstream
    assert "仅对该标识的管理员可见" in r.text  # anonymous: no history


def test_trace_graph_svg(http: httpx.Client) -> None:
    r = http.get(f"/console/trace/{quote(MODULE)}", params={"direction": "up"})
    assert r.status_code == 200
    svg = r.text[r.text.index("<svg") : r.text.index("</svg>")]
    for handle in (MODULE, CELL_LOT, "88.118.1/PS20260105-0001"):
        assert f'data-handle="{handle}"' in svg
    assert svg.count('class="edge"') == 4
    r = http.get(f"/console/trace/{quote(MODULE)}",
                 params={"direction": "up", "depth": "1", "expand": CELL_LOT})  # fmt: skip
    assert r.text.count('class="node') > 2  # the cell lot's neighbours were added


def test_csrf_and_login_rules(http: httpx.Client) -> None:
    r = http.post("/console/login", data={"username": "root", "password": PASSWORDS["root"]})
    assert r.status_code == 403
    r = http.get("/console/login")
    token = csrf_of(r.text)
    r = http.post("/console/login", data={"username": "root", "password": "wrong", "csrf": token})
    assert r.status_code == 403 and "idnode_session" not in http.cookies
    login(http, "ent-a-admin")
    cookie = next(c for c in http.cookies.jar if c.name == "idnode_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    r = http.post("/console/admin/templates", data={"prefix": ENT_A, "version": "x"})
    assert r.status_code == 403
    r = http.post("/console/admin/templates", data={"prefix": ENT_A, "version": "x", "csrf": "0"})
    assert r.status_code == 403


def test_admin_needs_a_login(http: httpx.Client) -> None:
    r = http.get("/console/admin/templates")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next=")
    login(http, "ent-b-admin")
    assert http.get("/console/dashboard").status_code == 403
    r = http.get("/console/admin/registrations", params={"prefix": ENT_A})
    assert r.status_code == 403  # another enterprise's prefix


def test_dashboard(http: httpx.Client, console_node: ConsoleNode) -> None:
    login(http, "root")
    r = http.get("/console/dashboard")
    assert r.status_code == 200
    assert 'id="chart-registrations"' in r.text and 'id="chart-resolutions"' in r.text
    assert "<td>88.118.8</td>" in r.text  # top prefixes: the PV chain's registrations
    r = http.get("/console/dashboard", params={"prefix": "88.118.1"})
    assert r.status_code == 200 and "Total 1<" in r.text  # one polysilicon lot registered
    token = csrf_of(http.get("/console/admin").text)
    r = http.post("/console/admin/prefixes",
                  data={"csrf": token, "action": "apply", "prefix": "88.118.8.3",
                        "enterprise": "ent-a"})  # fmt: skip
    assert r.status_code == 303
    r = http.post("/console/admin/prefixes",
                  data={"csrf": token, "action": "approve", "prefix": "88.118.8.3"})  # fmt: skip
    assert r.status_code == 303
    assert console_node.running.is_homed("88.118.8.3")
    r = http.post("/console/admin/prefixes",
                  data={"csrf": token, "action": "resume", "prefix": "88.118.8.3"})  # fmt: skip
    assert r.status_code == 400 and "cannot resume" in r.text
    r = http.get("/console/admin/registrations", params={"prefix": "88.118.8", "q": "PV-2026"})
    assert r.status_code == 200 and "/console/id/88.118.8/PV-2026-000001" in r.text
    token = csrf_of(http.get("/console/admin/apps").text)
    app = {"csrf": token, "username": "a-app", "password": "app-pw", "enterprise": "ent-a"}
    r = http.post("/console/admin/apps", data=app)
    assert r.status_code == 200 and f"300:{ENT_A}/APP.a-app" in r.text
    r = http.post("/console/admin/apps", data=app)  # the name is taken
    assert r.status_code == 400 and "taken" in r.text


def test_template_editor_registration_errors_and_import_scope(http: httpx.Client) -> None:
    login(http, "ent-a-admin")
    token = csrf_of(http.get("/console/admin/templates").text)
    form = {"csrf": token, "prefix": ENT_A, "version": "sensor", "name_zh": "传感器",
            "name_en": "Sensor", "key": ["serial", ""], "attr_zh": ["序列号", ""],
            "attr_en": ["Serial", ""], "type": ["string", "string"], "required": ["0"]}  # fmt: skip
    r = http.post("/console/admin/templates", data=form)
    assert r.status_code == 200 and f"{ENT_A}/META_sensor" in r.text
    r = http.post("/console/admin/templates", data=form)  # exists already
    assert r.status_code == 400 and 'class="problem"' in r.text
    edit = {"csrf": token, "handle": f"{ENT_A}/META_sensor", "key": ["rangeC"],
            "attr_zh": ["量程"], "attr_en": ["Range"], "type": ["number"]}  # fmt: skip
    r = http.post("/console/admin/template", data=edit)
    assert r.status_code == 200 and "version 2, published" in r.text and "rangeC" in r.text
    reg = {"csrf": token, "template": f"{ENT_A}/META_sensor", "handle": f"{ENT_A}/S-1",
           "f_serial": "", "f_rangeC": "not a number"}  # fmt: skip
    r = http.post("/console/admin/register", data=reg)
    assert r.status_code == 400
    assert "Serial:" in r.text and "Range:" in r.text  # per-field errors with the labels
    r = http.post("/console/admin/register", data={**reg, "f_serial": "S-1", "f_rangeC": "85"})
    assert r.status_code == 200 and f"/console/id/{ENT_A}/S-1" in r.text
    r = http.post("/console/admin/template", data={**edit, "handle": "88.118.8/META_PV_MODULE"})
    assert r.status_code == 403  # not one of the enterprise's prefixes

    # the serial hidden from everyone but administrators, then shown to B for S-1 only
    grants = {"csrf": token, "template": f"{ENT_A}/META_sensor", "scope_serial": "specified",
              "users_serial": "", "scope_rangeC": "", "users_rangeC": ""}  # fmt: skip
    assert http.post("/console/admin/grants", data=grants).status_code == 200
    with httpx.Client(base_url=str(http.base_url), timeout=10.0) as b:
        login(b, "ent-b-admin")
        assert 'data-type="serial"' not in b.get(f"/console/id/{ENT_A}/S-1").text
        assert 'id="identifier-grant-form"' not in b.get(f"/console/id/{ENT_A}/S-1").text
        page = http.get(f"/console/id/{ENT_A}/S-1").text
        assert 'data-type="serial"' in page and 'id="identifier-grant-form"' in page
        r = http.post("/console/admin/identifier-grant",
                      data={"csrf": token, "handle": f"{ENT_A}/S-1", "scope": "specified",
                            "readers": f"300:0.NA/{ENT_B}"})  # fmt: skip
        assert r.status_code == 200 and f"300:0.NA/{ENT_B}</textarea>" in r.text
        assert 'data-type="serial"' in b.get(f"/console/id/{ENT_A}/S-1").text
        r = b.post("/console/admin/identifier-grant",
                   data={"csrf": csrf_of(b.get("/console/admin").text), "handle": f"{ENT_A}/S-1",
                         "scope": "public", "readers": ""})  # fmt: skip
        assert r.status_code == 400  # B does not administer it

    csv = f"handle,1:URL\n{ENT_A}/IMP-OK,https://example.com/ok\n88.118.8/IMP-NOT-MINE,https://x.example\n"
    r = http.post("/console/admin/import", data={"csrf": token},
                  files={"file": ("rows.csv", csv.encode(), "text/csv")})  # fmt: skip
    assert r.status_code == 303
    status_url = r.headers["location"] + "/status"
    for _ in range(100):
        status = http.get(status_url).json()
        if status["done"]:
            break
        time.sleep(0.05)
    assert status["done"] and (status["created"], status["failed"]) == (1, 1), status
    page = http.get(r.headers["location"]).text
    assert "88.118.8/IMP-NOT-MINE" in page  # listed as refused
    with httpx.Client(base_url=str(http.base_url), timeout=10.0) as other:
        login(other, "ent-b-admin")
        assert other.get(status_url).status_code == 404  # another account's import


def test_registrations_filtered_by_template_keep_paging(http: httpx.Client) -> None:
    login(http, "root")
    module = "88.118.8/META_PV_MODULE"
    r = http.get("/console/admin/registrations", params={"prefix": "88.118.8"})
    everything = int(re.search(r"<p>(\d+) identifiers</p>", r.text).group(1))  # type: ignore[union-attr]
    assert f'<option value="{module}"' in r.text  # the filter offers the templates
    r = http.get("/console/admin/registrations", params={"prefix": "88.118.8", "template": module})
    assert r.status_code == 200 and "<p>96 identifiers</p>" in r.text and everything > 96
    assert f'<option value="{module}" selected>' in r.text
    assert "Page 1 / 5" in r.text
    following = re.search(r'href="([^"]+)" rel="next"', r.text)
    assert following and "template=88.118.8%2FMETA_PV_MODULE" in following.group(1)
    r = http.get(following.group(1).replace("&amp;", "&"))
    assert "Page 2 / 5" in r.text and r.text.count("/console/id/88.118.8/PV-") == 20
    r = http.get("/console/admin/registrations",
                 params={"prefix": "88.118.8", "template": module, "page": "5"})  # fmt: skip
    assert r.text.count("/console/id/88.118.8/PV-") == 16  # 96 = 4 * 20 + 16
    r = http.get("/console/admin/registrations",
                 params={"prefix": "88.118.2", "template": "88.118.8/META_PV_INGOT"})  # fmt: skip
    assert "<p>2 identifiers</p>" in r.text
    r = http.get("/console/admin/registrations",
                 params={"prefix": "88.118.8", "template": module, "q": "000001"})  # fmt: skip
    assert "/console/id/88.118.8/PV-2026-000001" in r.text
    r = http.get("/console/admin/registrations",
                 params={"prefix": "88.118.8", "template": "88.118.8/NO_SUCH"})  # fmt: skip
    assert r.status_code == 200 and "<p>0 identifiers</p>" in r.text


def test_an_import_unknown_to_this_process_says_so(http: httpx.Client) -> None:
    login(http, "ent-a-admin")
    r = http.get("/console/admin/import/1700000000-1")
    assert r.status_code == 404 and "does not know this import" in r.text
    r = http.get("/console/admin/import/1700000000-4194000-1")  # another worker process
    assert "started by process, this process: 4194000," in r.text
    assert r.status_code == 404 and "does not know this import" in r.text
    r = http.get("/console/admin/import/1700000000-1/status")
    assert r.status_code == 404 and r.json()["known"] is False
    assert "another worker process" in r.json()["message"]
