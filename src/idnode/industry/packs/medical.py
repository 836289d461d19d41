"""Medical devices pack (spec §5 "Medical devices (UDI)"): UDI-DI products, production lots and
serialised units, under the handles the GS1 Digital Link resolver maps a GTIN to.

A product is ``<enterprise>/MD-UDI-<GTIN-14>``, its lots ``.../10/<lot>`` and their units
``.../10/<lot>/21/<serial>``: exactly the levels that ``GS1Rule(template=
"<enterprise>/MD-UDI-{gtin14}", key_prefix="0<company prefix>")`` (:mod:`idnode.http.gs1`)
tries for ``/01/<gtin>/10/<lot>/21/<serial>``, so every generated record is reachable by
Digital Link, and each has a ``URL`` value (index 1) the resolver can redirect to.

Each manufacturer is an (enterprise prefix, GS1 company prefix) pair; GTIN-14s are ``0`` +
company prefix + item reference + check digit, so a 6-digit company prefix gives 10⁶ products
per manufacturer. Products go round-robin over the manufacturers; each has 4 lots of 25 units
(105 identifiers per product). The stream ends when every company prefix is used up.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from idnode.http.gs1_syntax import DigitalLink, check_digit
from idnode.industry.model import Industry, Template
from idnode.industry.packs.base import (
    Counters,
    Identifier,
    Pack,
    RecordMaker,
    field,
    published_template,
)
from idnode.protocol.values import HandleValue

__all__ = ["PACK", "MedicalPrefixes", "generate", "templates"]

#: GB/T 4754-2017 C 35 358 3581: 医疗诊断、监护及治疗设备制造.
INDUSTRY = Industry("C", "35", "358", "3581")
_START = datetime.date(2026, 1, 5)
_LOTS_PER_PRODUCT = 4
_UNITS_PER_LOT = 25
_GTIN: dict[str, Any] = {
    "pattern": "[0-9]{14}",
    "check_digit": "gs1",
    "min_length": 14,
    "max_length": 14,
}
_AI_VALUE = "[0-9A-Za-z-]{1,20}"
_PI = rf"\(11\)[0-9]{{6}}\(17\)[0-9]{{6}}\(10\){_AI_VALUE}\(21\){_AI_VALUE}"
_DEVICES = (
    ("输液泵", "Infusion pump", "II", "no", "SY-{n}"),
    ("一次性使用无菌注射器", "Sterile single-use syringe", "III", "yes", "5ml-{n}"),
    ("医用电子体温计", "Clinical electronic thermometer", "II", "no", "TM-{n}"),
    ("血糖仪", "Blood glucose meter", "II", "no", "GM-{n}"),
    ("心脏起搏器", "Cardiac pacemaker", "III", "yes", "PM-{n}"),
)
_PROVINCES = "国国赣苏浙粤沪"
_REGISTRANTS = ("赣江医疗器械有限公司", "苏康医疗科技股份有限公司", "浙华医用器材有限公司")


@dataclass(frozen=True, slots=True)
class MedicalPrefixes:
    """Where the templates live, the manufacturers, and the resolver base of Digital Links."""

    templates: str = "88.118.8"
    manufacturers: tuple[tuple[str, str], ...] = (("88.118.8", "691234"), ("88.118.9", "692345"))
    """(enterprise prefix, GS1 company prefix of 6 to 11 digits) per manufacturer."""
    resolver: str = "https://id.example.com"

    def __post_init__(self) -> None:
        for _, company in self.manufacturers:
            if not (company.isascii() and company.isdigit() and 6 <= len(company) <= 11):
                raise ValueError(f"a GS1 company prefix has 6 to 11 digits: {company!r}")
        if not self.manufacturers:
            raise ValueError("at least one manufacturer")


def _ids(prefixes: MedicalPrefixes) -> dict[str, str]:
    base = f"{prefixes.templates}/META_MD_"
    return {k: base + k.upper() for k in ("product", "lot", "unit")}


def templates(prefixes: MedicalPrefixes) -> tuple[Template, ...]:
    """Product (UDI-DI), production lot and unit (UDI) templates."""
    ids = _ids(prefixes)
    product = published_template(
        ids["product"], "医疗器械产品标识", "Medical device product (UDI-DI)", INDUSTRY,
        field("udiDi", "产品标识(UDI-DI)", "UDI-DI (GTIN-14)", required=True, unique=True, **_GTIN),
        field("deviceName", "产品名称", "Device name", required=True, max_length=100),
        field("deviceNameEn", "英文名称", "Device name in English", max_length=100),
        field("model", "规格型号", "Model / specification", required=True, max_length=100),
        field("registrant", "注册人", "Registrant", required=True, max_length=100),
        field("registrationCertificate", "注册证编号", "Registration certificate no.",
              required=True, pattern="[\u4e00-\u9fa5]械注[准进许][0-9]{11}"),
        field("managementClass", "管理类别", "Management class", required=True,
              pattern="I|II|III"),
        field("issuingAgency", "发码机构", "UDI issuing agency", required=True,
              pattern="GS1|MA|AHM"),
        field("sterile", "是否无菌", "Sterile", pattern="yes|no"),
        field("productUrl", "产品信息", "Product information", "url"),
        object_type=1,
    )  # fmt: skip
    lot = published_template(
        ids["lot"], "医疗器械生产批次", "Medical device production lot", INDUSTRY,
        field("product", "产品", "Product (UDI-DI)", "reference", required=True,
              reference_template=ids["product"]),
        field("gtin", "GTIN", "GTIN-14 (AI 01)", required=True, **_GTIN),
        field("lotNumber", "批号", "Lot number (AI 10)", required=True, pattern=_AI_VALUE),
        field("productionDate", "生产日期", "Production date (AI 11)", "date", required=True),
        field("expiryDate", "失效日期", "Expiry date (AI 17)", "date", required=True),
        field("quantity", "数量", "Quantity", "number", precision=0, minimum=1),
    )  # fmt: skip
    unit = published_template(
        ids["unit"], "医疗器械单品", "Medical device unit (UDI)", INDUSTRY,
        field("udi", "UDI", "UDI (human-readable)", required=True, unique=True,
              pattern=rf"\(01\)[0-9]{{14}}{_PI}"),
        field("gtin", "GTIN", "GTIN-14 (AI 01)", required=True, **_GTIN),
        field("udiPi", "生产标识(UDI-PI)", "UDI-PI", required=True, pattern=_PI),
        field("lotNumber", "批号", "Lot number (AI 10)", required=True, pattern=_AI_VALUE),
        field("serialNumber", "序列号", "Serial number (AI 21)", required=True,
              pattern=_AI_VALUE),
        field("productionDate", "生产日期", "Production date (AI 11)", "date", required=True),
        field("expiryDate", "失效日期", "Expiry date (AI 17)", "date", required=True),
        field("lot", "生产批次", "Production lot", "reference", required=True,
              reference_template=ids["lot"]),
        field("digitalLink", "GS1数字链接", "GS1 Digital Link", "url", required=True),
        object_type=1,
    )  # fmt: skip
    return product, lot, unit


def _gtin(company: str, item: int) -> str | None:
    """GTIN-14 of item reference ``item`` under ``company``; None when the space is used up."""
    digits = 12 - len(company)
    if item >= 10**digits:
        return None
    body = f"0{company}{item:0{digits}d}"
    return body + str(check_digit(body))


def generate(prefixes: MedicalPrefixes, seed: int = 0) -> Iterator[Identifier]:
    """The medical device stream (see the module docstring); deterministic by ``seed``."""
    rng = random.Random(seed)
    product, lot, unit = (RecordMaker(t) for t in templates(prefixes))
    numbers = Counters()
    item = 0
    while True:
        for maker, (enterprise, company) in enumerate(prefixes.manufacturers):
            gtin = _gtin(company, item)
            if gtin is None:
                return
            registrant = _REGISTRANTS[maker % len(_REGISTRANTS)]
            yield from _product_family(
                rng, (product, lot, unit), (enterprise, registrant), gtin, numbers, prefixes
            )
        item += 1


def _product_family(
    rng: random.Random,
    makers: tuple[RecordMaker, RecordMaker, RecordMaker],
    manufacturer: tuple[str, str],
    gtin: str,
    numbers: Counters,
    prefixes: MedicalPrefixes,
) -> Iterator[Identifier]:
    """A product of ``manufacturer`` (enterprise prefix, registrant), its lots, their units."""
    product, lot, unit = makers
    enterprise, registrant = manufacturer
    zh, en, klass, sterile, model = rng.choice(_DEVICES)
    number = numbers.next("product")
    base = f"{enterprise}/MD-UDI-{gtin}"
    site = f"https://md{enterprise.rsplit('.', 1)[-1]}.example.com/udi"
    province = _PROVINCES[rng.randrange(len(_PROVINCES))] if klass == "II" else "国"
    year = rng.randrange(2018, 2026)
    yield product(
        base,
        {
            "udiDi": gtin,
            "deviceName": zh,
            "deviceNameEn": en,
            "model": model.format(n=100 + number % 900),
            "registrant": registrant,
            "registrationCertificate": f"{province}械注准{year}{klass.count('I')}"
            f"{rng.randrange(10, 80)}{rng.randrange(10000):04d}",
            "managementClass": klass,
            "issuingAgency": "GS1",
            "sterile": sterile,
            "productUrl": f"{site}/{gtin}",
        },
        extra=(HandleValue(1, "URL", f"{site}/{gtin}".encode()),),
    )
    day = _START + datetime.timedelta(days=number // 3)
    for n in range(_LOTS_PER_PRODUCT):
        made = day + datetime.timedelta(days=7 * n)
        expires = made + datetime.timedelta(days=365 * rng.randrange(2, 6))
        lot_number = f"{made:%y%m%d}{'ABCDEFGH'[n]}"
        lot_handle = f"{base}/10/{lot_number}"
        yield lot(
            lot_handle,
            {
                "product": base,
                "gtin": gtin,
                "lotNumber": lot_number,
                "productionDate": made.isoformat(),
                "expiryDate": expires.isoformat(),
                "quantity": str(_UNITS_PER_LOT),
            },
            extra=(HandleValue(1, "URL", f"{site}/{gtin}/lots/{lot_number}".encode()),),
        )
        for _ in range(_UNITS_PER_LOT):
            serial = f"{numbers.next('unit'):08d}"
            pi = f"(11){made:%y%m%d}(17){expires:%y%m%d}(10){lot_number}(21){serial}"
            link = DigitalLink("01", gtin, (("10", lot_number), ("21", serial)))
            digital_link = prefixes.resolver + link.path()
            yield unit(
                f"{lot_handle}/21/{serial}",
                {
                    "udi": f"(01){gtin}{pi}",
                    "gtin": gtin,
                    "udiPi": pi,
                    "lotNumber": lot_number,
                    "serialNumber": serial,
                    "productionDate": made.isoformat(),
                    "expiryDate": expires.isoformat(),
                    "lot": lot_handle,
                    "digitalLink": digital_link,
                },
                extra=(HandleValue(1, "URL", f"{site}/{gtin}/units/{serial}".encode()),),
            )


PACK: Pack[MedicalPrefixes] = Pack(
    name="medical",
    name_zh="医疗器械",
    name_en="Medical devices (UDI)",
    default_prefixes=MedicalPrefixes(),
    templates=templates,
    generate=generate,
)
