"""The notification fast path decides exactly as the full phonenumbers parse.

``normalize_phone_fast`` replays phonenumbers' metadata as one regular expression for the
two spellings bulk lists use (``1XXXXXXXXXX``, ``+861XXXXXXXXXX``). Any difference would
send a notification to a number the rest of the package refuses, or refuse one it accepts,
so the two paths are compared over every 5-digit prefix of ``1XXXXXXXXXX`` (the mobile
ranges are decided by 3 to 6 leading digits), the 6-digit prefixes with finer ranges, the
``+86`` spelling, other default regions and allowed-region settings, and near misses.
Nothing here is timed.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterator

import phonenumbers
import pytest

from flask_smscode.errors import InvalidPhone, RegionNotAllowed
from flask_smscode.phones import (
    all_fast_path_valid,
    normalize_phone,
    normalize_phone_fast,
    normalize_phones_fast,
)

SEED = 20261122
_CN = phonenumbers.PhoneMetadata.metadata_for_region("CN")


def full(raw: str, default_region: str, allowed: Collection[str] | None) -> tuple[str, str]:
    """The decision of the full parse: ("ok", e164), ("region", "") or ("invalid", "")."""
    try:
        return "ok", normalize_phone(raw, default_region, allowed)
    except RegionNotAllowed:
        return "region", ""
    except InvalidPhone:
        return "invalid", ""


def fast(raw: str, default_region: str, allowed: Collection[str] | None) -> tuple[str, str] | None:
    """The decision of the fast path, ``None`` when it leaves the number to the full parse."""
    try:
        e164 = normalize_phone_fast(raw, default_region, allowed)
    except RegionNotAllowed:
        return "region", ""
    return None if e164 is None else ("ok", e164)


def strips_national_prefix(nsn: str) -> bool:
    """parse() may strip a carrier code or national prefix here; the fast path leaves it."""
    return re.match(_CN.national_prefix_for_parsing, nsn) is not None


def mainland_numbers(rng: random.Random) -> Iterator[str]:
    """About 90,000 digit strings ``1XXXXXXXXXX``: every 5-digit prefix, 8 random tails
    each, then every 6-digit prefix of the ranges the metadata splits finer (161, 174, 179)."""
    for prefix in range(10_000, 20_000):
        for _ in range(8):
            yield f"{prefix}{rng.randrange(10**6):06d}"
    for head in ("161", "174", "179", "140", "144", "149", "165", "167", "192", "197"):
        for rest in range(1000):
            yield f"{head}{rest:03d}{rng.randrange(10**5):05d}"


def compare(
    raw: str, default_region: str, allowed: Collection[str] | None, counts: dict[str, int]
) -> None:
    expected = full(raw, default_region, allowed)
    got = fast(raw, default_region, allowed)
    if got is not None:
        assert got == expected, (raw, default_region, allowed)
        counts["decided"] += 1
    else:
        counts["deferred"] += 1
    counts[expected[0]] += 1


def test_bare_mainland_numbers_decide_like_the_full_parse() -> None:
    rng = random.Random(SEED)
    counts = dict.fromkeys(("decided", "deferred", "ok", "region", "invalid"), 0)
    for raw in mainland_numbers(rng):
        expected = full(raw, "CN", ("CN",))
        got = fast(raw, "CN", ("CN",))
        if got is None:
            # Only invalid numbers and carrier-code spellings are left to the full parse.
            assert expected[0] != "ok" or strips_national_prefix(raw), raw
        else:
            assert got == expected, raw
            assert expected == ("ok", "+86" + raw)
        counts["decided" if got else "deferred"] += 1
        counts[expected[0]] += 1
    # The sweep met both answers in quantity: it tested decisions, not one branch.
    assert counts["ok"] > 30_000 and counts["invalid"] > 30_000, counts
    assert counts["decided"] == counts["ok"], counts


def test_plus86_spelling_decides_like_the_full_parse_under_any_default_region() -> None:
    rng = random.Random(SEED + 1)
    counts = dict.fromkeys(("decided", "deferred", "ok", "region", "invalid"), 0)
    for prefix in range(10_000, 20_000):
        default_region = ("CN", "US", "HK")[prefix % 3]
        for _ in range(2):
            compare(f"+86{prefix}{rng.randrange(10**6):06d}", default_region, ("CN",), counts)
    assert counts["decided"] > 5_000 and counts["invalid"] > 5_000, counts


@pytest.mark.parametrize("allowed", [("CN",), ("HK", "US"), ("HK", "CN"), None, ("*",)])
def test_region_decisions_match(allowed: tuple[str, ...] | None) -> None:
    rng = random.Random(SEED + 2)
    counts = dict.fromkeys(("decided", "deferred", "ok", "region", "invalid"), 0)
    for _ in range(2000):
        nsn = f"1{rng.randrange(3, 10)}{rng.randrange(10**9):09d}"
        for raw in (nsn, "+86" + nsn):
            compare(raw, "CN", allowed, counts)
    assert counts["decided"] > 1000, counts
    if allowed == ("HK", "US"):
        assert counts["region"] > 1000 and counts["ok"] == 0, counts


NEAR_MISSES = [
    "1380013800",
    "138001380000",
    "+861380013800",
    "+86138001380000",
    "8613800138000",
    "008613800138000",
    "+85261234567",
    "+1 2015550123",
    "138 0013 8000",
    "138-0013-8000",
    "(+86)13800138000",
    "１３８００１３８０００",
    "+８６13800138000",
    "13800138000 ",
    " 13800138000",
    "+8613800138000\n",
    "013800138000",
    "+86013800138000",
    "٣٨٠٠١٣٨٠٠٠١",
    "1380013800\u0661",
    "+86 13800138000",
    "11800138000",
    "12593138000",
    "17951234567",
    "+8617951234567",
    "+8612345678901",
    "",
    "+",
    "+86",
]


@pytest.mark.parametrize("raw", NEAR_MISSES)
def test_other_spellings_are_left_to_the_full_parse(raw: str) -> None:
    """The fast path never answers for spellings outside its two shapes (nor for carrier
    codes), so whatever parse_phone does with them — separators, full-width digits,
    invisible marks — stays the one answer."""
    assert normalize_phone_fast(raw, "CN", ("CN",)) is None


def test_non_string_input_is_left_to_the_full_parse() -> None:
    assert normalize_phone_fast(13800138000, "CN", ("CN",)) is None  # type: ignore[arg-type]
    assert normalize_phone_fast(None, "CN", ("CN",)) is None  # type: ignore[arg-type]


def test_bare_digits_under_another_default_region_are_left_to_the_full_parse() -> None:
    assert normalize_phone_fast("13800138000", "US", ("CN",)) is None
    assert normalize_phone_fast("+8613800138000", "US", ("CN",)) == "+8613800138000"


@pytest.mark.parametrize("allowed", [("CN",), ("HK",), None])
@pytest.mark.parametrize("default_region", ["CN", "US"])
def test_list_form_answers_like_the_single_form(
    default_region: str, allowed: tuple[str, ...] | None
) -> None:
    """The notification client uses the list form; it must agree entry by entry (a region
    refusal is left to the full parse there, which refuses it the same way)."""
    rng = random.Random(SEED + 3)
    entries: list[object] = [*NEAR_MISSES, 13800138000, None]
    entries += [f"1{rng.randrange(10**10):010d}" for _ in range(2000)]
    entries += [f"+861{rng.randrange(10**10):010d}" for _ in range(2000)]
    listed = normalize_phones_fast(entries, default_region, allowed)
    for raw, e164 in zip(entries, listed, strict=True):
        single = fast(raw, default_region, allowed)  # type: ignore[arg-type]
        assert e164 == (single[1] if single and single[0] == "ok" else None), raw


def test_hypothesis_digit_strings() -> None:
    """Property form of the sweep, when Hypothesis is installed (it is not a dependency)."""
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hypothesis.settings(max_examples=1000, deadline=None, derandomize=True)
    @hypothesis.given(
        st.sampled_from(["", "+86", "+86", "86", "+"]),
        st.from_regex(r"\A1[0-9]{10}\Z"),
        st.sampled_from(["CN", "US"]),
        st.sampled_from([("CN",), ("US",), None]),
    )
    def check(head: str, nsn: str, region: str, allowed: tuple[str, ...] | None) -> None:
        got = fast(head + nsn, region, allowed)
        if got is not None:
            assert got == full(head + nsn, region, allowed)

    check()


# -- the one-pass check of a whole list (notifications) ------------------------------------


def entry_by_entry(
    entries: list[object], default_region: str, allowed: tuple[str, ...] | None
) -> bool:
    """What the one-pass check must answer: the list form accepts every entry."""
    listed = normalize_phones_fast(entries, default_region, allowed)
    return bool(entries) and all(e164 is not None for e164 in listed)


@pytest.mark.parametrize("default_region", ["CN", "US"])
def test_one_pass_check_decides_like_the_regex_on_every_6_digit_prefix(
    default_region: str,
) -> None:
    """The one-pass check replays a rewrite of the fast-path regex (a prefix tree of the
    accepted numbers): one-entry lists over every 6-digit prefix, both spellings."""
    rng = random.Random(SEED + 4)
    accepted = 0
    for prefix in range(100_000, 200_000):
        nsn = f"{prefix}{rng.randrange(10**5):05d}"
        for raw in (nsn, "+86" + nsn):
            expected = entry_by_entry([raw], default_region, ("CN",))
            assert all_fast_path_valid([raw], default_region, ("CN",)) is expected, raw
            accepted += expected
    assert accepted > 50_000  # the check is on for the installed metadata, not always False


MIXED_ENTRIES: list[object] = [
    *NEAR_MISSES,
    "86 13800138000",
    "+86 138 0013 8000",
    "13800138000\n13800138001",  # two valid numbers in one entry: not one valid number
    "\n13800138000",
    "13800138000\n",
    "",
    "   ",
    13800138000,
    None,
    b"13800138000",
    ["13800138000"],
]


@pytest.mark.parametrize("allowed", [("CN",), ("HK",), ("HK", "CN"), None, ("*",)])
@pytest.mark.parametrize("default_region", ["CN", "US"])
def test_one_pass_check_agrees_with_the_per_entry_path_on_mixed_lists(
    default_region: str, allowed: tuple[str, ...] | None
) -> None:
    """Valid lists (bare and ``+86``, duplicates included) with at most one odd entry put
    anywhere: the one-pass answer is the per-entry answer, whatever the entry."""
    rng = random.Random(SEED + 5)
    valid = [f"13{rng.randrange(10**9):09d}" for _ in range(300)]
    valid += [f"+8618{rng.randrange(10**9):09d}" for _ in range(300)]
    valid += valid[:50]  # duplicates: each still valid
    lists: list[list[object]] = [[], list(valid), list(valid[:1])]
    for odd in MIXED_ENTRIES:
        for at in (0, rng.randrange(1, len(valid)), len(valid)):
            lists.append([*valid[:at], odd, *valid[at:]])
        lists.append([odd])
    for entries in lists:
        expected = entry_by_entry(entries, default_region, allowed)
        assert all_fast_path_valid(entries, default_region, allowed) is expected, entries[:3]
    if allowed in (("CN",), None) and default_region == "CN":
        assert all_fast_path_valid(valid, default_region, allowed)


def test_one_pass_check_of_many_numbers_finds_one_invalid_entry_anywhere() -> None:
    numbers: list[object] = [f"139{i:08d}" for i in range(100_000)]
    assert all_fast_path_valid(numbers)
    for at in (0, 50_000, 99_999):
        for odd in ("1390000000", 13900000000, "1234567890a", "11900000000"):
            entries = list(numbers)
            entries[at] = odd
            assert not all_fast_path_valid(entries), (at, odd)


def test_pattern_expansion_reads_only_the_syntax_it_knows() -> None:
    """The rewrite expands the metadata patterns itself; anything it does not know turns
    the one-pass check off (the per-entry path decides) instead of guessing."""
    from flask_smscode.phones import _PatternExpander, _Unsupported

    expanded = _PatternExpander(r"1(?:[38]\d|4[57])\d{2,3}").expand()
    assert sorted(len(seq) for seq in expanded) == [5, 5, 6, 6]  # 2 branches x 2 lengths
    assert {seq[1] for seq in expanded} == {frozenset("38"), frozenset("4")}
    assert _PatternExpander(r"(1(?:[12]\d|79)\d\d)|0").expand() >= {(frozenset("0"),)}
    for pattern in (r"1.", r"1\D", r"[^1]", r"1+", r"1*", r"(?=1)", r"1{2}?", "1|(2", r"\w"):
        with pytest.raises(_Unsupported):
            _PatternExpander(pattern).expand()
