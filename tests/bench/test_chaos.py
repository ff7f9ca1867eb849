"""The chaos benchmark (bench/chaos.py) at 1,000 sends, asserting its invariants: both
vendors' loopback servers behind fault-injecting proxies, the real SDKs, a real Redis.

At most one SMS per send; exactly one per accepted send, none for a send answered with an
error; every fault comes to what its vendor's table says (move, unconfirmed, 429, 502);
the failover counter agrees with the sends that moved.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench import chaos


@pytest.mark.redis
def test_a_thousand_sends_under_faults_keep_every_invariant(redis_url: str) -> None:
    report = chaos.run(1000, workers=8, seed=1205, storage_uri=redis_url)
    assert report.broken() == [], report.render()
    sends = report.sends
    assert len(sends) == 1000
    accepted = [s for s in sends if s.answer == "sent"]
    assert accepted and all(sum(s.sms.values()) == 1 for s in accepted)
    errors = [s for s in sends if s.answer not in ("sent", "unconfirmed")]
    assert errors and all(not s.sms for s in errors)
    # Every fault was exercised in both directions (Alibaba first, Tencent first).
    seen = Counter((s.fault, s.first) for s in sends)
    assert all(seen[(fault, vendor)] for fault in chaos.WEIGHTS for vendor in ("aliyun", "tencent"))
    moved = Counter(s.fault for s in sends if s.result() == "second")
    assert set(moved) == {"refused", "http_5xx", "provider_down"}
    assert sum(report.failovers.values()) == len([s for s in sends if s.result() == "second"]) + (
        seen[("both_down", "aliyun")] + seen[("both_down", "tencent")]
    )
    assert "invariants: all hold" in report.render()


def test_a_broken_invariant_is_reported() -> None:
    """The check is not vacuous: a send with a second SMS, or an error with one, breaks it."""
    twice = chaos.Send(0, "+8613900000000", "13900000000", "aliyun", "none", "sent")
    twice.sms = {"aliyun": 1, "tencent": 1}
    charged = chaos.Send(1, "+8613900000001", "13900000001", "aliyun", "flow_control")
    charged.answer, charged.sms = "throttled", {"aliyun": 1}
    report = chaos.Report([twice, charged], 0.0, "memory", {}, [], [])
    problems = report.broken()
    assert any("expected first, got sent-with-2-sms" in p for p in problems)
    assert any("expected throttled, got throttled-with-1-sms" in p for p in problems)
    assert "BROKEN" in report.render()


def test_results_replace_only_the_chaos_section(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## Table\n\nkept\n", encoding="utf-8")
    text = "sends attempted: 1\n\n| fault | x |\n|---|---|\n| none | 1 |"
    chaos.write_results(results, text, ["--sends", "1"])
    chaos.write_results(results, text.replace("1\n", "2\n", 1), ["--sends", "2"])
    written = results.read_text(encoding="utf-8")
    assert written.count("## Chaos") == 1 and "## Table\n\nkept" in written
    assert "sends attempted: 2" in written and "sends attempted: 1\n" not in written
