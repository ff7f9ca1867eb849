"""send_message parses while it sends (skip_invalid) and stays all-or-nothing otherwise.

Order, not time, is asserted: the point is that a 100,000-number notification's first call
does not wait for the whole list to be parsed, and that a bad number at the end of a long
list still stops everything before the first call.
"""

from __future__ import annotations

from typing import Any

import pytest

from flask_smscode import AliyunSms, AliyunSmsError, SendSmsResponse
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET

NOTIFY = {"name": "张三", "time": "22:00"}


def mobiles(count: int) -> list[str]:
    return [f"1390013{i:04d}" for i in range(count)]


@pytest.fixture
def sms(sms_server: Any) -> AliyunSms:
    return AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=sms_server.endpoint,
        protocol="http",
        timeout=5,
        max_concurrency=1,
    )


def count_parsed_chunks(sms: AliyunSms, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Spy on the client's list normalisation (the real method runs): sizes of the chunks
    parsed so far."""
    parsed: list[int] = []
    real = sms._normalize_entries

    def spy(entries: Any) -> list[str | None]:
        parsed.append(len(entries))
        return real(entries)

    monkeypatch.setattr(sms, "_normalize_entries", spy)
    return parsed


def test_skip_invalid_sends_before_the_list_is_parsed(sms, sms_server, monkeypatch):
    parsed = count_parsed_chunks(sms, monkeypatch)
    parsed_when_answered: list[int] = []

    def on_batch(response: SendSmsResponse) -> None:
        parsed_when_answered.append(len(parsed))

    numbers = [*mobiles(3500), "12345"]  # 4 calls; one invalid entry, skipped
    answers = sms.send_message(numbers, NOTIFY, "SMS_NOTIFY", skip_invalid=True, on_batch=on_batch)
    assert [len(a.phone_numbers) for a in answers] == [1000, 1000, 1000, 500]
    assert parsed == [1000, 1000, 1000, 501]  # chunk by chunk, never the whole list
    # One call in flight: the first answer came back while chunks 3 and 4 were unparsed.
    assert parsed_when_answered[0] <= 2 < len(parsed)
    assert sum(len(m.phone_numbers) for m in sms_server.sent) == 3500


def test_default_mode_checks_everything_before_the_first_call(sms, sms_server, monkeypatch):
    parsed = count_parsed_chunks(sms, monkeypatch)
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message([*mobiles(3500), "12345"], NOTIFY, "SMS_NOTIFY")
    assert info.value.code == 46001
    assert parsed == [3501]
    assert sms_server.requests == []  # nothing was sent


def test_duplicates_across_chunks_are_sent_once_in_first_order(sms, sms_server):
    numbers = mobiles(1500)
    spelled = [f"+86{n}" for n in numbers[:1200]]  # the same phones, another spelling
    answers = sms.send_message([*numbers, *spelled], NOTIFY, "SMS_NOTIFY", skip_invalid=True)
    assert [len(a.phone_numbers) for a in answers] == [1000, 500]
    sent = [p for a in answers for p in a.phone_numbers]
    assert sent == numbers


def test_only_invalid_entries_with_skip_invalid_is_an_empty_list(sms, sms_server):
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message(["12345", "not a phone"], NOTIFY, "SMS_NOTIFY", skip_invalid=True)
    assert info.value.code == 46001 and "empty" in info.value.message
    assert sms_server.requests == []


def test_fast_and_full_spellings_mix(sms, sms_server):
    """Spellings outside the fast path (spaces, full-width digits, 0086) still go through
    the full parse, in their place in the list."""
    numbers = [
        "13900130001",
        "+86 139 0013 0002",
        "１３９００１３０００３",
        "008613900130004",
        "+8613900130005",
    ]
    [answer] = sms.send_message(numbers, NOTIFY, "SMS_NOTIFY")
    assert answer.phone_numbers == (
        "13900130001",
        "13900130002",
        "13900130003",
        "13900130004",
        "13900130005",
    )


def many_mobiles(count: int) -> list[str]:
    return [f"139{i:08d}" for i in range(count)]


@pytest.mark.parametrize("odd", ["1390000000", "13900000000x", 13900000000, None, "12345"])
def test_one_invalid_entry_last_in_a_long_list_stops_everything(
    sms: AliyunSms, sms_server: Any, odd: Any
) -> None:
    """The one-pass check (every entry at once) keeps the contract of the per-entry path:
    an invalid entry anywhere, even last of 100,000, is 46001 before any SendSms call."""
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message([*many_mobiles(100_000), odd], NOTIFY, "SMS_NOTIFY")
    assert info.value.code == 46001
    assert "1 entr(ies)" in info.value.message
    assert sms_server.requests == []  # nothing was sent


def test_a_valid_list_is_checked_in_one_pass_and_sent_in_order(
    sms: AliyunSms, sms_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain mainland numbers skip the per-entry path; duplicates (in either spelling,
    across batches) are still sent once, at their first position."""
    parsed = count_parsed_chunks(sms, monkeypatch)
    numbers = many_mobiles(2500)
    listed = [*numbers[:1500], *numbers[:1200], *(f"+86{n}" for n in numbers[1000:]), "  "]
    answers = sms.send_message(iter(listed), NOTIFY, "SMS_NOTIFY")  # one-shot iterable
    assert parsed == []  # no entry went through the per-entry path
    assert [len(a.phone_numbers) for a in answers] == [1000, 1000, 500]
    assert [p for a in answers for p in a.phone_numbers] == numbers
    assert sum(len(m.phone_numbers) for m in sms_server.sent) == 2500


def test_a_one_shot_iterable_with_an_invalid_entry_is_read_once(
    sms: AliyunSms, sms_server: Any
) -> None:
    """When the one-pass check says no, the per-entry path reads the same copy of the list
    (a generator is not read twice) and names the invalid entry."""
    numbers = iter([*many_mobiles(1500), "12345", "+86 139 0000 0001"])
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message(numbers, NOTIFY, "SMS_NOTIFY")
    assert info.value.code == 46001 and "1 entr(ies)" in info.value.message
    assert sms_server.requests == []
