from __future__ import annotations

from decimal import Decimal

import pytest

from edgeworkers.k8s.quantity import (
    FORMAT_ERROR,
    canonical_quantity,
    cpu_to_millicores,
    cpu_to_nanocpus,
    parse_quantity,
    to_bytes,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Decimal(1)),
        ("500m", Decimal("0.5")),
        ("100n", Decimal("1e-7")),
        ("10u", Decimal("1e-5")),
        ("1k", Decimal(1000)),
        ("2M", Decimal(2_000_000)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1.5Gi", Decimal(3 * 2**29)),
        ("1Ti", Decimal(2**40)),
        ("1Pi", Decimal(2**50)),
        ("1Ei", Decimal(2**60)),
        ("1e3", Decimal(1000)),
        ("1E-3", Decimal("0.001")),
        ("+2", Decimal(2)),
        (".5", Decimal("0.5")),
        (3, Decimal(3)),
        (0.25, Decimal("0.25")),
    ],
)
def test_parse_quantity(text: str | float, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Gb", "1 Gi", " 1", "Mi", "1.0.0x"])
def test_malformed_quantities_raise_kubernetes_message(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match the regular expression") as exc:
        parse_quantity(text)
    assert str(exc.value) == FORMAT_ERROR


@pytest.mark.parametrize("text", ["1Mm", "1.2.3"])
def test_unparseable_suffix_or_number_raises(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize(
    ("text", "millicores", "nanocpus"),
    [("500m", 500, 500_000_000), ("2", 2000, 2_000_000_000), ("0.1", 100, 100_000_000), ("1n", 1, 1), (1, 1000, 10**9)],
)
def test_cpu_conversions_round_up(text: str, millicores: int, nanocpus: int) -> None:
    assert cpu_to_millicores(text) == millicores
    assert cpu_to_nanocpus(text) == nanocpus


@pytest.mark.parametrize(
    ("text", "size"), [("128Mi", 134_217_728), ("1G", 10**9), ("1.5", 2), ("100m", 1), ("64Ki", 65536), (10, 10)]
)
def test_to_bytes_rounds_up(text: str, size: int) -> None:
    assert to_bytes(text) == size


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0.5", "500m"),
        ("2000m", "2"),
        ("1000", "1k"),
        ("1500", "1500"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("128Mi", "128Mi"),
        ("1024", "1024"),
        ("1e3", "1e3"),
        ("1.5n", "2n"),
        ("0", "0"),
        (2, "2"),
        (0.25, "250m"),
    ],
)
def test_canonical_quantity_is_what_kubernetes_writes_back(text: str | float, canonical: str) -> None:
    assert canonical_quantity(text) == canonical
