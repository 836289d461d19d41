"""The browser proxy (spec handle-protocol §5.6) over a real demo node store."""

from __future__ import annotations

import email.utils
import re

import pytest

from idnode.http.gs1 import DEFAULT_GS1_RULES, GS1Resolver
from idnode.http.proxy import (
    BrowserProxy,
    normalize_handle_input,
    proxy_openapi_paths,
    proxy_routes,
)
from idnode.jsonvalues import value_to_json
from idnode.protocol.codes import Permission
from idnode.protocol.values import HandleValue, TTLType
from tests.http_proxy.conftest import NOW, PREFIX, ProxyNode, SyncClient, text

PV = f"{PREFIX}/PV-2026-000123"
PV_URL = "https://pv.example.com/modules/PV-2026-000123"
PRIVATE = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)
NOT_FOUND = re.compile("The handle you requested.+cannot be found", re.DOTALL)


def expires(seconds: float) -> str:
    return email.utils.formatdate(NOW + seconds, usegmt=True)


# -- query form --------------------------------------------------------------------------------


def test_root_is_the_query_form(client: SyncClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=UTF-8"
    assert '<form method="get" action="/">' in r.text
    assert 'name="hdl"' in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text


@pytest.mark.parametrize(
    ("typed", "handle"),
    [
        (PV, PV),
        (f"  hdl:{PV} ", PV),
        (f"doi:{PV}", PV),
        (f"info:hdl/{PV}", PV),
        (f"urn:hdl:{PREFIX}:PV-2026-000123", PV),
        (f"https://hdl.handle.net/{PREFIX}/PV%2D2026-000123", PV),
    ],
)
def test_form_input_is_normalised(client: SyncClient, typed: str, handle: str) -> None:
    assert normalize_handle_input(typed) == handle
    r = client.get("/", params={"hdl": typed})
    assert r.status_code == 302
    assert r.headers["location"] == f"/{handle}"


def test_form_redirect_keeps_options_and_escapes(client: SyncClient) -> None:
    r = client.get("/?hdl=88.118.8%2Fa%3Fb+c%25&noredirect=on&auth=on")
    assert r.status_code == 302
    assert r.headers["location"] == "/88.118.8/a%3Fb%20c%25?noredirect=on&auth=on"


def test_form_post_redirects(client: SyncClient) -> None:
    r = client.request("POST", "/", data={"hdl": f"hdl:{PV}", "noredirect": "on"})
    assert r.status_code == 303
    assert r.headers["location"] == f"/{PV}?noredirect=on"


@pytest.mark.parametrize("query", ["hdl=", "hdl=%20%20", "hdl=hdl:"])
def test_empty_handle_is_400(client: SyncClient, query: str) -> None:
    r = client.get(f"/?{query}")
    assert r.status_code == 400
    assert "Empty handle invalid" in r.text
    r = client.json(f"/?{query}")
    assert r.status_code == 400
    assert r.json() == {"responseCode": 102, "message": "Empty handle invalid"}


# -- redirect ----------------------------------------------------------------------------------


def test_redirects_to_the_url_value(client: SyncClient) -> None:
    r = client.get(f"/{PV}")
    assert r.status_code == 302
    assert r.headers["location"] == PV_URL
    assert r.headers["expires"] == expires(86400)
    assert f'<a href="{PV_URL}">' in r.text
    assert r.headers["vary"] == "Accept"


def test_browser_accept_header_redirects(client: SyncClient) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert client.get(f"/{PV}", headers={"accept": accept}).status_code == 302
    html_first = "text/html, application/json;q=0.9"
    assert client.get(f"/{PV}", headers={"accept": html_first}).status_code == 302


def test_urlappend_is_appended_verbatim(client: SyncClient) -> None:
    r = client.get(f"/{PV}?urlappend=%2Fdatasheet%3Fa%3D1+2")
    assert r.headers["location"] == PV_URL + "/datasheet?a=1+2"


def test_auth_is_accepted(client: SyncClient) -> None:
    r = client.get(f"/{PV}?auth")
    assert r.status_code == 302
    assert r.headers["location"] == PV_URL


def test_expires_follows_ttls(proxy_node: ProxyNode, client: SyncClient) -> None:
    h = f"{PREFIX}/TTL-SHORT"
    proxy_node.put(h, [text(1, "URL", "https://a.example/", ttl=60)])
    assert client.get(f"/{h}").headers["expires"] == expires(60)
    proxy_node.put(h, [text(1, "URL", "https://a.example/", ttl=10**7)])
    assert client.get(f"/{h}").headers["expires"] == expires(172800)
    absolute = int(NOW) + 3600
    proxy_node.put(
        h, [text(1, "URL", "https://a.example/", ttl=absolute, ttl_type=TTLType.ABSOLUTE)]
    )
    assert client.get(f"/{h}").headers["expires"] == expires(3600)


def test_exact_url_type_before_subtypes(proxy_node: ProxyNode, client: SyncClient) -> None:
    h = f"{PREFIX}/URL-ORDER"
    proxy_node.put(
        h,
        [
            text(1, "URL.ALT", "https://alt.example/"),
            text(2, "url", "https://main.example/"),
        ],
    )
    assert client.get(f"/{h}").headers["location"] == "https://main.example/"
    proxy_node.put(h, [text(1, "DESC", "x"), text(2, "URL.ALT", "https://alt.example/")])
    assert client.get(f"/{h}").headers["location"] == "https://alt.example/"


def test_location_is_ascii_and_cannot_inject_headers(
    proxy_node: ProxyNode, client: SyncClient
) -> None:
    h = f"{PREFIX}/IRI"
    proxy_node.put(h, [text(1, "URL", "https://exämple.com/päth x\r\nSet-Cookie: a=b")])
    r = client.get(f"/{h}")
    assert r.status_code == 302
    assert r.headers["location"] == (
        "https://xn--exmple-cua.com/p%C3%A4th%20x%0D%0ASet-Cookie:%20a=b"
    )
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "/relative"]
)
def test_unsafe_urls_are_never_redirected_or_linked(
    proxy_node: ProxyNode, client: SyncClient, url: str
) -> None:
    h = f"{PREFIX}/UNSAFE"
    proxy_node.put(h, [text(1, "URL", url)])
    r = client.get(f"/{h}")
    assert r.status_code == 200
    assert "location" not in r.headers
    assert '<a href="javascript' not in r.text and '<a href="data' not in r.text
    assert "<script>" not in r.text


# -- value listing -----------------------------------------------------------------------------


def test_noredirect_lists_public_values(client: SyncClient) -> None:
    for query in ("noredirect", "noredirect=false", "action=showvalues"):
        r = client.get(f"/{PV}?{query}")
        assert r.status_code == 200, query
        assert r.headers["content-type"] == "text/html; charset=UTF-8"
        assert "Monocrystalline PV module, 550 W, 144 half-cut cells" in r.text
        assert f'<a href="{PV_URL}">{PV_URL}</a>' in r.text
        assert "CELL-LOT-2026-0419" in r.text
        assert "INTERNAL.COST" not in r.text and "612.40" not in r.text
        assert 'administrator <a href="/0.NA/88.118.8?noredirect">200:0.NA/88.118.8</a>' in r.text
        assert "add handle" in r.text


def test_prefix_record_is_summarised(client: SyncClient) -> None:
    r = client.get(f"/0.NA/{PREFIX}?noredirect")
    assert r.status_code == 200
    assert "site serial 1 (primary)" in r.text
    assert "TCP 0 (query/admin)" in r.text
    assert '<a href="/0.NA/88.118.8?noredirect">300:0.NA/88.118.8</a>' in r.text
    assert "RSA_PUB_KEY, 2048 bits" in r.text
    assert "HS_SECKEY" not in r.text


def test_no_url_value_gives_the_listing(proxy_node: ProxyNode, client: SyncClient) -> None:
    h = f"{PREFIX}/NO-URL"
    proxy_node.put(h, [text(1, "EMAIL", "someone@example.com"), HandleValue(2, "BIN", b"\x00\xff")])
    r = client.get(f"/{h}")
    assert r.status_code == 200
    assert "someone@example.com" in r.text
    assert "binary, 2 bytes: <code>AP8=</code>" in r.text


def test_stored_data_is_escaped(proxy_node: ProxyNode, client: SyncClient) -> None:
    h = f"{PREFIX}/<script>alert('h')</script>"
    proxy_node.put(
        h,
        [
            text(1, "URL", 'https://x.example/"><script>alert(1)</script>'),
            text(2, "DESC", "<script>alert(2)</script> & <b>bold</b>"),
            text(3, "<img src=x onerror=alert(3)>", "<iframe src=javascript:alert(4)>"),
            text(4, "HS_ALIAS", '"><script>alert(5)</script>'),
        ],
    )
    path = "/88.118.8/%3Cscript%3Ealert('h')%3C%2Fscript%3E"
    for r in (
        client.get(f"{path}?noredirect&ignore_aliases"),
        client.get(f"{path}?ignore_aliases"),
        client.get("/88.118.8/%3Cscript%3Emissing"),
    ):
        assert r.status_code in (200, 302, 404)
        body = r.text
        assert "<script" not in body and "<img" not in body and "<iframe" not in body
        assert "<b>bold" not in body
    listing = client.get(f"{path}?noredirect&ignore_aliases").text
    assert "&lt;script&gt;alert(2)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in listing
    assert "&lt;img src=x onerror=alert(3)&gt;" in listing
    assert 'href="https://x.example/%22%3E%3Cscript%3Ealert(1)%3C/script%3E"' in listing
    redirect = client.get(f"{path}?ignore_aliases")
    assert (
        redirect.headers["location"] == "https://x.example/%22%3E%3Cscript%3Ealert(1)%3C/script%3E"
    )


# -- JSON --------------------------------------------------------------------------------------


def test_json_record_is_the_api_record(proxy_node: ProxyNode, client: SyncClient) -> None:
    r = client.json(f"/{PV}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    stored = proxy_node.loop.run_until_complete(proxy_node.store.get_handle(PV))
    assert stored is not None
    expected = [value_to_json(v) for v in stored if v.public_read]
    assert r.json() == {"responseCode": 1, "handle": PV, "values": expected}
    assert all(v["index"] != 5 for v in r.json()["values"])


def test_json_negotiation(client: SyncClient) -> None:
    for accept in (
        "application/json",
        "application/json, */*",
        "text/html;q=0.5, application/json",
    ):
        r = client.get(f"/{PV}", headers={"accept": accept})
        assert r.status_code == 200 and r.json()["responseCode"] == 1, accept
    pretty = client.json(f"/{PV}?pretty")
    assert pretty.text.startswith('{\n  "responseCode": 1')


def test_filters(client: SyncClient) -> None:
    values = client.json(f"/{PV}?type=DESC&index=3").json()["values"]
    assert [(v["index"], v["type"]) for v in values] == [(2, "DESC"), (3, "EMAIL")]
    values = client.json(f"/{PV}?index=4&index=bad&index=99999999999").json()["values"]
    assert [v["index"] for v in values] == [4]
    r = client.get(f"/{PV}?type=DESC")
    assert r.status_code == 200 and "Monocrystalline" in r.text and PV_URL not in r.text
    assert client.get(f"/{PV}?type=URL").headers["location"] == PV_URL


def test_private_values_are_never_shown(client: SyncClient) -> None:
    r = client.json(f"/{PV}?index=5")
    assert r.status_code == 200
    assert r.json() == {"responseCode": 200, "handle": PV}
    r = client.get(f"/{PV}?type=INTERNAL.COST")
    assert r.status_code == 200
    assert "No values found matching the request" in r.text and "612.40" not in r.text


# -- errors ------------------------------------------------------------------------------------


def test_unknown_handle_is_404(client: SyncClient) -> None:
    r = client.get(f"/{PREFIX}/NOPE")
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=UTF-8"
    assert NOT_FOUND.search(r.text)
    assert f"{PREFIX}/NOPE" in r.text
    r = client.json(f"/{PREFIX}/NOPE")
    assert r.status_code == 404
    body = r.json()
    assert body["responseCode"] == 100 and body["handle"] == f"{PREFIX}/NOPE"


def test_prefix_not_served_here(client: SyncClient) -> None:
    r = client.get("/99.999/x")
    assert r.status_code == 400
    assert "That prefix doesn&#x27;t live here" in r.text
    r = client.json("/99.999/x")
    assert r.status_code == 400
    assert r.json()["responseCode"] == 301


def test_path_is_taken_verbatim(proxy_node: ProxyNode, client: SyncClient) -> None:
    assert client.json(f"/hdl:{PV}").json()["responseCode"] == 301
    odd = f"{PREFIX}/a b%20c+d"
    proxy_node.put(odd, [text(1, "URL", "https://odd.example/")])
    r = client.get("/88.118.8/a%20b%2520c+d")
    assert r.headers["location"] == "https://odd.example/"
    assert client.json("/88.118.8/a%20b%20c+d").status_code == 404
    slash = f"{PREFIX}/x/y"
    proxy_node.put(slash, [text(1, "URL", "https://slash.example/")])
    assert client.get("/88.118.8/x%2Fy").headers["location"] == "https://slash.example/"


def test_invalid_utf8_in_path_is_400(client: SyncClient) -> None:
    r = client.json("/88.118.8/%FF")
    assert r.status_code == 400 and r.json()["responseCode"] == 102


def test_head_and_methods(client: SyncClient) -> None:
    r = client.request("HEAD", f"/{PV}")
    assert r.status_code == 302 and r.headers["location"] == PV_URL and r.content == b""
    r = client.request("HEAD", "/")
    assert r.status_code == 200 and r.content == b""
    r = client.request("PUT", f"/{PV}", content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    r = client.request("OPTIONS", f"/{PV}")
    assert r.status_code == 204 and "GET" in r.headers["allow"]


# -- aliases -----------------------------------------------------------------------------------


def test_alias_is_followed(proxy_node: ProxyNode, client: SyncClient) -> None:
    a, b = f"{PREFIX}/ALIAS-A", f"{PREFIX}/ALIAS-B"
    proxy_node.put(a, [text(1, "HS_ALIAS", b, ttl=120)])
    proxy_node.put(b, [text(1, "URL", "https://b.example/", ttl=600), text(2, "DESC", "B")])
    r = client.get(f"/{a}")
    assert r.status_code == 302
    assert r.headers["location"] == "https://b.example/"
    assert r.headers["expires"] == expires(120)
    assert client.get(f"/{a}?type=URL").headers["location"] == "https://b.example/"
    page = client.get(f"/{a}?noredirect").text
    assert "Followed aliases: 88.118.8/ALIAS-A → 88.118.8/ALIAS-B" in page
    record = client.json(f"/{a}").json()
    assert record["handle"] == b and [v["type"] for v in record["values"]] == ["URL", "DESC"]


def test_ignore_aliases(proxy_node: ProxyNode, client: SyncClient) -> None:
    a, b = f"{PREFIX}/IGN-A", f"{PREFIX}/IGN-B"
    proxy_node.put(a, [text(1, "HS_ALIAS", b)])
    proxy_node.put(b, [text(1, "URL", "https://b.example/")])
    r = client.get(f"/{a}?ignore_aliases")
    assert r.status_code == 200
    assert 'alias of <a href="/88.118.8/IGN-B?noredirect">88.118.8/IGN-B</a>' in r.text
    assert client.json(f"/{a}?ignore_aliases").json()["values"][0]["type"] == "HS_ALIAS"


def test_alias_loop_and_long_chain(proxy_node: ProxyNode, client: SyncClient) -> None:
    a, b = f"{PREFIX}/LOOP-A", f"{PREFIX}/LOOP-B"
    proxy_node.put(a, [text(1, "HS_ALIAS", b)])
    proxy_node.put(b, [text(1, "HS_ALIAS", a.lower())])
    r = client.get(f"/{a}")
    assert r.status_code == 404 and "alias loop" in r.text
    body = client.json(f"/{a}").json()
    assert body["responseCode"] == 6 and body["handle"] == a
    proxy_node.put(f"{PREFIX}/SELF", [text(1, "HS_ALIAS", f"{PREFIX}/SELF")])
    assert client.json(f"/{PREFIX}/SELF").status_code == 404
    for i in range(22):
        proxy_node.put(f"{PREFIX}/CHAIN-{i}", [text(1, "HS_ALIAS", f"{PREFIX}/CHAIN-{i + 1}")])
    proxy_node.put(f"{PREFIX}/CHAIN-22", [text(1, "URL", "https://end.example/")])
    r = client.json(f"/{PREFIX}/CHAIN-0")
    assert r.status_code == 404 and "longer than 20" in r.json()["message"]
    assert client.get(f"/{PREFIX}/CHAIN-2").headers["location"] == "https://end.example/"


def test_alias_to_missing_handle(proxy_node: ProxyNode, client: SyncClient) -> None:
    a = f"{PREFIX}/DANGLING"
    proxy_node.put(a, [text(1, "HS_ALIAS", f"{PREFIX}/GONE")])
    r = client.get(f"/{a}")
    assert r.status_code == 404 and NOT_FOUND.search(r.text)
    assert "GONE" in client.json(f"/{a}").json()["message"]


def test_private_alias_is_not_followed(proxy_node: ProxyNode, client: SyncClient) -> None:
    a = f"{PREFIX}/PRIVATE-ALIAS"
    proxy_node.put(
        a,
        [text(1, "HS_ALIAS", PV, permissions=PRIVATE), text(2, "URL", "https://own.example/")],
    )
    assert client.get(f"/{a}").headers["location"] == "https://own.example/"


# -- mounting ----------------------------------------------------------------------------------


def test_routes_and_openapi(proxy_node: ProxyNode) -> None:
    routes = proxy_routes(proxy_node.dispatcher)
    assert [prefix for prefix, _ in routes] == ["/01", ""]
    assert isinstance(routes[0][1], GS1Resolver) and isinstance(routes[1][1], BrowserProxy)
    assert [p for p, _ in proxy_routes(proxy_node.dispatcher, ())] == [""]
    paths = proxy_openapi_paths(DEFAULT_GS1_RULES)
    assert {"/", "/{handle}", "/01/{gtin}", "/01/{gtin}/10/{lot}/21/{serial}"} <= set(paths)
    assert len([p for p in paths if p.startswith("/01/")]) == 8
    assert "get" in paths["/{handle}"] and "head" in paths["/{handle}"]
