"""The speed benchmark (bench/run.py) end to end at ``--quick`` sizes: wrk against both
gunicorn apps, every scenario, worker CPU from /proc, callgrind on a handful of requests,
Redis memory, the notification, the import line and the durability setting.

It asserts that every row of the table is there and holds a positive number, and that the
report rewrites only its own sections of RESULTS.md. Never the targets: at these sizes and
on a shared machine the figures are noise (bench/README.md says how a verdict is made).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run

ROOT = Path(__file__).resolve().parent.parent.parent

SCENARIOS = [
    "GET endpoint",
    "naive verify, right code",
    "naive verify, wrong code",
    "careful verify, right code",
    "careful verify, wrong code",
    "verify, right code",
    "verify, wrong code",
    "SendSms endpoint",
    "send",
]


def _rows(markdown: str) -> dict[str, tuple[str, str]]:
    """Table rows by figure name: (value cell, verdict cell). A name that two sections
    share (the worker CPU and the instructions of a scenario) gets its section's first
    word: "Instructions: verify, right code"."""
    rows: dict[str, tuple[str, str]] = {}
    section = ""
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not line.startswith("|"):
            continue
        if cells[0].startswith("**"):
            section = cells[0].strip("*").split()[0]
        elif cells[1] and cells[0] != "Figure":
            name = cells[0] if cells[0] not in rows else f"{section}: {cells[0]}"
            rows[name] = (cells[1], cells[3])
    return rows


def _number(cell: str) -> float:
    match = re.match(r"-?[0-9][0-9,]*(\.[0-9]+)?", cell)
    assert match, f"not a number: {cell!r}"
    return float(match.group().replace(",", ""))


@pytest.mark.redis
def test_the_quick_benchmark_prints_every_figure(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmark results\n\nold\n\n## Chaos\n\nchaos table\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = results.read_text(encoding="utf-8")
    assert "## Chaos\n\nchaos table" in report  # another benchmark's section stays
    assert "## Machine" in report and "## Results" in report and "## Profile" in report
    assert "load average (1, 5, 15 min) at start:" in report
    rows = _rows(report)

    expected = [f"{name}" for name in SCENARIOS]  # worker CPU per request
    expected += [f"{name}: {stat}" for name in SCENARIOS for stat in ("requests/s", "p50", "p99")]
    expected += [f"{name}: round trips" for name in SCENARIOS if name != "SendSms endpoint"]
    expected += [f"{mine} ÷ {base}: worker CPU" for mine, base, _ in run.PAIRS]
    expected += [
        "hand-written `SET code EX 300`",
        "package: live codes",
        "package ÷ hand-written",
        "package: left per phone after the codes expired",
        "package: the same, MEMORY USAGE of the keys left ÷ phones",
        "package: left per phone with the expired fields dropped (the layout's floor)",
        "`import flask`",
        "`from flask_smscode import sms_bp` on top",
        "raw SDK: wall time",
        "package: wall time",
        "package ÷ raw SDK",
        "package: time to first call",
        "hand-written: MEMORY USAGE of one code key",
        "package: MEMORY USAGE of one live phone hash",
        # the verify's layers (the measured floor of the verify targets)
        "GET endpoint (WSGI)",
        "redis-py GET (the GET endpoint's store call)",
        "careful verify, wrong code (WSGI)",
        "verify, wrong code (WSGI)",
        "service.verify (no Flask request)",
        "store.check_code (one EVALSHA)",
        "package: Flask + view around the service",
        "package: service around the store call",
        "GET endpoint: Flask + view around its store call",
        "careful ÷ package through WSGI (the in-process ratio)",
    ]
    expected += [
        f"{op}, {run.MIN_REPLICAS}={value}: {stat}"
        for value in (1, 0)
        for op in ("send", "verify")
        for stat in ("p50", "p99")
    ]
    missing = [name for name in expected if name not in rows]
    assert not missing, f"missing rows {missing} in\n{report}"
    for name in expected:
        value, _ = rows[name]
        if value == "n/a (setting absent)" and run.MIN_REPLICAS in name:
            continue  # the durability setting's own change has not landed
        assert _number(value) > 0, f"{name}: {value}"
    # Instructions: the callgrind loop minus the empty loop (--quick: two scenarios).
    for name in run.QUICK.callgrind_scenarios:
        value, _ = rows[f"Instructions: {name}"]
        assert value.endswith(" k") and _number(value) > 0
    verdict_rows = [n for n in rows if n.endswith((": worker CPU", ": instructions"))]
    assert "verify, right code ÷ GET endpoint: instructions" in verdict_rows
    # A verdict is printed beside every target (its value is not asserted).
    assert all(rows[n][1] in ("met", "MISSED") for n in verdict_rows if "naive" not in n)
