"""The fraud replay (bench/replay.py), short: one simulated day per scenario, 8,000 honest
users, the package's default settings. It asserts the issue's targets on every scenario:
at most 20 SMS billed per attacked block, at most 0.1 % of honest sends refused, no block
closed to everyone by one address — so a change of the guard or of its defaults that
misses them fails here, not only in the committed bench/RESULTS.md."""

from __future__ import annotations

import pytest

from bench import replay


@pytest.mark.parametrize("scenario", list(replay.SCENARIOS))
def test_the_guard_meets_its_targets(scenario: str) -> None:
    row = replay.replay(scenario, days=1, users=8_000)
    assert row.attack_requests > 0 and row.honest_sends > 7_000
    assert replay.verdict([row]) == [], replay.table([row])
    assert row.billed_max <= replay.TARGET_BILLED_PER_BLOCK
    assert row.refused_ratio <= replay.TARGET_HONEST_REFUSED
    assert row.closed_for_everyone == 0
    if scenario != "one address vs one block":
        # every attacked block was eventually refused by the guard
        assert row.time_to_block is not None


def test_one_address_alone_never_closes_its_block_but_many_do() -> None:
    """The same scenario with the source rule switched off (the old conversion-only guard)
    lets one address close the block for everyone: the replay sees what the rule fixed."""
    old = replay.replay(
        "one address vs one block",
        days=1,
        users=2_000,
        SMSCODE_GUARD_MIN_SOURCES=0,
        SMSCODE_GUARD_SOURCE_SENDS=0,
        SMSCODE_IP_SEND_LIMITS="1000/hour",
    )
    assert old.closed_for_everyone == 1
    new = replay.replay(
        "one address vs one block", days=1, users=2_000, SMSCODE_IP_SEND_LIMITS="1000/hour"
    )
    assert new.closed_for_everyone == 0


def test_results_are_written_under_their_own_heading(tmp_path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\n## Load\n\nfigures\n", "utf-8")
    replay.write_results(results, "## Fraud replay\n\nfirst")
    replay.write_results(results, "## Fraud replay\n\nsecond")
    text = results.read_text("utf-8")
    assert text.count("## Fraud replay") == 1 and "second" in text and "first" not in text
    assert text.startswith("# Results\n\n## Load\n\nfigures\n")
