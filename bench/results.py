"""bench/RESULTS.md holds several benchmarks' reports, each under its own ``## `` heading:
the speed table (``bench/run.py``: Machine, Results, Profile), the fraud replay
(``bench/replay.py``) and the chaos run (``bench/chaos.py``). Each command rewrites only its
own sections, so running one never erases another's committed figures."""

from __future__ import annotations

from pathlib import Path


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The text before the first ``## `` heading, and each (heading line, whole section)."""
    parts = ("\n" + text).split("\n## ")
    head, rest = parts[0].lstrip("\n"), parts[1:]
    return head, [("## " + p.split("\n", 1)[0], "## " + p.rstrip("\n") + "\n") for p in rest]


def write_sections(path: Path, text: str) -> None:
    """Write ``text`` (a title and/or ``## `` sections) into ``path``: each of its sections
    replaces the file's section of the same heading, in place; the file's other sections
    stay as they are; sections the file lacks go at the end; a title replaces the title."""
    old_head, old = _sections(path.read_text(encoding="utf-8")) if path.exists() else ("", [])
    new_head, new = _sections(text)
    replacement = dict(new)
    blocks = [new_head or old_head] if (new_head or old_head) else []
    for heading, body in old:
        blocks.append(replacement.pop(heading, body))
    blocks.extend(replacement.values())
    path.write_text("\n".join(b.rstrip("\n") + "\n" for b in blocks), encoding="utf-8")
