"""Price table: hardware -> dollars per hour, each price with its source and date, from an editable YAML file.

The shipped table also says what Cloud ML Engine's machine types and scale tiers consist
of (:func:`cmle_mapping`), in rows of the same table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import functools
import math
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from harness.config import load_mapping, read_config_text, strict_keys
from harness.errors import ConfigError

PRICES_ENV = "HARNESS_PRICES"
SHIPPED = "harness/hardware/prices.yaml"
ROW_FIELDS = ("price", "what", "source", "date")
CMLE_SECTIONS = {"cmle_machine_types": "rows", "cmle_tiers": "machines"}  # section -> its list field
_NEEDED = {
    "price": "$/hour, a finite number >= 0",
    "source": "a URL or citation for the price",
    "date": "the day the price was read, YYYY-MM-DD",
}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclasses.dataclass(frozen=True)
class PriceRow:
    key: str
    price: float  # $/hour
    what: str
    source: str  # "" for a row in the old flat form (`key: price`), which gives none
    date: datetime.date | None  # None likewise


class PriceTable(dict[str, float]):
    """key -> $/hour, what :func:`price_per_hour` reads; ``rows`` has each key's :class:`PriceRow`."""

    def __init__(self, rows: Mapping[str, PriceRow], file: str) -> None:
        super().__init__({key: row.price for key, row in rows.items()})
        self.rows = dict(rows)
        self.file = file


@dataclasses.dataclass(frozen=True)
class CmleEntry:
    """A Cloud ML Engine machine type (``parts``: price-table keys of one machine) or scale tier
    (``parts``: machine types, one per machine, master first)."""

    name: str
    parts: tuple[str, ...]
    what: str
    source: str
    date: datetime.date


@dataclasses.dataclass(frozen=True)
class CmleMapping:
    machine_types: Mapping[str, CmleEntry]
    tiers: Mapping[str, CmleEntry]


def load_prices(path: str | Path | None = None) -> PriceTable:
    """``path``, else ``$HARNESS_PRICES``, else the table shipped with harness."""
    chosen = path or os.environ.get(PRICES_ENV)
    file, table = _read(Path(chosen)) if chosen else _read(None)
    # the cmle sections describe the service, not prices: only the shipped copy's are read
    rows = {str(k): _row(str(k), v, file) for k, v in table.items() if k not in CMLE_SECTIONS}
    return PriceTable(rows, file)


@functools.cache
def cmle_mapping() -> CmleMapping:
    """Cloud ML Engine machine types and scale tiers, from the shipped table; every part is checked."""
    file, table = _read(None)
    rows = {str(k): v for k, v in table.items() if k not in CMLE_SECTIONS}
    sections: dict[str, dict[str, CmleEntry]] = {}
    for section, field in CMLE_SECTIONS.items():
        raw = table.get(section)
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"price table {file}: {section} must be a mapping of names to entries, but got {raw!r}")
        known = rows if field == "rows" else sections["cmle_machine_types"]
        sections[section] = {str(k): _cmle_entry(str(k), v, field, known, f"{file}: {section}") for k, v in raw.items()}
    return CmleMapping(sections["cmle_machine_types"], sections["cmle_tiers"])


def price_per_hour(hardware: str, prices: Mapping[str, float]) -> float | None:
    """Price of ``hardware`` (``"cpu"``, ``"gpu:NVIDIA H200 x2"``, ``"tpu:v3-8"``); None if unlisted.

    A count after `` x`` multiplies; parts joined by `` + `` (one machine's host VM and
    its GPUs: ``"cpu:n1-standard-8 + gpu:K80 x1"``) add up.
    """
    found = _lookup(hardware, prices)
    return None if found is None else sum(prices[key] * count for key, count in found)


def price_rows(hardware: str, prices: PriceTable) -> tuple[tuple[PriceRow, int], ...]:
    """The rows that price ``hardware``, each with its count; empty if any part is unlisted."""
    return tuple((prices.rows[key], count) for key, count in _lookup(hardware, prices) or ())


def split_count(text: str) -> tuple[str, int]:
    """``"gpu:V100 x4"`` -> ``("gpu:V100", 4)``; without a count, 1."""
    base, sep, count = text.rpartition(" x")
    return (base, int(count)) if sep and count.isascii() and count.isdigit() else (text, 1)


def _lookup(hardware: str, prices: Mapping[str, float]) -> list[tuple[str, int]] | None:
    found = []
    for part in hardware.split(" + "):
        kind, _, name = part.partition(":")
        if kind == "cpu":  # "cpu" (the machine harness runs on) or a named machine type: exact
            if part not in prices:
                return None
            found.append((part, 1))
            continue
        name, count = split_count(name)
        key = next((k for k in prices if _matches(k, kind, name)), None)
        if key is None:
            return None
        found.append((key, count))
    return found


def _matches(key: str, kind: str, name: str) -> bool:
    key_kind, _, needle = key.partition(":")
    return key_kind == kind and bool(needle) and needle.lower() in name.lower()


def _read(path: Path | None) -> tuple[str, dict[str, Any]]:
    if path is None:
        file, text = SHIPPED, resources.files("harness.hardware").joinpath("prices.yaml").read_text(encoding="utf-8")
    else:
        file, text = str(path), read_config_text(path, "price table")
    return file, load_mapping(text, f"price table {file}", "hardware to $/hour")


def _row(key: str, value: Any, file: str) -> PriceRow:
    if not isinstance(value, Mapping):  # the old flat form, `key: price`
        if not _is_price(value):
            raise ConfigError(f"price table {file}: {key!r} must be a price >= 0 in $/hour, but got {value!r}")
        return PriceRow(key, float(value), "", "", None)
    where = f"price table {file}: row {key!r}"
    strict_keys(value, ROW_FIELDS, where, "field")
    for field, needed in _NEEDED.items():
        if field not in value:
            raise ConfigError(f"{where}: missing {field} ({needed})")
    if not _is_price(value["price"]):
        raise ConfigError(f"{where}: price must be a finite number >= 0 ($/hour), but got {value['price']!r}")
    return PriceRow(
        key, float(value["price"]), _text(value, "what", where), _source(value, where), _date(value["date"], where)
    )


def _is_price(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value >= 0


def _text(entry: Mapping[str, Any], field: str, where: str) -> str:
    value = entry.get(field, "")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {field} must be text, but got {value!r}")
    return value


def _source(entry: Mapping[str, Any], where: str) -> str:
    value = _text(entry, "source", where)
    if not value.strip():
        raise ConfigError(f"{where}: source must be a URL or citation for the price, but got {value!r}")
    return value


def _date(value: Any, where: str) -> datetime.date:
    # YAML reads an unquoted 2026-11-01 as a date, and 2026-11-01 10:00 as a datetime: a time is too precise
    day = None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        day = value
    elif isinstance(value, str) and _ISO_DATE.fullmatch(value):
        with contextlib.suppress(ValueError):  # 2026-02-30: the message below
            day = datetime.date.fromisoformat(value)
    if day is not None:
        # the day a price was read cannot be ahead of today (a day of slack for time zones)
        latest = datetime.date.today() + datetime.timedelta(days=1)
        if day > latest:
            raise ConfigError(
                f"{where}: date must be the day the price was read, not in the future (today is "
                f"{datetime.date.today().isoformat()}), but got {day.isoformat()}"
            )
        return day
    raise ConfigError(f"{where}: date must be an ISO date (YYYY-MM-DD, the day the price was read), but got {value!r}")


def _cmle_entry(name: str, value: Any, field: str, known: Mapping[str, Any], section: str) -> CmleEntry:
    where = f"price table {section}.{name}"
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping with {field}, source and date, but got {value!r}")
    strict_keys(value, (field, "what", "source", "date"), where, "field")
    for needed in (field, "source", "date"):
        if needed not in value:
            raise ConfigError(f"{where}: missing {needed}")
    items = value[field]
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{where}: {field} must be a non-empty list of names, but got {items!r}")
    parts: list[str] = []
    for item in items:
        base, count = split_count(item)
        if base not in known or count < 1:
            what = "price-table key (count: ' xN' GPUs)" if field == "rows" else "machine type (' xN': N machines)"
            raise ConfigError(f"{where}: {field} must name a {what} of this table, but got {item!r}")
        # a machine keeps its GPU count; a tier repeats a machine type once per machine
        parts.extend([item] if field == "rows" else [base] * count)
    return CmleEntry(
        name, tuple(parts), _text(value, "what", where), _source(value, where), _date(value["date"], where)
    )
