"""Electronics pack (spec §5 "Electronics / PCB supply chain"): component lots from suppliers
→ PCB designs by an engineer at a design house (the BOM references component lots) → board
assemblies built at a factory against factory orders (each references its PCB design).

Per design the stream yields 3 new component lots (round-robin over the suppliers), the design
(its BOM: those lots plus up to 5 recently yielded ones), then 2 factory orders of 10
assemblies (24 identifiers). Every third design is revision B of the previous part number.
Assembly suffixes follow the electronics coding rule (spec §1.2): classification code, model,
production date and serial separated by ``.``; the six-digit classification codes have the
SJ/T 11144 shape (three two-digit levels) but, like all the data here, are synthetic.
"""

from __future__ import annotations

import collections
import datetime
import random
from collections.abc import Iterator
from dataclasses import dataclass

from idnode.industry.model import Industry, Template
from idnode.industry.packs.base import (
    Counters,
    Identifier,
    Pack,
    RecordMaker,
    field,
    published_template,
    references,
)

__all__ = ["PACK", "ElectronicsPrefixes", "generate", "templates"]

#: GB/T 4754-2017 C 39 398 3982: 电子电路制造.
INDUSTRY = Industry("C", "39", "398", "3982")
_START = datetime.date(2026, 1, 5)
_NEW_COMPONENTS = 3
_REUSED_COMPONENTS = 5
_ORDERS_PER_DESIGN = 2
_ASSEMBLIES_PER_ORDER = 10
_COMPONENTS = (
    ("390101", "32位微控制器", "XM32F4{n:02d}", "华芯微电子"),
    ("390203", "电源管理芯片", "PM{n:04d}", "华芯微电子"),
    ("398101", "多层陶瓷电容 100nF", "CC0603-104-{n:03d}", "南湖电子元件"),
    ("398102", "贴片电阻 10kΩ", "RC0402-103-{n:03d}", "南湖电子元件"),
    ("398103", "功率电感 4.7μH", "PI4020-4R7-{n:03d}", "江城磁电"),
    ("397601", "LED 指示灯", "LED0603-G{n:02d}", "江城光电"),
)
_ENGINEERS = (("王磊", "wang.lei"), ("李娜", "li.na"), ("张伟", "zhang.wei"), ("陈静", "chen.jing"))
_PRODUCTS = (("870101", "SG1000"), ("870203", "DAQ200"), ("871104", "PSU300"))
_FACTORIES = ("上饶电子产业园SMT一厂", "吉安电子信息产业园二厂")


@dataclass(frozen=True, slots=True)
class ElectronicsPrefixes:
    """Where the templates live and the enterprises of the chain."""

    templates: str = "88.118.8"
    suppliers: tuple[str, ...] = ("88.118.5", "88.118.6")
    """Component suppliers (round-robin)."""
    design: str = "88.118.7"
    """The design house whose engineers design the boards."""
    factory: str = "88.118.8"
    """The contract manufacturer building the assemblies."""

    def __post_init__(self) -> None:
        if not self.suppliers:
            raise ValueError("at least one supplier")


def _ids(prefixes: ElectronicsPrefixes) -> dict[str, str]:
    base = f"{prefixes.templates}/META_EC_"
    return {k: base + k.upper() for k in ("component", "pcb", "assembly")}


def templates(prefixes: ElectronicsPrefixes) -> tuple[Template, ...]:
    """Component lot, PCB design and board assembly templates, in chain order."""
    ids = _ids(prefixes)
    code = "[0-9]{6}"
    component = published_template(
        ids["component"], "电子元器件批次", "Electronic component lot", INDUSTRY,
        field("lotCode", "批次码", "Lot code", required=True, unique=True,
              pattern="[A-Z0-9]{6,20}"),
        field("partNumber", "制造商料号", "Manufacturer part number", required=True, max_length=64),
        field("manufacturer", "制造商", "Manufacturer", required=True, max_length=100),
        field("classification", "分类代码", "Classification code", required=True, pattern=code),
        field("description", "描述", "Description", max_length=200),
        field("dateCode", "日期码", "Date code (YYWW)",
              pattern="[0-9]{2}(0[1-9]|[1-4][0-9]|5[0-3])"),
        field("quantity", "数量", "Quantity", "number", precision=0, minimum=1),
        field("rohs", "RoHS合规", "RoHS compliant", required=True, pattern="yes|no"),
        field("datasheet", "数据手册", "Datasheet", "url"),
    )  # fmt: skip
    pcb = published_template(
        ids["pcb"], "印制电路板设计", "PCB design", INDUSTRY,
        field("boardId", "板号版本", "Board part number and revision", required=True,
              unique=True, pattern="PCB-[0-9]{4,}-[A-Z]"),
        field("partNumber", "板号", "Board part number", required=True, pattern="[0-9]{4,}"),
        field("revision", "版本", "Revision", required=True, pattern="[A-Z]"),
        field("designer", "设计工程师", "Design engineer", required=True, max_length=50),
        field("designerEmail", "工程师邮箱", "Engineer e-mail", pattern=r"[a-z.]+@[a-z0-9.-]+"),
        field("designDate", "设计日期", "Design date", "date", required=True),
        field("layers", "层数", "Layers", "number", required=True, precision=0, minimum=1,
              maximum=64),
        field("thicknessMm", "板厚(mm)", "Board thickness (mm)", "number", precision=2,
              minimum=0.2, maximum=6),
        field("bom", "物料清单", "Bill of materials", "reference", required=True, multiple=True,
              max_items=200, reference_template=ids["component"]),
        field("gerber", "Gerber文件", "Gerber files", "file"),
    )  # fmt: skip
    assembly = published_template(
        ids["assembly"], "电子组件", "Board assembly", INDUSTRY,
        field("serialNumber", "序列号", "Serial number", required=True, unique=True,
              pattern="[0-9]{6,}"),
        field("productModel", "产品型号", "Product model", required=True, max_length=64),
        field("classification", "分类代码", "Classification code", required=True, pattern=code),
        field("pcb", "电路板设计", "PCB design", "reference", required=True,
              reference_template=ids["pcb"]),
        field("factoryOrder", "工厂订单号", "Factory order number", required=True,
              pattern="MO[0-9]{10,}"),
        field("factory", "生产工厂", "Factory", required=True, max_length=100),
        field("productionDate", "生产日期", "Production date", "date", required=True),
        field("testResult", "测试结果", "Test result", required=True, pattern="PASS|FAIL"),
        field("firmwareVersion", "固件版本", "Firmware version", pattern=r"[0-9]+\.[0-9]+\.[0-9]+"),
        object_type=1,
    )  # fmt: skip
    return component, pcb, assembly


def generate(prefixes: ElectronicsPrefixes, seed: int = 0) -> Iterator[Identifier]:
    """The electronics stream (see the module docstring); deterministic by ``seed``."""
    rng = random.Random(seed)
    component, pcb, assembly = (RecordMaker(t) for t in templates(prefixes))
    numbers = Counters()
    recent: collections.deque[str] = collections.deque(maxlen=60)
    part_number = 7000
    while True:
        design = numbers.next("design")
        day = _START + datetime.timedelta(days=design // 2)
        fresh: list[str] = []
        for _ in range(_NEW_COMPONENTS):
            lot = numbers.next("component")
            supplier = prefixes.suppliers[lot % len(prefixes.suppliers)]
            category, description, mpn, maker = rng.choice(_COMPONENTS)
            lot_code = f"L{day:%y%m}{lot:06d}"
            handle = f"{supplier}/{category}.{lot_code}"
            yield component(
                handle,
                {
                    "lotCode": lot_code,
                    "partNumber": mpn.format(n=rng.randrange(100)),
                    "manufacturer": maker,
                    "classification": category,
                    "description": description,
                    "dateCode": f"{day:%y}{rng.randrange(1, 53):02d}",
                    "quantity": str(rng.choice((3000, 5000, 10000))),
                    "rohs": "yes",
                    "datasheet": f"https://docs.example.com/{category}/{lot_code}.pdf",
                },
            )
            fresh.append(handle)
        reused = rng.sample(list(recent), min(_REUSED_COMPONENTS, len(recent)))
        recent.extend(fresh)
        revision = "B" if design % 3 == 0 else "A"
        if revision == "A":
            part_number += 1
        board = f"PCB-{part_number}-{revision}"
        board_handle = f"{prefixes.design}/{board}"
        name, mail = rng.choice(_ENGINEERS)
        yield pcb(
            board_handle,
            {
                "boardId": board,
                "partNumber": str(part_number),
                "revision": revision,
                "designer": name,
                "designerEmail": f"{mail}@design.example.com",
                "designDate": day.isoformat(),
                "layers": str(rng.choice((2, 4, 6, 8))),
                "thicknessMm": f"{rng.choice((1.0, 1.6, 2.0)):.2f}",
                "bom": references(sorted({*fresh, *reused})),
                "gerber": f"s3://gerber/{board}.zip",
            },
        )
        yield from _assemblies(rng, prefixes, assembly, board_handle, day, numbers)


def _assemblies(
    rng: random.Random,
    prefixes: ElectronicsPrefixes,
    assembly: RecordMaker,
    board_handle: str,
    day: datetime.date,
    numbers: Counters,
) -> Iterator[Identifier]:
    """The factory orders of one design and the assemblies they build."""
    classification, model = rng.choice(_PRODUCTS)
    for n in range(_ORDERS_PER_DESIGN):
        order = f"MO{numbers.next('order'):010d}"
        built = day + datetime.timedelta(days=14 + 3 * n)
        factory = rng.choice(_FACTORIES)
        for _ in range(_ASSEMBLIES_PER_ORDER):
            serial = f"{numbers.next('assembly'):06d}"
            suffix = f"{classification}.{model}.{built:%Y%m%d}.{serial}"
            yield assembly(
                f"{prefixes.factory}/{suffix}",
                {
                    "serialNumber": serial,
                    "productModel": model,
                    "classification": classification,
                    "pcb": board_handle,
                    "factoryOrder": order,
                    "factory": factory,
                    "productionDate": built.isoformat(),
                    "testResult": "PASS" if rng.random() < 0.98 else "FAIL",
                    "firmwareVersion": f"1.{rng.randrange(0, 4)}.{rng.randrange(0, 10)}",
                },
            )


PACK: Pack[ElectronicsPrefixes] = Pack(
    name="electronics",
    name_zh="电子信息",
    name_en="Electronics",
    default_prefixes=ElectronicsPrefixes(),
    templates=templates,
    generate=generate,
)
