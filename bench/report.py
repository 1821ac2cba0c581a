"""Statistics and rendering of benchmark results; pure functions, no docker."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence


@dataclass
class Measurement:
    """Repeated samples of one command or quantity, in ``unit`` (s or MB)."""

    label: str
    samples: list[float]
    unit: str = "s"

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def spread(self) -> tuple[float, float]:
        return spread(self.samples)


@dataclass
class Comparison:
    """One row of the results: a measurement of nodeops' way against its reference."""

    section: str
    app: str
    subject: Measurement
    reference: Measurement | None = None
    #: The target as text, for example "< 0.150 s" or "ratio <= 1.10".
    target: str = ""
    #: Whether the target is met; None when the row has no target.
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference is None or not self.reference.samples or self.reference.median == 0:
            return None
        return self.subject.median / self.reference.median


@dataclass
class Results:
    """Everything one run measured, with the machine and versions it ran on."""

    date: str
    machine: dict[str, Any]
    versions: dict[str, str]
    options: dict[str, Any]
    rows: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def median(samples: Sequence[float]) -> float:
    """Return the median of ``samples``; raise ValueError when there are none."""
    if not samples:
        raise ValueError("median of no samples")
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> tuple[float, float]:
    """Return the minimum and maximum of ``samples``; raise ValueError when there are none."""
    if not samples:
        raise ValueError("spread of no samples")
    return min(samples), max(samples)


def format_value(value: float, unit: str) -> str:
    """Format a value with its unit: seconds below 1 as milliseconds, MB with one decimal."""
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:g} {unit}"


def format_measurement(measurement: Measurement | None) -> str:
    """Format a measurement as "median (min-max, n=N)", or a dash when it is missing."""
    if measurement is None or not measurement.samples:
        return "-"
    low, high = measurement.spread
    text = format_value(measurement.median, measurement.unit)
    if len(measurement.samples) == 1:
        return f"{text} (n=1)"
    low_text = format_value(low, measurement.unit)
    high_text = format_value(high, measurement.unit)
    return f"{text} ({low_text} to {high_text}, n={len(measurement.samples)})"


def format_verdict(met: bool | None) -> str:
    if met is None:
        return ""
    return "met" if met else "**missed**"


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Render a Markdown table; a ``|`` inside a cell is escaped."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [line(header), line(["---"] * len(header))]
    lines += [line(row) for row in rows]
    return "\n".join(lines)


def render_markdown(results: Results) -> str:
    """Render the results as a Markdown page: machine, versions, then one table per section."""
    machine = ", ".join(f"{key} {value}" for key, value in results.machine.items())
    versions = ", ".join(f"{key} {value}" for key, value in results.versions.items())
    options = ", ".join(f"{key}={value}" for key, value in results.options.items())
    parts = [
        "# nodeops benchmark results",
        "",
        f"- date: {results.date}",
        f"- machine: {machine}",
        f"- versions: {versions}",
        f"- options: {options}",
        "",
        "Each cell shows the median, then the minimum to maximum over n runs.",
    ]

    header = ["app", "measurement", "nodeops", "reference", "reference value", "ratio", "target", "verdict", "note"]
    sections: dict[str, list[Comparison]] = {}
    for row in results.rows:
        sections.setdefault(row.section, []).append(row)

    for section, rows in sorted(sections.items()):
        cells = [
            [
                row.app,
                row.subject.label,
                format_measurement(row.subject),
                row.reference.label if row.reference else "",
                format_measurement(row.reference) if row.reference else "",
                f"{row.ratio:.2f}" if row.ratio is not None else "",
                row.target,
                format_verdict(row.met),
                row.note,
            ]
            for row in rows
        ]
        parts += ["", f"## {section}", "", render_table(header, cells)]

    if results.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    if results.errors:
        parts += ["", "## Errors", ""] + [f"- {error}" for error in results.errors]
    return "\n".join(parts) + "\n"


def results_to_json(results: Results) -> dict[str, Any]:
    """Convert the results to plain data for JSON, with each median, spread and ratio computed."""
    data = asdict(results)
    for row, source in zip(data["rows"], results.rows):
        for key in ("subject", "reference"):
            measurement = getattr(source, key)
            if measurement is not None and measurement.samples:
                row[key]["median"] = measurement.median
                row[key]["min"], row[key]["max"] = measurement.spread
        row["ratio"] = source.ratio
    return data


def parse_importtime(stderr: str, max_depth: int = 2, limit: int = 10) -> list[tuple[str, int, float]]:
    """Parse ``python -X importtime`` output into its slowest imports.

    Returns up to ``limit`` entries of module name, nesting depth (0 for a
    top-level import) and cumulative import time in seconds, slowest first,
    leaving out imports nested deeper than ``max_depth``.
    """
    imports = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if not cumulative.strip().isdigit():
            continue
        # One space follows the bar; each nesting level adds two more.
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        if depth > max_depth:
            continue
        imports.append((name.strip(), depth, int(cumulative) / 1_000_000))
    imports.sort(key=lambda item: item[2], reverse=True)
    return imports[:limit]
