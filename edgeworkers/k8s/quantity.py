"""Kubernetes resource quantities (``k8s.io/apimachinery/pkg/api/resource``): ``500m``, ``128Mi``, ``1e3``.

Values are exact ``Decimal``s; conversions to integers round up, as ``Quantity.Value()`` does.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{QUANTITY_PATTERN}'"
SUFFIX_ERROR = "unable to parse quantity's suffix"
NUMERIC_ERROR = "unable to parse numeric part of quantity"

_QUANTITY = re.compile(QUANTITY_PATTERN)
_EXPONENT = re.compile(r"^[eE]([-+]?[0-9]+)$")
_SUFFIXES = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

Quantity = str | int | float | Decimal


def parse_quantity(value: Quantity) -> Decimal:
    """The exact value of a quantity; ``ValueError`` with Kubernetes' message when it is malformed."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(repr(value))
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(FORMAT_ERROR)
    number, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation:
        raise ValueError(NUMERIC_ERROR) from None
    if suffix in _SUFFIXES:
        return base * _SUFFIXES[suffix]
    exponent = _EXPONENT.fullmatch(suffix)
    if not exponent:
        raise ValueError(SUFFIX_ERROR)
    return base.scaleb(int(exponent.group(1)))


def _format_of(value: Quantity) -> str:
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if match:
        suffix = match.group(2)
        if suffix.endswith("i"):
            return "BinarySI"
        if _EXPONENT.fullmatch(suffix):
            return "DecimalExponent"
    return "DecimalSI"


_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = {60: "Ei", 50: "Pi", 40: "Ti", 30: "Gi", 20: "Mi", 10: "Ki"}


def canonical_quantity(value: Quantity) -> str:
    """The quantity as Kubernetes writes it back (``Quantity.String()``): ``0.5`` -> ``500m``, ``1.5Gi`` -> ``1536Mi``."""
    number = parse_quantity(value)
    fmt = _format_of(value)
    sign, number = ("-", -number) if number < 0 else ("", number)
    if fmt == "BinarySI" and number >= 1024 and number == number.to_integral_value():
        whole = int(number)
        for power, suffix in _BINARY_SUFFIXES.items():
            if whole % 2**power == 0:
                return f"{sign}{whole // 2**power}{suffix}"
        return f"{sign}{whole}"
    nanos = math.ceil(number * 10**9)  # Kubernetes keeps nano precision, rounding up
    if nanos == 0:
        return "0"
    exponent = -9
    while exponent < 18 and nanos % 1000 == 0:
        nanos //= 1000
        exponent += 3
    if fmt == "DecimalExponent":
        return f"{sign}{nanos}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{nanos}{_DECIMAL_SUFFIXES[exponent]}"


def cpu_to_millicores(value: Quantity) -> int:
    """``500m`` -> 500, ``2`` -> 2000 (rounded up, like ``MilliValue()``)."""
    return math.ceil(parse_quantity(value) * 1000)


def cpu_to_nanocpus(value: Quantity) -> int:
    """CPUs in Docker's ``NanoCpus`` units: ``500m`` -> 500_000_000."""
    return math.ceil(parse_quantity(value) * 1_000_000_000)


def to_bytes(value: Quantity) -> int:
    """``128Mi`` -> 134217728; fractional bytes round up."""
    return math.ceil(parse_quantity(value))
