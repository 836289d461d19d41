"""Vehicles pack (spec §5 "Connected vehicles / auto parts"): parts from suppliers, then the
vehicle (identified by its VIN) that references them, so one VIN resolves to its parts.

Per vehicle the stream yields 5 parts (traction battery pack, drive motor, vehicle control
unit, brake module, airbag module; part kinds go round-robin over the suppliers) and then
the vehicle (6 identifiers). VINs follow ISO 3779 / GB 16735: the OEM's WMI, a VDS coding the
model, the check digit, the model-year code of the build date, a plant code and a six-digit
serial; they are unique for the first 33 million vehicles of a stream.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Iterator
from dataclasses import dataclass

from idnode.industry.checkdigits import VIN_ALPHABET, vin_check_digit
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

__all__ = ["PACK", "VehiclePrefixes", "generate", "model_year_code", "templates"]

#: GB/T 4754-2017 C 36 361 3612: 新能源车整车制造.
INDUSTRY = Industry("C", "36", "361", "3612")
_START = datetime.date(2026, 1, 5)
_VEHICLES_PER_DAY = 500
#: Model-year codes from 2001 on (ISO 3779 / GB 16735, position 10): a 30-year cycle.
_YEAR_CODES = "123456789ABCDEFGHJKLMNPRSTVWXY"
_PARTS = (
    ("battery", "动力电池包", "BP", "宁远动力电池有限公司"),
    ("motor", "驱动电机", "DM", "信江电驱科技有限公司"),
    ("controller", "整车控制器", "VCU", "信江电驱科技有限公司"),
    ("brake", "制动模块", "BRK", "赣南制动系统有限公司"),
    ("airbag", "安全气囊模块", "SAB", "赣南汽车安全件有限公司"),
)
_MODELS = (("EEAS", "星河 S7", "BEV"), ("EEBM", "星河 M5", "BEV"), ("PHCX", "星河 X9", "PHEV"))
_COLORS = ("星空灰", "极光白", "曜石黑", "天青蓝")


@dataclass(frozen=True, slots=True)
class VehiclePrefixes:
    """Where the templates live, the OEM (and its WMI), and the part suppliers."""

    templates: str = "88.118.8"
    oem: str = "88.118.8"
    suppliers: tuple[str, ...] = ("88.118.4", "88.118.5")
    wmi: str = "LJ1"
    """World manufacturer identifier: 3 VIN characters (China's begin with L)."""

    def __post_init__(self) -> None:
        if len(self.wmi) != 3 or any(c not in VIN_ALPHABET for c in self.wmi):
            raise ValueError(f"a WMI is 3 characters of {VIN_ALPHABET}: {self.wmi!r}")
        if not self.suppliers:
            raise ValueError("at least one supplier")


def model_year_code(year: int) -> str:
    """The VIN model-year character of ``year`` (2001 → ``1``, 2010 → ``A``, 2026 → ``T``)."""
    return _YEAR_CODES[(year - 2001) % len(_YEAR_CODES)]


def _ids(prefixes: VehiclePrefixes) -> dict[str, str]:
    base = f"{prefixes.templates}/META_VH_"
    return {k: base + k.upper() for k in ("part", "vehicle")}


def templates(prefixes: VehiclePrefixes) -> tuple[Template, ...]:
    """Part and vehicle templates."""
    ids = _ids(prefixes)
    part_ref = {"reference_template": ids["part"]}
    part = published_template(
        ids["part"], "汽车零部件", "Vehicle part", INDUSTRY,
        field("partSerial", "零部件序列号", "Part serial number", required=True, unique=True,
              pattern="[A-Z0-9-]{6,40}"),
        field("partNumber", "零件号", "Part number", required=True, max_length=40),
        field("partName", "零件名称", "Part name", required=True, max_length=50),
        field("category", "类别", "Category", required=True,
              pattern="|".join(kind for kind, *_ in _PARTS)),
        field("supplier", "供应商", "Supplier", required=True, max_length=100),
        field("batchNumber", "批次号", "Batch number", required=True, max_length=40),
        field("manufactureDate", "生产日期", "Manufacture date", "date", required=True),
        field("inspectionResult", "质检结果", "Quality inspection result", required=True,
              pattern="PASS|FAIL"),
        field("capacityKwh", "电池容量(kWh)", "Battery capacity (kWh)", "number", precision=1,
              minimum=1, maximum=300),
    )  # fmt: skip
    vehicle = published_template(
        ids["vehicle"], "整车", "Vehicle", INDUSTRY,
        field("vin", "车辆识别代号", "VIN", required=True, unique=True, min_length=17,
              max_length=17, pattern="[0-9A-HJ-NPR-Z]{17}", check_digit="vin"),
        field("brand", "品牌", "Brand", required=True, max_length=50),
        field("model", "车型", "Model", required=True, max_length=50),
        field("modelYear", "车型年份", "Model year", "number", required=True, precision=0,
              minimum=1980, maximum=2100),
        field("powertrain", "动力类型", "Powertrain", required=True, pattern="BEV|PHEV|HEV|ICE"),
        field("color", "颜色", "Colour", max_length=20),
        field("plant", "生产厂", "Assembly plant", required=True, max_length=100),
        field("manufactureDate", "生产日期", "Manufacture date", "date", required=True),
        field("batteryPack", "动力电池包", "Traction battery pack", "reference", **part_ref),
        field("driveMotor", "驱动电机", "Drive motor", "reference", **part_ref),
        field("parts", "关键零部件", "Key parts", "reference", required=True, multiple=True,
              max_items=500, **part_ref),
        object_type=1,
    )  # fmt: skip
    return part, vehicle


def _vin(wmi: str, vds: str, built: datetime.date, number: int) -> str:
    serial = number % 1_000_000
    plant = VIN_ALPHABET[(number // 1_000_000) % len(VIN_ALPHABET)]
    body = f"{wmi}{vds}0{model_year_code(built.year)}{plant}{serial:06d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def generate(prefixes: VehiclePrefixes, seed: int = 0) -> Iterator[Identifier]:
    """The vehicle stream (see the module docstring); deterministic by ``seed``."""
    rng = random.Random(seed)
    part, vehicle = (RecordMaker(t) for t in templates(prefixes))
    numbers = Counters()
    while True:
        number = numbers.next("vehicle")
        built = _START + datetime.timedelta(days=number // _VEHICLES_PER_DAY)
        vds, model, powertrain = rng.choice(_MODELS)
        parts: dict[str, str] = {}
        for n, (kind, name, code, supplier_name) in enumerate(_PARTS):
            supplier = prefixes.suppliers[n % len(prefixes.suppliers)]
            part_number = f"{code}{rng.choice((75, 90, 100)) if kind == 'battery' else 10}"
            serial = f"{part_number}-{numbers.next('part'):08d}"
            handle = f"{supplier}/PART-{serial}"
            made = built - datetime.timedelta(days=rng.randrange(3, 20))
            fields = {
                "partSerial": serial,
                "partNumber": part_number,
                "partName": name,
                "category": kind,
                "supplier": supplier_name,
                "batchNumber": f"{code}{made:%Y%m%d}",
                "manufactureDate": made.isoformat(),
                "inspectionResult": "PASS",
            }
            if kind == "battery":
                fields["capacityKwh"] = f"{int(part_number[2:]) * rng.uniform(0.98, 1.0):.1f}"
            yield part(handle, fields)
            parts[kind] = handle
        vin = _vin(prefixes.wmi, vds[:4] + "A", built, number)
        yield vehicle(
            f"{prefixes.oem}/VIN-{vin}",
            {
                "vin": vin,
                "brand": "星河汽车",
                "model": model,
                "modelYear": str(built.year),
                "powertrain": powertrain,
                "color": rng.choice(_COLORS),
                "plant": "上饶经开区整车工厂",
                "manufactureDate": built.isoformat(),
                "batteryPack": parts["battery"],
                "driveMotor": parts["motor"],
                "parts": references(list(parts.values())),
            },
        )


PACK: Pack[VehiclePrefixes] = Pack(
    name="vehicle",
    name_zh="汽车",
    name_en="Vehicles",
    default_prefixes=VehiclePrefixes(),
    templates=templates,
    generate=generate,
)
