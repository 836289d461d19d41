"""Photovoltaics pack (spec §5 "PV modules / cells / wafers"): the traceability chain
polysilicon lot → monocrystalline ingot → wafer lot → cell lot → module, each link a
reference attribute constrained to the upstream template, across four enterprises.

Per polysilicon lot the stream yields the lot, 2 ingots, 2 wafer lots per ingot, one cell lot
per wafer lot and 24 modules per cell lot (107 identifiers), upstream first. Modules carry
nameplate electricals consistent with each other (Pmax = Vmp × Imp, efficiency = Pmax over
the 2.278 m × 1.134 m module area at 1000 W/m²) and a ``URL`` value at index 1.
"""

from __future__ import annotations

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
)
from idnode.protocol.values import HandleValue

__all__ = ["PACK", "PVPrefixes", "generate", "templates"]

#: GB/T 4754-2017 C 38 382 3825: 光伏设备及元器件制造.
INDUSTRY = Industry("C", "38", "382", "3825")
_START = datetime.date(2026, 1, 5)
_MODULE_AREA_M2 = 2.278 * 1.134
_INGOTS_PER_LOT = 2
_WAFER_LOTS_PER_INGOT = 2
_MODULES_PER_CELL_LOT = 24
_CELL_EFFICIENCY = {"PERC": (22.8, 23.6), "TOPCon": (24.6, 25.8), "HJT": (25.0, 26.2)}
_POWER_CLASSES = (560, 565, 570, 575, 580, 585, 590)
_FACTORIES = ("上饶经开区一号工厂", "上饶经开区二号工厂", "滁州基地", "盐城基地")


@dataclass(frozen=True, slots=True)
class PVPrefixes:
    """Enterprise prefixes of the chain (and where the templates live)."""

    templates: str = "88.118.8"
    polysilicon: str = "88.118.1"
    wafer: str = "88.118.2"
    """Ingots and wafers come from one wafer maker."""
    cell: str = "88.118.3"
    module: str = "88.118.8"


def _ids(prefixes: PVPrefixes) -> dict[str, str]:
    base = f"{prefixes.templates}/META_PV_"
    return {k: base + k.upper() for k in ("polysilicon", "ingot", "wafer", "cell", "module")}


def templates(prefixes: PVPrefixes) -> tuple[Template, ...]:
    """Polysilicon lot, ingot, wafer lot, cell lot and module templates, in chain order."""
    ids = _ids(prefixes)
    lot = r"[0-9]{8}-[0-9]{4,}"
    tech = "PERC|TOPCon|HJT"
    polysilicon = published_template(
        ids["polysilicon"], "多晶硅批次", "Polysilicon lot", INDUSTRY,
        field("lotNumber", "批次号", "Lot number", required=True, unique=True, pattern="PS" + lot),
        field("grade", "等级", "Grade (GB/T 25074)", required=True, pattern="特级品|1级品|2级品"),
        field("form", "形态", "Form", pattern="块状|颗粒"),
        field("purity", "纯度", "Purity", pattern="(9|1[0-2])N"),
        field("weightKg", "净重(kg)", "Net weight (kg)", "number", required=True, precision=1,
              minimum=0),
        field("resistivityOhmCm", "电阻率(Ω·cm)", "Resistivity (Ω·cm)", "number", precision=1),
        field("producer", "生产企业", "Producer", required=True, max_length=100),
        field("productionDate", "生产日期", "Production date", "date", required=True),
        field("inspectionReport", "检验报告", "Inspection report", "file"),
    )  # fmt: skip
    ingot = published_template(
        ids["ingot"], "单晶硅棒", "Monocrystalline ingot", INDUSTRY,
        field("ingotId", "硅棒编号", "Ingot ID", required=True, unique=True, pattern="IG" + lot),
        field("polysiliconLot", "多晶硅批次", "Polysilicon lot", "reference", required=True,
              reference_template=ids["polysilicon"]),
        field("conductivityType", "导电类型", "Conductivity type", required=True, pattern="N|P"),
        field("dopant", "掺杂剂", "Dopant", pattern="磷|镓|硼"),
        field("diameterMm", "直径(mm)", "Diameter (mm)", "number", precision=1, minimum=150,
              maximum=320),
        field("lengthMm", "长度(mm)", "Length (mm)", "number", precision=0, minimum=300,
              maximum=6000),
        field("furnace", "单晶炉号", "Crystal puller", max_length=32),
        field("growthDate", "拉晶日期", "Growth date", "date", required=True),
    )  # fmt: skip
    wafer = published_template(
        ids["wafer"], "硅片批次", "Wafer lot", INDUSTRY,
        field("waferLot", "硅片批次号", "Wafer lot number", required=True, unique=True,
              pattern="WF" + lot),
        field("ingot", "硅棒", "Ingot", "reference", required=True,
              reference_template=ids["ingot"]),
        field("size", "尺寸规格", "Size", required=True, pattern="M10|G12|G12R"),
        field("thicknessUm", "厚度(μm)", "Thickness (μm)", "number", required=True, precision=0,
              minimum=90, maximum=200),
        field("quantity", "数量(片)", "Quantity (wafers)", "number", required=True, precision=0,
              minimum=1),
        field("slicingDate", "切片日期", "Slicing date", "date", required=True),
    )  # fmt: skip
    cell = published_template(
        ids["cell"], "电池片批次", "Cell lot", INDUSTRY,
        field("cellLot", "电池片批次号", "Cell lot number", required=True, unique=True,
              pattern="CL" + lot),
        field("waferLot", "硅片批次", "Wafer lot", "reference", required=True,
              reference_template=ids["wafer"]),
        field("technology", "电池技术", "Cell technology", required=True, pattern=tech),
        field("efficiencyPercent", "转换效率(%)", "Efficiency (%)", "number", required=True,
              precision=2, minimum=15, maximum=30),
        field("quantity", "数量(片)", "Quantity (cells)", "number", precision=0, minimum=1),
        field("factory", "生产工厂", "Factory", max_length=100),
        field("productionDate", "生产日期", "Production date", "date", required=True),
    )  # fmt: skip
    module = published_template(
        ids["module"], "光伏组件", "PV module", INDUSTRY,
        field("serialNumber", "组件序列号", "Module serial number", required=True, unique=True,
              pattern="PV-[0-9]{4}-[0-9]{6,}"),
        field("model", "型号", "Model", required=True, max_length=64),
        field("powerRatingW", "额定功率(W)", "Rated power Pmax (W)", "number", required=True,
              precision=1, minimum=100, maximum=800),
        field("efficiencyPercent", "组件效率(%)", "Module efficiency (%)", "number",
              required=True, precision=2, minimum=10, maximum=30),
        field("vocV", "开路电压(V)", "Open-circuit voltage Voc (V)", "number", precision=2),
        field("iscA", "短路电流(A)", "Short-circuit current Isc (A)", "number", precision=2),
        field("vmpV", "最大功率点电压(V)", "Voltage at Pmax Vmp (V)", "number", precision=2),
        field("impA", "最大功率点电流(A)", "Current at Pmax Imp (A)", "number", precision=2),
        field("cellType", "电池类型", "Cell type", required=True, pattern=tech),
        field("cellCount", "电池片数", "Cell count", "number", precision=0, minimum=36,
              maximum=156),
        field("cellLot", "电池片批次", "Cell lot", "reference", required=True,
              reference_template=ids["cell"]),
        field("manufactureDate", "生产日期", "Manufacture date", "date", required=True),
        field("factory", "生产工厂", "Factory", required=True, max_length=100),
        field("flashTestReport", "IV测试报告", "Flash test (IV) report", "file"),
        field("elImage", "EL图像", "Electroluminescence image", "file"),
        field("certification", "认证", "Certifications", max_length=200),
        field("carbonFootprintKg", "碳足迹(kg CO2e)", "Carbon footprint (kg CO2e)", "number",
              precision=1, minimum=0),
        object_type=1,
    )  # fmt: skip
    return polysilicon, ingot, wafer, cell, module


def generate(prefixes: PVPrefixes, seed: int = 0) -> Iterator[Identifier]:
    """The endless PV stream (see the module docstring); deterministic by ``seed``."""
    rng = random.Random(seed)
    polysilicon, ingot, wafer, cell, module = (RecordMaker(t) for t in templates(prefixes))
    numbers = Counters()
    while True:
        lot_no = numbers.next("polysilicon")
        day = _START + datetime.timedelta(days=lot_no // 2)
        stamp = f"{day:%Y%m%d}"
        number = f"PS{stamp}-{lot_no:04d}"
        lot_handle = f"{prefixes.polysilicon}/{number}"
        yield polysilicon(
            lot_handle,
            {
                "lotNumber": number,
                "grade": rng.choice(("特级品", "1级品", "1级品", "2级品")),
                "form": rng.choice(("块状", "颗粒")),
                "purity": rng.choice(("9N", "10N", "11N")),
                "weightKg": f"{rng.uniform(800, 1200):.1f}",
                "resistivityOhmCm": f"{rng.uniform(80, 300):.1f}",
                "producer": "赣东硅业有限公司",
                "productionDate": day.isoformat(),
                "inspectionReport": f"https://files.example.com/poly/{number}.pdf",
            },
        )
        for _ in range(_INGOTS_PER_LOT):
            n_type = rng.random() < 0.8
            ingot_id = f"IG{stamp}-{numbers.next('ingot'):04d}"
            ingot_handle = f"{prefixes.wafer}/{ingot_id}"
            grown = day + datetime.timedelta(days=2)
            yield ingot(
                ingot_handle,
                {
                    "ingotId": ingot_id,
                    "polysiliconLot": lot_handle,
                    "conductivityType": "N" if n_type else "P",
                    "dopant": "磷" if n_type else "镓",
                    "diameterMm": f"{rng.choice((262.0, 272.0, 300.0)):.1f}",
                    "lengthMm": str(rng.randrange(3800, 4800)),
                    "furnace": f"CZ-{rng.randrange(1, 200):03d}",
                    "growthDate": grown.isoformat(),
                },
            )
            for _ in range(_WAFER_LOTS_PER_INGOT):
                yield from _wafer_to_modules(
                    rng, prefixes, (wafer, cell, module), ingot_handle, grown, numbers
                )


def _wafer_to_modules(
    rng: random.Random,
    prefixes: PVPrefixes,
    makers: tuple[RecordMaker, RecordMaker, RecordMaker],
    ingot_handle: str,
    grown: datetime.date,
    numbers: Counters,
) -> Iterator[Identifier]:
    """A wafer lot, its cell lot and that lot's modules."""
    wafer, cell, module = makers
    sliced = grown + datetime.timedelta(days=1)
    wafer_lot = f"WF{sliced:%Y%m%d}-{numbers.next('wafer'):04d}"
    wafer_handle = f"{prefixes.wafer}/{wafer_lot}"
    size = rng.choice(("M10", "G12R"))
    yield wafer(
        wafer_handle,
        {
            "waferLot": wafer_lot,
            "ingot": ingot_handle,
            "size": size,
            "thicknessUm": str(rng.choice((130, 140, 150))),
            "quantity": str(_MODULES_PER_CELL_LOT * 144),
            "slicingDate": sliced.isoformat(),
        },
    )
    technology = rng.choice(tuple(_CELL_EFFICIENCY))
    made = sliced + datetime.timedelta(days=3)
    cell_lot = f"CL{made:%Y%m%d}-{numbers.next('cell'):04d}"
    cell_handle = f"{prefixes.cell}/{cell_lot}"
    factory = rng.choice(_FACTORIES)
    yield cell(
        cell_handle,
        {
            "cellLot": cell_lot,
            "waferLot": wafer_handle,
            "technology": technology,
            "efficiencyPercent": f"{rng.uniform(*_CELL_EFFICIENCY[technology]):.2f}",
            "quantity": str(_MODULES_PER_CELL_LOT * 144),
            "factory": factory,
            "productionDate": made.isoformat(),
        },
    )
    assembled = made + datetime.timedelta(days=2)
    for _ in range(_MODULES_PER_CELL_LOT):
        yield _module(rng, prefixes, module, cell_handle, technology, assembled, numbers)


def _module(
    rng: random.Random,
    prefixes: PVPrefixes,
    module: RecordMaker,
    cell_handle: str,
    technology: str,
    assembled: datetime.date,
    numbers: Counters,
) -> Identifier:
    serial = f"PV-{assembled.year}-{numbers.next('module'):06d}"
    power_class = rng.choice(_POWER_CLASSES)
    pmax = power_class + rng.uniform(0, 4.9)
    vmp = rng.uniform(42.5, 44.0)
    imp = pmax / vmp
    handle = f"{prefixes.module}/{serial}"
    url = HandleValue(1, "URL", f"https://pv.example.com/modules/{serial}".encode())
    return module(
        handle,
        {
            "serialNumber": serial,
            "model": f"PVM-{power_class}{technology[0]}-72HC",
            "powerRatingW": f"{pmax:.1f}",
            "efficiencyPercent": f"{pmax / _MODULE_AREA_M2 / 10:.2f}",
            "vocV": f"{vmp * 1.19:.2f}",
            "iscA": f"{imp * 1.05:.2f}",
            "vmpV": f"{vmp:.2f}",
            "impA": f"{imp:.2f}",
            "cellType": technology,
            "cellCount": "144",
            "cellLot": cell_handle,
            "manufactureDate": assembled.isoformat(),
            "factory": rng.choice(_FACTORIES),
            "flashTestReport": f"https://files.example.com/iv/{serial}.csv",
            "elImage": f"s3://pv-el/{assembled:%Y/%m}/{serial}.png",
            "certification": "IEC 61215:2021; IEC 61730:2023",
            "carbonFootprintKg": f"{pmax * rng.uniform(0.62, 0.7):.1f}",
        },
        extra=(url,),
    )


PACK: Pack[PVPrefixes] = Pack(
    name="pv",
    name_zh="光伏",
    name_en="Photovoltaics",
    default_prefixes=PVPrefixes(),
    templates=templates,
    generate=generate,
)
