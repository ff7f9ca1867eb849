"""bench/results.py: each benchmark rewrites only its own sections of bench/RESULTS.md (the
speed run once erased the committed fraud-replay and chaos reports)."""

from __future__ import annotations

from pathlib import Path

from bench.results import write_sections


def test_a_report_replaces_its_own_sections_and_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text(
        "# Benchmark results\n\nold run\n\n## Results\n\nold table\n\n"
        "## Fraud replay\n\nreplay table\n\n## Chaos\n\nchaos table\n",
        encoding="utf-8",
    )
    write_sections(path, "# Benchmark results\n\nnew run\n\n## Results\n\nnew table\n")
    assert path.read_text(encoding="utf-8") == (
        "# Benchmark results\n\nnew run\n\n## Results\n\nnew table\n\n"
        "## Fraud replay\n\nreplay table\n\n## Chaos\n\nchaos table\n"
    )
    write_sections(path, "## Chaos\n\nnew chaos\n\n## Soak\n\nsoak table\n")
    assert path.read_text(encoding="utf-8") == (
        "# Benchmark results\n\nnew run\n\n## Results\n\nnew table\n\n"
        "## Fraud replay\n\nreplay table\n\n## Chaos\n\nnew chaos\n\n## Soak\n\nsoak table\n"
    )


def test_a_first_report_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_sections(path, "## Chaos\n\ntable\n")
    assert path.read_text(encoding="utf-8") == "## Chaos\n\ntable\n"
