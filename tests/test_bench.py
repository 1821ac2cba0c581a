"""The benchmark's pure helpers: statistics, table rendering and import profiles. No docker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# bench/ is a folder of the repository, not part of the installed package. It
# goes last on the path: first, the repository's own nodeops folder would shadow
# the installed package, which alone has nodeops.templates.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from bench.report import (  # noqa: E402 (needs the path set above)
    Comparison,
    Measurement,
    Results,
    format_measurement,
    format_value,
    median,
    parse_importtime,
    render_markdown,
    render_table,
    results_to_json,
    spread,
)


def make_results() -> Results:
    row = Comparison(
        "2. Task overhead",
        "small",
        Measurement("nodeops test", [1.2, 1.0, 1.1]),
        Measurement("docker compose run", [1.0, 1.0, 1.0]),
        target="ratio <= 1.10",
        met=True,
    )
    missed = Comparison(
        "1. Start-up", "-", Measurement("nodeops --list", [0.2, 0.3]), target="< 150 ms", met=False
    )
    return Results(
        date="2026-12-04 12:00 UTC",
        machine={"cores": "2", "memory": "4.0 GiB"},
        versions={"python": "3.11.2"},
        options={"repeat": 3},
        rows=[row, missed],
        notes=["a note"],
    )


def test_median_odd_and_even() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5


def test_spread_is_min_and_max() -> None:
    assert spread([0.3, 0.1, 0.2]) == (0.1, 0.3)


@pytest.mark.parametrize("helper", [median, spread])
def test_helpers_reject_no_samples(helper) -> None:
    with pytest.raises(ValueError):
        helper([])


def test_format_value_units() -> None:
    assert format_value(0.1234, "s") == "123 ms"
    assert format_value(2.5, "s") == "2.50 s"
    assert format_value(259.63, "MB") == "259.6 MB"


def test_format_measurement_cases() -> None:
    assert format_measurement(None) == "-"
    assert format_measurement(Measurement("x", [1.5])) == "1.50 s (n=1)"
    assert format_measurement(Measurement("x", [0.1, 0.3, 0.2])) == "200 ms (100 ms to 300 ms, n=3)"


def test_comparison_ratio() -> None:
    row = make_results().rows[0]
    assert row.ratio == pytest.approx(1.1)
    assert make_results().rows[1].ratio is None


def test_render_table_escapes_bars() -> None:
    table = render_table(["a", "b"], [["1", "x|y"]])
    assert table.splitlines() == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |"]


def test_render_markdown_contents() -> None:
    page = render_markdown(make_results())
    assert "- machine: cores 2, memory 4.0 GiB" in page
    assert "- versions: python 3.11.2" in page
    assert page.index("## 1. Start-up") < page.index("## 2. Task overhead")
    assert "| small | nodeops test | 1.10 s (1.00 s to 1.20 s, n=3) |" in page
    assert "**missed**" in page
    assert "- a note" in page


def test_results_to_json_adds_statistics() -> None:
    data = results_to_json(make_results())
    json.dumps(data)
    first = data["rows"][0]
    assert first["subject"]["median"] == pytest.approx(1.1)
    assert first["subject"]["min"] == pytest.approx(1.0)
    assert first["ratio"] == pytest.approx(1.1)
    assert data["rows"][1]["reference"] is None


def test_parse_importtime_depth_and_order() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |   invoke.util",
            "import time:       200 |       5000 | invoke",
            "import time:        50 |         50 |     invoke.deep",
            "import time:       300 |        300 | site",
            "unrelated line",
        ]
    )
    assert parse_importtime(stderr, max_depth=1) == [
        ("invoke", 0, 0.005),
        ("site", 0, 0.0003),
        ("invoke.util", 1, 0.0001),
    ]
    assert parse_importtime(stderr, max_depth=0, limit=1) == [("invoke", 0, 0.005)]
