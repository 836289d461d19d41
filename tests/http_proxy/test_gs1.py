"""GS1 Digital Link: the pure syntax functions, the rule, and the resolver over a real store
(spec industrial-identifier-system §6)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.http.gs1 import (
    DEFAULT_GS1_RULES,
    GS1Link,
    GS1Rule,
    demo_gs1_rules,
    link_type_for,
    links_of,
)
from idnode.http.gs1_syntax import (
    DigitalLink,
    InvalidDigitalLink,
    check_digit,
    has_valid_check_digit,
    normalize_gtin,
    parse_digital_link,
    validate_value,
)
from idnode.protocol.codes import Permission
from tests.http_proxy.conftest import PREFIX, ProxyNode, SyncClient, text

GTIN = "06912345678902"
MD = f"{PREFIX}/MD-UDI-{GTIN}"
PRIVATE = int(Permission.ADMIN_READ | Permission.ADMIN_WRITE)
VOC = "https://gs1.org/voc/"

# -- check digits ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    ["4006381333931", "5901234123457", "036000291452", "96385074", "09506000134352", GTIN],
)
def test_known_valid_check_digits(number: str) -> None:
    assert has_valid_check_digit(number)
    assert check_digit(number[:-1]) == int(number[-1])


@given(st.text("0123456789", min_size=1, max_size=17), st.integers(1, 9))
def test_check_digit_detects_any_single_digit_change(body: str, delta: int) -> None:
    good = body + str(check_digit(body))
    assert has_valid_check_digit(good)
    bad = good[:-1] + str((int(good[-1]) + delta) % 10)
    assert not has_valid_check_digit(bad)


def test_check_digit_rejects_non_digits() -> None:
    assert not has_valid_check_digit("12a4")
    assert not has_valid_check_digit("٣٣")  # non-ASCII digits
    with pytest.raises(ValueError):
        check_digit("")


# -- GTIN and values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gtin", "gtin14"),
    [
        ("96385074", "00000096385074"),
        ("036000291452", "00036000291452"),
        ("5901234123457", "05901234123457"),
        ("09506000134352", "09506000134352"),
    ],
)
def test_gtins_are_padded_to_14(gtin: str, gtin14: str) -> None:
    assert normalize_gtin(gtin) == gtin14


@pytest.mark.parametrize(
    ("gtin", "reason"),
    [
        ("06912345678901", "wrong check digit (expected 2)"),
        ("123456789", "8, 12, 13 or 14 digits"),
        ("095060001343521", "8, 12, 13 or 14 digits"),
        ("0950600013435X", "8, 12, 13 or 14 digits"),
        ("", "8, 12, 13 or 14 digits"),
    ],
)
def test_bad_gtins(gtin: str, reason: str) -> None:
    with pytest.raises(InvalidDigitalLink, match=reason.replace("(", r"\(").replace(")", r"\)")):
        normalize_gtin(gtin)


@pytest.mark.parametrize(
    ("ai", "value", "ok"),
    [
        ("00", "106141411234567897", True),
        ("00", "106141411234567898", False),
        ("00", "000000000000000017", True),
        ("414", "5901234123457", True),
        ("414", "5901234123458", False),
        ("8004", "0950600013430000001", True),
        ("8004", "A" * 31, False),
        ("8004", "has space", False),
        ("8003", "05901234123457SER-1", True),
        ("8003", "15901234123457", False),
        ("253", "5901234123457DOC/1", True),
        ("10", "LOT-2026/A", True),
        ("10", "A" * 21, False),
        ("10", "lot#1", False),
        ("21", "é", False),
        ("254", "EXT1", True),
    ],
)
def test_value_syntax(ai: str, value: str, ok: bool) -> None:
    if ok:
        assert validate_value(ai, value) == value
    else:
        with pytest.raises(InvalidDigitalLink):
            validate_value(ai, value)


# -- paths -------------------------------------------------------------------------------------


def test_parse_full_path() -> None:
    link = parse_digital_link(f"/01/{GTIN[1:]}/22/V1/10/LOT%2F1/21/9")
    assert link == DigitalLink("01", GTIN, (("22", "V1"), ("10", "LOT/1"), ("21", "9")))
    assert link.path() == f"/01/{GTIN}/22/V1/10/LOT%2F1/21/9"
    assert [lv.path() for lv in link.levels()] == [
        f"/01/{GTIN}/22/V1/10/LOT%2F1/21/9",
        f"/01/{GTIN}/22/V1/10/LOT%2F1",
        f"/01/{GTIN}/22/V1",
        f"/01/{GTIN}",
    ]
    assert parse_digital_link(f"/01/{GTIN}/") == DigitalLink("01", GTIN)
    assert parse_digital_link("/414/5901234123457/254/A1").qualifiers == (("254", "A1"),)
    assert parse_digital_link("/00/000000000000000017").key == "000000000000000017"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (f"/01/{GTIN}/21/S1/10/L1", "in order"),
        (f"/01/{GTIN}/10/L1/10/L2", "in order"),
        (f"/01/{GTIN}/254/X", "not a qualifier of GTIN"),
        (f"/01/{GTIN}/99/X", "not a qualifier"),
        (f"/01/{GTIN}/10", "pairs"),
        ("/01//10/L1", "empty"),
        ("/02/09506000134352", "not a supported GS1 primary key"),
        ("/01/06912345678901", "check digit"),
        (f"/01/{GTIN}/10/%FF", "UTF-8"),
        (f"/01/{GTIN}/10/a%20b", "invalid value"),
        ("/01", "pairs"),
    ],
)
def test_invalid_paths(path: str, reason: str) -> None:
    with pytest.raises(InvalidDigitalLink, match=reason):
        parse_digital_link(path)


# -- rules and links ---------------------------------------------------------------------------


def test_default_rule_maps_levels_to_handles() -> None:
    rule = DEFAULT_GS1_RULES[0]
    link = parse_digital_link(f"/01/{GTIN}/10/L%2F1/21/S1")
    assert [h for _, h in rule.candidates(link)] == [
        f"{MD}/10/L%2F1/21/S1",
        f"{MD}/10/L%2F1",
        MD,
    ]
    assert rule.identifier(parse_digital_link(f"/01/{GTIN}/21/S1")) == f"{MD}/21/S1"
    assert demo_gs1_rules("88.1.2")[0].identifier(DigitalLink("01", GTIN)) == (
        f"88.1.2/MD-UDI-{GTIN}"
    )


def test_custom_rule_formats() -> None:
    rule = GS1Rule(
        template="88.9/{ai}-{value}",
        qualifier_formats=(("10", "-L{value}"),),
        walk_up=False,
        key_prefix="0691",
    )
    link = parse_digital_link(f"/01/{GTIN}/10/A1")
    assert rule.matches(link)
    assert not rule.matches(parse_digital_link("/01/09506000134352"))
    assert [h for _, h in rule.candidates(link)] == [f"88.9/01-{GTIN}-LA1"]
    # a serial has no format: that level is skipped (and walk_up is off)
    assert rule.candidates(parse_digital_link(f"/01/{GTIN}/10/A1/21/S")) == []
    sscc = GS1Rule(template="88.9/SSCC-{sscc}", ai="00")
    sscc_link = DigitalLink("00", "000000000000000017")
    assert sscc.identifier(sscc_link) == "88.9/SSCC-000000000000000017"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"template": "88.9/{lot}"},
        {"template": "88.9/{gtin14}", "ai": "00"},
        {"template": "88.9/{value}", "ai": "99"},
        {"template": "88.9/{value}", "qualifier_formats": (("254", "/{value}"),)},
        {"template": "88.9/{value}", "qualifier_formats": (("10", "/{lot}"),)},
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="GS1Rule"):
        GS1Rule(**kwargs)  # type: ignore[arg-type]


def test_link_types() -> None:
    assert link_type_for("URL") == "gs1:pip"
    assert link_type_for("url", "gs1:defaultLink") == "gs1:defaultLink"
    assert link_type_for("URL.epcis") == "gs1:epcis"
    assert link_type_for("URL.gs1:hasRetailers") == "gs1:hasRetailers"
    assert link_type_for("URL.schema:x") is None
    assert link_type_for("URL.") is None
    assert link_type_for("EMAIL") is None
    assert GS1Link("gs1:pip", "https://x/").rel == f"{VOC}pip"
    default, links = links_of(
        [
            text(1, "URL.epcis", "https://e.example/"),
            text(2, "URL", "https://p.example/"),
            text(3, "URL.evil", "javascript:alert(1)"),
            text(4, "DESC", "https://not-a-link.example/"),
        ]
    )
    assert default == GS1Link("gs1:defaultLink", "https://p.example/")
    assert links == [
        GS1Link("gs1:epcis", "https://e.example/"),
        GS1Link("gs1:pip", "https://p.example/"),
    ]


# -- the resolver ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def items(proxy_node: ProxyNode) -> None:
    proxy_node.put(
        MD,
        [
            text(1, "URL", "https://med.example.com/udi/06912345678902"),
            text(2, "DESC", "Infusion pump"),
            text(3, "URL.epcis", "https://epcis.example.com/events?gtin=06912345678902"),
            text(4, "URL.internal", "https://intra.example.com/", permissions=PRIVATE),
        ],
    )
    proxy_node.put(f"{MD}/10/LOT1", [text(1, "URL", "https://med.example.com/lot/LOT1")])
    proxy_node.put(f"{MD}/10/LOT1/21/S1", [text(1, "URL", "https://med.example.com/s/S1")])


def test_gtin_redirects_307_with_link_header(client: SyncClient, items: None) -> None:
    for gtin in (GTIN, GTIN[1:]):
        r = client.get(f"/01/{gtin}")
        assert r.status_code == 307, gtin
        assert r.headers["location"] == "https://med.example.com/udi/06912345678902"
        link = r.headers["link"]
        assert f'<https://med.example.com/udi/06912345678902>; rel="{VOC}defaultLink"' in link
        assert f'<https://med.example.com/udi/06912345678902>; rel="{VOC}pip"' in link
        assert f'rel="{VOC}epcis"' in link
        assert (
            f'<http://proxy.test/01/{GTIN}?linkType=linkset>; rel="linkset"; '
            'type="application/linkset+json"'
        ) in link
        assert f'<http://proxy.test/{MD}?noredirect>; rel="describedby"' in link
        assert "intra.example.com" not in link


def test_walk_up_the_qualifier_path(client: SyncClient, items: None) -> None:
    cases = {
        f"/01/{GTIN}/10/LOT1/21/S1": "https://med.example.com/s/S1",
        f"/01/{GTIN}/10/LOT1/21/S9": "https://med.example.com/lot/LOT1",
        f"/01/{GTIN}/10/LOT2/21/S1": "https://med.example.com/udi/06912345678902",
        f"/01/{GTIN}/21/S1": "https://med.example.com/udi/06912345678902",
        f"/01/{GTIN}/22/V/10/LOT1": "https://med.example.com/udi/06912345678902",
    }
    for path, location in cases.items():
        r = client.get(path)
        assert (r.status_code, r.headers["location"]) == (307, location), path


def test_walk_up_can_be_disabled(proxy_node: ProxyNode, items: None) -> None:
    strict = proxy_node.client(gs1_rules=(GS1Rule(f"{PREFIX}/MD-UDI-{{gtin14}}", walk_up=False),))
    assert strict.get(f"/01/{GTIN}/10/LOT1").status_code == 307
    r = strict.json(f"/01/{GTIN}/10/LOT1/21/S9")
    assert r.status_code == 404
    assert r.json()["handle"] == f"{MD}/10/LOT1/21/S9"


def test_linkset(client: SyncClient, items: None) -> None:
    expected = {
        "linkset": [
            {
                "anchor": f"http://proxy.test/01/{GTIN}",
                "itemDescription": "Infusion pump",
                f"{VOC}defaultLink": [{"href": "https://med.example.com/udi/06912345678902"}],
                f"{VOC}pip": [{"href": "https://med.example.com/udi/06912345678902"}],
                f"{VOC}epcis": [{"href": "https://epcis.example.com/events?gtin=06912345678902"}],
                "describedby": [
                    {"href": f"http://proxy.test/{MD}?noredirect", "type": "text/html"}
                ],
            }
        ]
    }
    for query, accept, ctype in (
        ("?linkType=all", "*/*", "application/linkset+json"),
        ("?linkType=linkset", "text/html", "application/linkset+json"),
        ("", "application/linkset+json", "application/linkset+json"),
        ("", "application/json", "application/json"),
    ):
        r = client.get(f"/01/{GTIN}{query}", headers={"accept": accept})
        assert r.status_code == 200, (query, accept)
        assert r.headers["content-type"] == ctype
        assert json.loads(r.content) == expected
        assert 'rel="linkset"' in r.headers["link"]
    r = client.get(f"/01/{GTIN}/10/LOT1/21/S9?linkType=all")
    assert r.json()["linkset"][0]["anchor"] == f"http://proxy.test/01/{GTIN}/10/LOT1"


def test_link_type_selection(client: SyncClient, items: None) -> None:
    epcis = "https://epcis.example.com/events?gtin=06912345678902"
    for wanted in ("gs1:epcis", "epcis", f"{VOC}epcis", "https://ref.gs1.org/voc/epcis"):
        r = client.get(f"/01/{GTIN}", params={"linkType": wanted})
        assert (r.status_code, r.headers["location"]) == (307, epcis), wanted
    assert client.get(f"/01/{GTIN}?linkType=gs1:pip").status_code == 307
    r = client.get(f"/01/{GTIN}?linkType=gs1:defaultLink")
    assert r.headers["location"] == "https://med.example.com/udi/06912345678902"
    r = client.get(f"/01/{GTIN}?linkType=gs1:hasRetailers")
    assert r.status_code == 404
    assert "no gs1:hasRetailers link" in r.text and "link" in r.headers
    r = client.get(f"/01/{GTIN}?linkType=gs1:internal")
    assert r.status_code == 404


def test_query_is_passed_on(client: SyncClient, items: None) -> None:
    r = client.get(f"/01/{GTIN}?linkType=gs1:epcis&17=290331&x=a%20b")
    assert r.headers["location"] == (
        "https://epcis.example.com/events?gtin=06912345678902&17=290331&x=a%20b"
    )
    r = client.get(f"/01/{GTIN}?17=290331")
    assert r.headers["location"] == "https://med.example.com/udi/06912345678902?17=290331"


def test_invalid_links_are_400(client: SyncClient) -> None:
    r = client.json("/01/06912345678901")
    assert r.status_code == 400
    body = r.json()
    assert body["responseCode"] == 102
    assert "wrong check digit (expected 2)" in body["message"]
    r = client.get(f"/01/{GTIN}/10/<script>%7B")
    assert r.status_code == 400
    assert r.headers["content-type"] == "text/html; charset=UTF-8"
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert client.json(f"/01/{GTIN}/21/S/10/L").status_code == 400
    assert client.json("/01").status_code == 400


def test_unknown_item_is_404(client: SyncClient) -> None:
    r = client.json("/01/09506000134352/10/X")
    assert r.status_code == 404
    body = r.json()
    assert body["responseCode"] == 100
    assert body["handle"] == f"{PREFIX}/MD-UDI-09506000134352/10/X"
    r = client.get("/01/09506000134352")
    assert r.status_code == 404 and "cannot be found" in r.text


def test_item_without_links(proxy_node: ProxyNode, client: SyncClient) -> None:
    gtin = "00000096385074"
    proxy_node.put(f"{PREFIX}/MD-UDI-{gtin}", [text(1, "DESC", "no links")])
    r = client.json(f"/01/{gtin}")
    assert r.status_code == 200
    assert r.json()["linkset"][0]["itemDescription"] == "no links"
    r = client.get(f"/01/{gtin}")
    assert r.status_code == 404 and "no default link" in r.text


def test_alias_is_followed(proxy_node: ProxyNode, client: SyncClient) -> None:
    gtin = "05901234123457"
    proxy_node.put(f"{PREFIX}/MD-UDI-{gtin}", [text(1, "HS_ALIAS", f"{PREFIX}/PV-2026-000123")])
    r = client.get(f"/01/{gtin}")
    assert r.headers["location"] == "https://pv.example.com/modules/PV-2026-000123"
    assert f"<http://proxy.test/{PREFIX}/PV-2026-000123?noredirect>" in r.headers["link"]


def test_rules_per_key_prefix_and_other_keys(proxy_node: ProxyNode) -> None:
    proxy_node.put(f"{PREFIX}/GLN-5901234123457", [text(1, "URL", "https://site.example/")])
    proxy_node.put(f"{PREFIX}/ASSET-A1%2F2", [text(1, "URL", "https://asset.example/")])
    rules = (
        GS1Rule(f"{PREFIX}/MD-UDI-{{gtin14}}", key_prefix="069"),
        GS1Rule(f"{PREFIX}/GLN-{{gln}}", ai="414", qualifier_formats=()),
        GS1Rule(f"{PREFIX}/ASSET-{{giai}}", ai="8004"),
    )
    c = proxy_node.client(gs1_rules=rules)
    assert c.get("/414/5901234123457/254/X").headers["location"] == "https://site.example/"
    assert c.get("/8004/A1%2F2").headers["location"] == "https://asset.example/"
    r = c.json("/01/09506000134352")
    assert r.status_code == 404 and "no rule maps" in r.json()["message"]
    assert c.json("/00/000000000000000017").json()["responseCode"] == 301  # to the proxy


def test_prefix_not_served_here(proxy_node: ProxyNode) -> None:
    c = proxy_node.client(gs1_rules=(GS1Rule("99.1/X-{gtin14}"),))
    r = c.json(f"/01/{GTIN}")
    assert r.status_code == 400 and r.json()["responseCode"] == 301


def test_head_and_methods(client: SyncClient, items: None) -> None:
    r = client.request("HEAD", f"/01/{GTIN}")
    assert r.status_code == 307 and r.content == b"" and "location" in r.headers
    assert client.request("POST", f"/01/{GTIN}", content=b"").status_code == 405


def test_demo_device_resolves_by_digital_link(client: SyncClient) -> None:
    """The demo node's medical device answers its GS1 Digital Link with no set-up."""
    r = client.get("/01/06912345678902")
    assert r.status_code == 307
    assert r.headers["location"] == "https://med.example.com/udi/06912345678902"
