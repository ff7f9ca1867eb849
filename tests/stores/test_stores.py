"""The store contract, run unchanged against ``MemoryStore`` and ``RedisStore`` (single Redis,
Cluster and Sentinel).

The stores must make the same decisions: development runs on memory, production on Redis,
and a difference between them is a bug nobody sees until it is live. Time-driven tests use
a fake clock on memory and short real windows on Redis; the few that need hours run on
memory only. Redis-only properties (one round trip, bytes per live code, deadlines after a
stall, old keys, URIs and options) are at the bottom.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_smscode import sms_bp
from flask_smscode.codes import hash_code
from flask_smscode.config import Limit
from flask_smscode.errors import ConfigurationError, StorageUnavailable
from flask_smscode.stores import (
    ClientLimits,
    MemoryStore,
    Refusal,
    SendDecision,
    Store,
    VerifyOutcome,
    store_from_uri,
)
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.redis_server import RedisServer, free_port

PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"
SECRET = b"store-test-secret"
HOURLY = Limit(5, 3600, "5 per 1 hour")
DAILY = Limit(10, 86400, "10 per 1 day")
LIMITS = (HOURLY, DAILY)


def h(code: str, phone: str = PHONE, purpose: str = "login") -> str:
    """The code hash as the service stores it: 96 bits of the HMAC, base64 (16 chars)."""
    digest = bytes.fromhex(hash_code(SECRET, phone, purpose, code)[:24])
    return base64.urlsafe_b64encode(digest).decode()


class FakeClock:
    """A monotonic clock the memory store reads; tests move it instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_uri: str, key_prefix: str, clock: FakeClock) -> Iterator[Store]:
    """One fresh store per test: memory (on a fake clock), Redis, Cluster, Sentinel."""
    s: Store
    if store_uri == "memory://":
        s = MemoryStore(key_prefix=key_prefix, clock=clock)
    else:
        s = store_from_uri(store_uri, key_prefix=key_prefix)
    yield s
    s.close()


def advance(store: Store, clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` pass: on the fake clock for memory, for real on Redis."""
    if isinstance(store, MemoryStore):
        clock.advance(seconds)
    else:
        time.sleep(seconds)


# Windows of an hour or a day pass only on the memory store's fake clock; the same decisions
# on Redis are covered with 1-second windows by the tests that use ``advance``.
memory_only = pytest.mark.parametrize("store_uri", ["memory"], indirect=True)


def decide(
    store: Store,
    code: str = "123456",
    send_id: str = "send-1",
    *,
    phone: str = PHONE,
    purpose: str = "login",
    ttl: int = 300,
    cooldown: int = 0,
    limits: tuple[Limit, ...] = LIMITS,
    client: ClientLimits | None = None,
) -> SendDecision:
    return store.reserve_send(
        phone,
        purpose,
        h(code, phone, purpose),
        send_id,
        ttl=ttl,
        cooldown=cooldown,
        limits=limits,
        client=client,
    )


def reserve(store: Store, code: str = "123456", send_id: str = "send-1", **kwargs: Any) -> int:
    """0 when reserved, else the wait; without a client only the phone can refuse."""
    decision = decide(store, code, send_id, **kwargs)
    if decision.reserved:
        assert decision.retry_after == 0
        return 0
    assert decision.refused_by is Refusal.PHONE
    assert decision.retry_after >= 1
    return decision.retry_after


def check(
    store: Store,
    code: str,
    *,
    phone: str = PHONE,
    purpose: str = "login",
    max_attempts: int = 5,
    window: int = 900,
) -> Any:
    return store.check_code(
        phone, purpose, h(code, phone, purpose), max_attempts=max_attempts, window=window
    )


def stored_items(store: Store) -> dict[str, str]:
    """Every key the store holds under its prefix, with its value rendered as text."""
    prefix = store.keys.prefix  # type: ignore[attr-defined]
    if isinstance(store, MemoryStore):
        # No public listing on memory: its hashes and token ids are its whole state.
        items = {key: repr(fields) for key, fields in store._hashes.items()}
        items.update({store.keys.token(t): repr(exp) for t, exp in store._tokens.items()})
        return items
    client = store.client  # type: ignore[attr-defined]
    items = {}
    for key in client.scan_iter(match=prefix + ":*"):
        if key.startswith(prefix + ":stats:"):
            continue  # the operators' hourly counters, kept 14 days (stores/stats.py)
        kind = client.type(key)
        items[key] = repr(client.hgetall(key) if kind == "hash" else client.get(key))
    return items


# -- reserve_send: cooldown and caps --------------------------------------------------------


def test_reserve_returns_reserved_then_the_cooldown_wait(store: Store) -> None:
    assert decide(store, cooldown=60) == SendDecision()
    refused = decide(store, "654321", "send-2", cooldown=60)
    assert refused.refused_by is Refusal.PHONE and not refused.reserved
    assert 59 <= refused.retry_after <= 60
    status = store.status(PHONE, "login", limits=LIMITS)
    assert 59 <= status.cooldown <= 60
    assert status.out_id == "send-1"  # the refused send stored nothing


def test_a_refused_reserve_keeps_the_live_code(store: Store) -> None:
    assert reserve(store, "111111", "send-1", cooldown=60) == 0
    assert reserve(store, "222222", "send-2", cooldown=60) > 0
    assert check(store, "222222").outcome is VerifyOutcome.INVALID
    assert check(store, "111111").outcome is VerifyOutcome.OK


def test_cooldown_is_per_phone(store: Store) -> None:
    assert reserve(store, cooldown=60) == 0
    assert reserve(store, cooldown=60, phone=OTHER_PHONE) == 0
    assert reserve(store, cooldown=60, purpose="signup") > 0  # same phone, other purpose


def test_cooldown_zero_allows_immediate_resends_until_the_hourly_cap(store: Store) -> None:
    limits = (Limit(3, 3600, "3 per 1 hour"), Limit(10, 86400, "10 per 1 day"))
    for n in range(3):
        assert reserve(store, send_id=f"send-{n}", limits=limits) == 0, n
    wait = reserve(store, send_id="send-3", limits=limits)
    assert 3590 <= wait <= 3600
    status = store.status(PHONE, "login", limits=limits)
    assert status.sends == {"3 per 1 hour": 3, "10 per 1 day": 3}
    assert status.cooldown == 0
    assert status.out_id == "send-2"


def test_daily_cap_holds_when_the_hourly_one_does_not(store: Store) -> None:
    limits = (Limit(10, 3600, "10 per 1 hour"), Limit(2, 86400, "2 per 1 day"))
    assert reserve(store, send_id="a", limits=limits) == 0
    assert reserve(store, send_id="b", limits=limits) == 0
    wait = reserve(store, send_id="c", limits=limits)
    assert 86390 <= wait <= 86400
    assert store.status(PHONE, "login", limits=limits).sends == {
        "10 per 1 hour": 2,
        "2 per 1 day": 2,
    }


def test_caps_count_refused_attempts_not_at_all(store: Store) -> None:
    """A refused reserve must not use up the cap (else one spammer locks the phone longer)."""
    limits = (Limit(2, 3600, "2 per 1 hour"),)
    assert reserve(store, send_id="a", limits=limits, cooldown=60) == 0
    for _ in range(5):
        assert reserve(store, send_id="x", limits=limits, cooldown=60) > 0
    assert store.status(PHONE, "login", limits=limits).sends == {"2 per 1 hour": 1}


def test_wait_is_the_longest_of_cooldown_and_caps(store: Store) -> None:
    """When the cap is used up, answering "retry in 60 s" sends the client back to be refused."""
    limits = (Limit(1, 3600, "1 per 1 hour"),)
    assert reserve(store, cooldown=60, limits=limits) == 0
    wait = reserve(store, "654321", "send-2", cooldown=60, limits=limits)
    assert 3590 <= wait <= 3600


def test_two_limits_with_the_same_window_count_each_send_once(store: Store) -> None:
    """ "2/hour;10/60 minutes" is legal config; one send must not count twice against it."""
    limits = (Limit(2, 3600, "2 per 1 hour"), Limit(10, 3600, "10 per 60 minute"))
    assert reserve(store, send_id="a", limits=limits) == 0
    assert reserve(store, send_id="b", limits=limits) == 0
    assert reserve(store, send_id="c", limits=limits) > 0
    assert store.status(PHONE, "login", limits=limits).sends == {
        "2 per 1 hour": 2,
        "10 per 60 minute": 2,
    }


def test_a_new_reserve_replaces_the_code(store: Store) -> None:
    assert reserve(store, "111111", "send-1") == 0
    assert reserve(store, "222222", "send-2") == 0
    assert store.status(PHONE, "login", limits=LIMITS).out_id == "send-2"
    # The replaced code is dead ("expired"), and typing it is not counted as a guess.
    replaced = check(store, "111111")
    assert (replaced.outcome, replaced.attempts_left) == (VerifyOutcome.EXPIRED, 5)
    assert store.status(PHONE, "login", limits=()).failures == 0
    assert check(store, "333333").attempts_left == 4
    assert check(store, "222222").outcome is VerifyOutcome.OK


def test_only_the_last_replaced_code_is_remembered(store: Store) -> None:
    """Two resends back is a guess like any other (the store keeps one replaced hash)."""
    for n, code in enumerate(("111111", "222222", "333333")):
        assert reserve(store, code, f"send-{n}") == 0
    assert check(store, "222222").outcome is VerifyOutcome.EXPIRED
    assert check(store, "111111").outcome is VerifyOutcome.INVALID
    assert check(store, "333333").outcome is VerifyOutcome.OK


def test_reserve_without_limits_only_applies_the_cooldown(store: Store) -> None:
    for n in range(12):
        assert reserve(store, send_id=f"s{n}", limits=()) == 0
    assert reserve(store, send_id="c1", limits=(), cooldown=30) == 0
    assert reserve(store, send_id="c2", limits=(), cooldown=30) > 0


# -- cancel_send ----------------------------------------------------------------------------


def test_cancel_removes_code_and_cooldown_and_refunds_counters(store: Store) -> None:
    assert reserve(store, send_id="send-1", cooldown=60) == 0
    store.cancel_send(PHONE, "login", "send-1", limits=LIMITS)
    status = store.status(PHONE, "login", limits=LIMITS)
    assert (status.code_ttl, status.out_id, status.cooldown) == (0, None, 0)
    assert status.sends == {HOURLY.text: 0, DAILY.text: 0}
    assert check(store, "123456").outcome is VerifyOutcome.EXPIRED
    assert reserve(store, send_id="send-2", cooldown=60) == 0  # may retry at once


def test_cancel_of_an_older_send_keeps_the_newer_code_and_cooldown(store: Store) -> None:
    assert reserve(store, "111111", "send-1", cooldown=0) == 0
    assert reserve(store, "222222", "send-2", cooldown=60) == 0
    store.cancel_send(PHONE, "login", "send-1", limits=LIMITS)
    status = store.status(PHONE, "login", limits=LIMITS)
    assert status.out_id == "send-2"
    assert status.cooldown > 0
    assert status.sends == {HOURLY.text: 1, DAILY.text: 1}  # send-1's count given back
    assert check(store, "222222").outcome is VerifyOutcome.OK


def test_cancel_never_drives_counters_negative(store: Store) -> None:
    store.cancel_send(PHONE, "login", "never-reserved", limits=LIMITS)
    store.cancel_send(PHONE, "login", "never-reserved", limits=LIMITS)
    assert store.status(PHONE, "login", limits=LIMITS).sends == {HOURLY.text: 0, DAILY.text: 0}
    limits = (Limit(1, 3600, "1 per 1 hour"),)
    assert reserve(store, send_id="a", limits=limits) == 0
    assert reserve(store, send_id="b", limits=limits) > 0  # still only one send per hour


# -- check_code -----------------------------------------------------------------------------


def test_check_without_a_code_is_expired(store: Store) -> None:
    result = check(store, "123456")
    assert result.outcome is VerifyOutcome.EXPIRED
    assert result.attempts_left == 5
    assert store.status(PHONE, "login", limits=()).failures == 0  # not counted as a failure


def test_right_code_is_ok_once(store: Store) -> None:
    reserve(store, "123456")
    first = check(store, "123456")
    assert (first.outcome, first.attempts_left) == (VerifyOutcome.OK, 5)
    assert check(store, "123456").outcome is VerifyOutcome.EXPIRED  # consumed


def test_wrong_codes_count_down_then_lock(store: Store) -> None:
    reserve(store, "123456")
    for left in (2, 1):
        result = check(store, "000000", max_attempts=3, window=900)
        assert result.outcome is VerifyOutcome.INVALID
        assert result.attempts_left == left
        assert 890 <= result.retry_after <= 900
    last = check(store, "000000", max_attempts=3, window=900)
    assert (last.outcome, last.attempts_left) == (VerifyOutcome.INVALID, 0)
    locked = check(store, "123456", max_attempts=3, window=900)  # even the right code
    assert locked.outcome is VerifyOutcome.LOCKED
    assert locked.attempts_left == 0
    assert 890 <= locked.retry_after <= 900


def test_the_code_dies_at_max_attempts(store: Store) -> None:
    """Once locked, waiting out the lock must not leave the old code guessable."""
    reserve(store, "123456")
    for _ in range(3):
        check(store, "000000", max_attempts=3)
    status = store.status(PHONE, "login", limits=())
    assert (status.code_ttl, status.out_id, status.failures) == (0, None, 3)


def test_failures_survive_a_new_reserve(store: Store) -> None:
    """Otherwise requesting a new code resets the guess budget and brute force wins."""
    reserve(store, "111111", "send-1")
    check(store, "000000")
    check(store, "000000")
    reserve(store, "222222", "send-2")
    result = check(store, "000000")
    assert (result.outcome, result.attempts_left) == (VerifyOutcome.INVALID, 2)


def test_lock_survives_a_new_reserve(store: Store) -> None:
    reserve(store, "111111", "send-1")
    for _ in range(3):
        check(store, "000000", max_attempts=3)
    assert reserve(store, "222222", "send-2") == 0
    assert check(store, "222222", max_attempts=3).outcome is VerifyOutcome.LOCKED


def test_success_clears_failures(store: Store) -> None:
    reserve(store, "111111", "send-1")
    check(store, "000000")
    check(store, "000000")
    assert check(store, "111111").outcome is VerifyOutcome.OK
    assert store.status(PHONE, "login", limits=()).failures == 0
    reserve(store, "222222", "send-2")
    assert check(store, "000000").attempts_left == 4  # full budget again


def test_codes_and_failures_are_per_purpose_and_phone(store: Store) -> None:
    reserve(store, "123456", purpose="login")
    assert check(store, "123456", purpose="signup").outcome is VerifyOutcome.EXPIRED
    assert check(store, "123456", phone=OTHER_PHONE).outcome is VerifyOutcome.EXPIRED
    reserve(store, "654321", "send-2", purpose="signup")
    for _ in range(5):
        check(store, "000000", purpose="signup")
    assert check(store, "000000", purpose="signup").outcome is VerifyOutcome.LOCKED
    assert check(store, "123456", purpose="login").outcome is VerifyOutcome.OK


def test_hash_for_another_purpose_does_not_verify(store: Store) -> None:
    reserve(store, "123456", purpose="login")
    wrong = store.check_code(
        PHONE, "login", h("123456", purpose="signup"), max_attempts=5, window=900
    )
    assert wrong.outcome is VerifyOutcome.INVALID


# -- expiry: fake clock on memory, short real windows on Redis ------------------------------


def test_code_cooldown_and_cap_expire(store: Store, clock: FakeClock) -> None:
    per_second = (Limit(1, 1, "1 per 1 second"),)
    assert reserve(store, "123456", "send-1", ttl=1, cooldown=1, limits=per_second) == 0
    assert reserve(store, "123456", "send-2", ttl=1, cooldown=0, limits=per_second) == 1
    assert reserve(store, "123456", "send-2", ttl=1, cooldown=1, limits=()) == 1
    advance(store, clock, 1.1)
    assert check(store, "123456").outcome is VerifyOutcome.EXPIRED
    assert store.status(PHONE, "login", limits=per_second).sends == {"1 per 1 second": 0}
    assert reserve(store, "123456", "send-3", ttl=1, cooldown=1, limits=per_second) == 0


def test_lock_lifts_and_token_ids_expire(store: Store, clock: FakeClock) -> None:
    reserve(store, "123456")
    assert check(store, "000000", max_attempts=1, window=1).attempts_left == 0
    locked = check(store, "123456", max_attempts=1, window=1)
    assert locked.outcome is VerifyOutcome.LOCKED
    assert locked.retry_after == 1
    assert store.use_token("tok", ttl=1) is True
    assert store.token_used("tok") is True
    advance(store, clock, 1.1)
    after = check(store, "123456", max_attempts=1, window=1)
    assert after.outcome is VerifyOutcome.EXPIRED  # lock gone, and the code died with it
    assert store.status(PHONE, "login", limits=()).failures == 0
    assert store.token_used("tok") is False
    assert store.use_token("tok", ttl=1) is True


def test_the_whole_hash_expires_with_its_last_field(store: Store, clock: FakeClock) -> None:
    """Nothing of a phone outlives its latest field: no forgotten keys in Redis."""
    assert reserve(store, ttl=1, cooldown=1, limits=(Limit(3, 1, "3 per 1 second"),)) == 0
    assert stored_items(store)
    advance(store, clock, 1.2)
    if isinstance(store, MemoryStore):
        assert store.status(PHONE, "login", limits=()).code_ttl == 0
    else:
        assert stored_items(store) == {}  # Redis dropped the key by its PEXPIREAT


@memory_only
def test_hourly_cap_resets_while_the_daily_cap_holds(store: Store, clock: FakeClock) -> None:
    limits = (Limit(2, 3600, "2 per 1 hour"), Limit(3, 86400, "3 per 1 day"))
    assert reserve(store, send_id="a", limits=limits) == 0
    assert reserve(store, send_id="b", limits=limits) == 0
    assert 3590 <= reserve(store, send_id="c", limits=limits) <= 3600
    clock.advance(3600)
    assert reserve(store, send_id="d", limits=limits) == 0
    wait = reserve(store, send_id="e", limits=limits)
    assert 86400 - 3600 - 10 <= wait <= 86400 - 3600
    assert store.status(PHONE, "login", limits=limits).sends == {
        "2 per 1 hour": 1,
        "3 per 1 day": 3,
    }


@memory_only
def test_failures_window_and_lock_lift_after_the_window(store: Store, clock: FakeClock) -> None:
    reserve(store, "123456", ttl=600)
    for _ in range(3):
        check(store, "000000", max_attempts=3, window=900)
    assert check(store, "123456", max_attempts=3).outcome is VerifyOutcome.LOCKED
    clock.advance(899)
    assert check(store, "123456", max_attempts=3).outcome is VerifyOutcome.LOCKED
    clock.advance(2)
    assert store.status(PHONE, "login", limits=()).failures == 0
    assert reserve(store, "654321", "send-2") == 0
    assert check(store, "654321", max_attempts=3).outcome is VerifyOutcome.OK


# -- tokens, status, reset ------------------------------------------------------------------


def test_use_token_is_single_use(store: Store) -> None:
    assert store.token_used("abc") is False  # a peek marks nothing
    assert store.token_used("abc") is False
    assert store.use_token("abc", ttl=60) is True
    assert store.token_used("abc") is True
    assert store.use_token("abc", ttl=60) is False
    assert store.use_token("abc", ttl=60) is False
    assert store.use_token("def", ttl=60) is True


def test_status_reports_the_live_state(store: Store) -> None:
    reserve(store, "123456", "send-1", ttl=300, cooldown=60)
    check(store, "000000", window=900)
    status = store.status(PHONE, "login", limits=LIMITS)
    assert 298 <= status.code_ttl <= 300
    assert status.out_id == "send-1"
    assert status.failures == 1
    assert 898 <= status.failures_ttl <= 900
    assert 58 <= status.cooldown <= 60
    assert status.sends == {"5 per 1 hour": 1, "10 per 1 day": 1}


def test_status_of_an_unknown_phone_is_empty(store: Store) -> None:
    status = store.status(OTHER_PHONE, "login", limits=LIMITS)
    assert (
        status.code_ttl,
        status.out_id,
        status.failures,
        status.failures_ttl,
        status.cooldown,
    ) == (0, None, 0, 0, 0)
    assert status.sends == {HOURLY.text: 0, DAILY.text: 0}


def test_status_is_read_only(store: Store) -> None:
    reserve(store, "123456")
    before = stored_items(store)
    store.status(PHONE, "login", limits=LIMITS)
    store.status(OTHER_PHONE, "signup", limits=LIMITS)
    assert stored_items(store) == before


def test_reset_of_one_purpose_keeps_the_other_purposes_code(store: Store) -> None:
    assert reserve(store, "111111", "s-signup", purpose="signup", cooldown=0) == 0
    assert reserve(store, "222222", "s-login", purpose="login", cooldown=60) == 0
    check(store, "000000", purpose="login")
    # cooldown + send counters (one field) + login code + login failures
    assert store.reset(PHONE, ["login"], limits=LIMITS) == 4
    status = store.status(PHONE, "login", limits=LIMITS)
    assert (status.code_ttl, status.failures, status.cooldown) == (0, 0, 0)
    assert status.sends == {HOURLY.text: 0, DAILY.text: 0}
    assert check(store, "111111", purpose="signup").outcome is VerifyOutcome.OK
    assert store.reset(PHONE, ["login"], limits=LIMITS) == 0


def test_reset_lifts_a_lock_and_the_cooldown(store: Store) -> None:
    reserve(store, "123456", cooldown=60)
    for _ in range(5):
        check(store, "000000")
    assert check(store, "123456").outcome is VerifyOutcome.LOCKED
    assert store.reset(PHONE, ["login", "signup"], limits=LIMITS) == 3  # cooldown, sends, fail
    assert reserve(store, "654321", cooldown=60) == 0
    assert check(store, "654321").outcome is VerifyOutcome.OK


def test_reset_forgets_the_replaced_code(store: Store) -> None:
    reserve(store, "111111", "send-1")
    reserve(store, "222222", "send-2")
    store.reset(PHONE, ["login"], limits=LIMITS)
    reserve(store, "333333", "send-3")
    assert check(store, "111111").outcome is VerifyOutcome.INVALID
    assert check(store, "222222").outcome is VerifyOutcome.INVALID


def test_reset_leaves_other_phones_alone(store: Store) -> None:
    reserve(store, "123456", phone=OTHER_PHONE)
    assert store.reset(PHONE, ["login"], limits=LIMITS) == 0
    assert check(store, "123456", phone=OTHER_PHONE).outcome is VerifyOutcome.OK


# -- key layout and what is stored ----------------------------------------------------------


def test_one_hash_per_phone_one_per_client_one_string_per_token(store: Store) -> None:
    """Each decision touches one phone's hash; its ``{hash tag}`` pins it to one Cluster slot."""
    client = ClientLimits("203.0.113.5", (Limit(10, 60, "10 per 1 minute"),))
    assert reserve(store, "123456", "send-1", purpose="signup", cooldown=0, limits=()) == 0
    assert decide(store, "123456", "send-2", cooldown=60, client=client).reserved
    check(store, "000000")
    store.use_token("tok-1", ttl=60)
    prefix = store.keys.prefix  # type: ignore[attr-defined]
    assert sorted(stored_items(store)) == sorted(
        [f"{prefix}:{{{PHONE}}}", f"{prefix}:ip:{{203.0.113.5}}", f"{prefix}:token:tok-1"]
    )
    if not isinstance(store, MemoryStore):
        raw = store.client  # type: ignore[attr-defined]
        assert sorted(raw.hkeys(f"{prefix}:{{{PHONE}}}")) == sorted(
            ["c:signup", "c:login", "f:login", "cd", "n"]
        )
        assert raw.hkeys(f"{prefix}:ip:{{203.0.113.5}}") == ["s"]
        assert 0 < raw.pttl(f"{prefix}:{{{PHONE}}}") <= 86_400_000  # the daily send counter
        assert 0 < raw.ttl(f"{prefix}:token:tok-1") <= 60


def test_stored_values_never_contain_the_code(store: Store) -> None:
    code = "482915"
    digest = h(code)
    assert code not in digest
    store.reserve_send(PHONE, "login", digest, "send-1", ttl=300, cooldown=60, limits=LIMITS)
    check(store, "000000")
    items = stored_items(store)
    assert items, "nothing stored"
    for key, value in items.items():
        assert code not in key
        assert code not in value
    assert any(digest in value for value in items.values())  # only the HMAC is kept


def test_ping_succeeds(store: Store) -> None:
    assert store.ping() is None  # raises StorageUnavailable when it does not


def test_ping_of_an_unreachable_redis_is_storage_unavailable() -> None:
    store = store_from_uri(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    try:
        with pytest.raises(StorageUnavailable):
            store.ping()
    finally:
        store.close()


# -- concurrency ----------------------------------------------------------------------------


def run_at_once(n: int, action: Callable[[int], Any]) -> list[Any]:
    """Run ``action(i)`` in ``n`` threads released together; return results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=5)
            results[i] = action(i)
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors, errors
    return results


def test_parallel_right_codes_verify_exactly_once(store: Store) -> None:
    reserve(store, "123456")
    results = run_at_once(20, lambda _i: check(store, "123456"))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(VerifyOutcome.OK) == 1
    assert outcomes.count(VerifyOutcome.EXPIRED) == 19


def test_parallel_wrong_codes_are_all_counted(store: Store) -> None:
    """Parallel guesses must not slip past the attempt budget."""
    reserve(store, "123456")
    results = run_at_once(20, lambda _i: check(store, "000000", max_attempts=5))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(VerifyOutcome.INVALID) == 5
    assert outcomes.count(VerifyOutcome.LOCKED) == 15
    assert sorted(r.attempts_left for r in results if r.outcome is VerifyOutcome.INVALID) == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_parallel_sends_reserve_exactly_once(store: Store) -> None:
    results = run_at_once(20, lambda i: reserve(store, "123456", f"send-{i:02}", cooldown=60))
    assert results.count(0) == 1
    assert all(wait > 0 for wait in results if wait != 0)
    assert store.status(PHONE, "login", limits=LIMITS).sends == {HOURLY.text: 1, DAILY.text: 1}


def test_parallel_sends_of_one_client_stop_at_its_limit(store: Store) -> None:
    """The per-IP count is part of the same atomic step: 30 at once, 10 allowed."""
    client = ClientLimits("198.51.100.7", (Limit(10, 3600, "10 per 1 hour"),))
    phones = [f"+86138{n:08d}" for n in range(30)]
    results = run_at_once(30, lambda i: decide(store, phone=phones[i], client=client))
    assert sum(d.reserved for d in results) == 10
    assert {d.refused_by for d in results if not d.reserved} == {Refusal.CLIENT}


# -- an unreachable Redis -------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize(
    "uri",
    ["redis://127.0.0.1:{port}/0", "redis+sentinel://127.0.0.1:{port},127.0.0.1:{port}/mymaster"],
    ids=["redis", "sentinel"],
)
def test_unreachable_redis_raises_storage_unavailable_fast(uri: str) -> None:
    """Fail closed and fast: a dead Redis (or dead sentinels) is a 503 within the timeout,
    never a hang nor a retry loop."""
    store = store_from_uri(uri.format(port=free_port()), timeout=0.5)
    client = ClientLimits("1.2.3.4", (Limit(5, 60, "5 per 1 minute"),))
    calls: list[Callable[[], Any]] = [
        lambda: store.reserve_send(
            PHONE, "login", "x", "s", ttl=60, cooldown=60, limits=LIMITS, client=client
        ),
        lambda: store.hit_client("verify", client),
        lambda: store.cancel_send(PHONE, "login", "s", limits=LIMITS),
        lambda: store.check_code(PHONE, "login", "x", max_attempts=5, window=60, client=client),
        lambda: store.use_token("t", 60),
        lambda: store.token_used("t"),
        lambda: store.status(PHONE, "login", limits=LIMITS),
        lambda: store.reset(PHONE, ["login"], limits=LIMITS),
        store.ping,
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as info:
                call()
            assert info.value.__cause__ is None and info.value.__context__ is None
            assert time.monotonic() - started < 1.5
    finally:
        store.close()


# == Redis only ===============================================================================
# One round trip per request, bytes per live code, deadlines after a stall, keys of the old
# layout, and the URIs and options. These run on a private redis-server of this module (it
# may be flushed and its statistics reset); cluster and sentinel ones on the session sets.

IP = {"REMOTE_ADDR": "203.0.113.9"}
Admin = Any  # redis.Redis(decode_responses=True): every reply is str
BUSY_SCRIPT = """
local function ms() local t = redis.call('TIME') return t[1] * 1000 + t[2] / 1000 end
local stop = ms() + tonumber(ARGV[1])
while ms() < stop do end
return 1
"""


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def admin(own_redis: RedisServer) -> Iterator[Admin]:
    """A connection of the test's own to the private Redis, emptied before each test."""
    client = redis.Redis(port=own_redis.port, socket_timeout=10, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def make_redis_app(
    own_redis: RedisServer, admin: Admin, aliyun_config: dict[str, Any]
) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = Flask(f"redis_app_{len(apps)}")
        app.config.update(
            SECRET_KEY="test-secret-key",
            TESTING=True,
            SMSCODE_STORAGE_URI=own_redis.url,
            **aliyun_config,
        )
        app.config.update(config)
        app.register_blueprint(sms_bp)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        if "smscode" in app.extensions:
            app.extensions["smscode"].store.close()


def post(app: Flask, path: str, body: dict[str, Any]) -> Any:
    return app.test_client().post(path, json=body, environ_base=IP)


def last_code(sms_server: DysmsapiServer, phone: str = "13800138000") -> str:
    code = sms_server.messages_to(phone)[-1].code
    assert code is not None
    return code


def stall(url: str, milliseconds: int) -> threading.Thread:
    """Block the whole Redis for ``milliseconds`` with a busy script (a long command, as in
    production): commands queue on their sockets and run, late, when it ends."""
    started = threading.Event()

    def busy() -> None:
        with redis.Redis.from_url(url, socket_timeout=10) as client:
            started.set()
            client.eval(BUSY_SCRIPT, 0, milliseconds)

    thread = threading.Thread(target=busy)
    thread.start()
    started.wait(5)
    time.sleep(0.15)  # the EVAL is running now
    return thread


def calls(admin: Admin) -> dict[str, int]:
    """Calls per command since the last CONFIG RESETSTAT (script-internal ones included)."""
    return {
        name.removeprefix("cmdstat_"): int(stat["calls"])
        for name, stat in admin.info("commandstats").items()
    }


# -- one round trip ---------------------------------------------------------------------------

# hincrby + expire: the hour's operator counters, bumped by the same script (stores/stats.py)
SCRIPT_INTERNAL = {"time", "hgetall", "hset", "hdel", "pexpireat", "del", "hincrby", "expire"}


@pytest.mark.redis
def test_send_and_verify_cost_one_round_trip_each_per_ip_check_included(
    make_redis_app: Callable[..., Flask], admin: Admin, sms_server: DysmsapiServer
) -> None:
    # The app's connections carry a name, so the test tells them from its own.
    app = make_redis_app(SMSCODE_STORAGE_OPTIONS={"client_name": "smscode-app"})
    # Warm-up: scripts loaded, the clock offset measured (both happen once per process).
    assert post(app, "/sms/send", {"phone": "13900139000"}).status_code == 200
    assert post(app, "/sms/verify", {"phone": "13900139000", "code": "000000"}).status_code == 400

    def app_connections() -> set[str]:
        return {c["addr"] for c in admin.client_list() if c["name"] == "smscode-app"}

    def top_level(path: str, body: dict[str, Any], status: int) -> list[str]:
        """The commands the app sent for one request (MONITOR shows what ran inside a
        script as "lua"), checked against INFO commandstats."""
        connections = app_connections()
        assert connections
        admin.config_resetstat()
        with admin.monitor() as monitor:
            assert post(app, path, body).status_code == status
            admin.echo("end-of-request")
            sent = []
            while True:
                command = monitor.next_command()
                if "end-of-request" in command["command"]:
                    break
                address = f"{command['client_address']}:{command['client_port']}"
                if address in connections:  # not "lua" (inside a script), not the test's
                    sent.append(command["command"].split()[0].upper())
        assert app_connections() == connections  # no new connection (no HELLO, no AUTH)
        stats = calls(admin)
        assert stats.get("evalsha") == 1, stats
        # Besides the EVALSHA only the script's own commands, and the test's.
        assert (
            set(stats)
            - {"evalsha", "config|resetstat", "monitor", "echo", "info", "hello", "client|list"}
            <= SCRIPT_INTERNAL
        ), stats
        assert stats.get("hgetall", 0) >= 2  # the client's hash and the phone's, in the script
        return sent

    assert top_level("/sms/send", {"phone": "13800138000"}, 200) == ["EVALSHA"]
    assert top_level("/sms/verify", {"phone": "13800138000", "code": "000000"}, 400) == ["EVALSHA"]
    assert top_level(
        "/sms/verify", {"phone": "13800138000", "code": last_code(sms_server)}, 200
    ) == ["EVALSHA"]
    # ...and the per-IP check really was in there: the client's hash counts both endpoints.
    counters = admin.hgetall("smscode:ip:{203.0.113.9}")
    assert sorted(counters) == ["s", "v"]
    assert counters["s"].split("|")[1] == "2" and counters["v"].split("|")[1] == "3"


# -- bytes per live code ----------------------------------------------------------------------


@pytest.mark.redis
def test_a_live_code_costs_at_most_200_bytes_in_one_listpack_hash(
    make_redis_app: Callable[..., Flask],
    admin: Admin,
    sms_server: DysmsapiServer,
    record_property: Callable[[str, object], None],
) -> None:
    app = make_redis_app()  # default prefix "smscode", default limits
    assert post(app, "/sms/send", {"phone": "13800138000"}).status_code == 200
    keys = [k for k in admin.scan_iter(match="*") if "+8613800138000" in k]
    assert keys == ["smscode:{+8613800138000}"]  # every key of the phone: just this one
    used = sum(int(admin.memory_usage(k, samples=0) or 0) for k in keys)
    record_property("bytes_per_live_code", used)
    assert used <= 200, used
    assert admin.object("encoding", keys[0]) == "listpack"
    assert sorted(admin.hkeys(keys[0])) == ["c:login", "cd", "n"]
    # A failure and a resend (the replaced code kept beside the new one) stay compact too.
    assert post(app, "/sms/verify", {"phone": "13800138000", "code": "000000"}).status_code == 400
    service = app.extensions["smscode"]
    service.store.reset("+8613800138000", [], limits=())  # lift only the cooldown
    assert post(app, "/sms/send", {"phone": "13800138000"}).status_code == 200
    assert sorted(admin.hkeys(keys[0])) == ["c:login", "cd", "f:login", "n", "p:login"]
    assert admin.object("encoding", keys[0]) == "listpack"


# -- deadlines: a decision that arrives late changes nothing ------------------------------------

CLIENT = ClientLimits("203.0.113.9", (Limit(10, 60, "10 per 1 minute"),))


@pytest.fixture
def own_store(own_redis: RedisServer, admin: Admin) -> Iterator[Store]:
    s = store_from_uri(own_redis.url, key_prefix="dl", timeout=0.5)
    yield s
    s.close()


def raw_state(admin: Admin) -> dict[str, dict[str, str]]:
    return {key: admin.hgetall(key) for key in admin.scan_iter(match="dl:*")}


@pytest.mark.redis
def test_a_decision_reaching_redis_after_its_deadline_changes_nothing(
    own_store: Store,
    admin: Admin,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert decide(own_store, "111111", "send-1", client=CLIENT).reserved
    assert check(own_store, "000000").attempts_left == 4
    before = raw_state(admin)
    remeasured: list[str] = []
    measure = own_store._measure_offset  # type: ignore[attr-defined]
    # Every deadline already passed on any clock; re-measuring does not help.
    monkeypatch.setattr(own_store, "_deadline", lambda key: 1)

    def counted_measure(key: str) -> None:
        remeasured.append(key)
        measure(key)

    monkeypatch.setattr(own_store, "_measure_offset", counted_measure)
    caplog.set_level(logging.WARNING, logger="flask_smscode")
    with pytest.raises(StorageUnavailable):
        decide(own_store, "222222", "send-2", cooldown=60, client=CLIENT)
    with pytest.raises(StorageUnavailable):
        own_store.check_code(PHONE, "login", h("111111"), max_attempts=5, window=900, client=CLIENT)
    with pytest.raises(StorageUnavailable):
        own_store.hit_client("send", CLIENT)
    assert raw_state(admin) == before
    assert len(remeasured) == 3  # each answered "late" at once: offset re-measured, retried
    assert "StorageStalled" in caplog.text
    monkeypatch.undo()
    assert check(own_store, "000000").attempts_left == 3  # the stalled verify counted nothing
    assert check(own_store, "111111").outcome is VerifyOutcome.OK


@pytest.mark.redis
@pytest.mark.parametrize("skew_ms", [-3_600_000, 3_600_000], ids=["behind", "ahead"])
def test_a_skewed_clock_offset_does_not_refuse_everything(own_store: Store, skew_ms: int) -> None:
    """The offset is measured, never assumed: a stale one (a failover to a node whose clock
    is an hour off) costs one re-measure, not every request."""
    assert check(own_store, "000000").outcome is VerifyOutcome.EXPIRED  # offset measured
    own_store._offset_ms = skew_ms  # type: ignore[attr-defined]
    own_store._clock_checked = time.monotonic()  # type: ignore[attr-defined]
    for n in range(3):
        assert decide(
            own_store, "111111", f"send-{n}", phone=f"+86138{n:08d}", client=CLIENT
        ).reserved
    if skew_ms < 0:  # answered "late" at once: re-measured on the spot
        assert abs(own_store._offset_ms) < 1000  # type: ignore[attr-defined]
    own_store._clock_checked = time.monotonic() - 61  # type: ignore[attr-defined]
    assert check(own_store, "111111", phone="+8613800000000").outcome is VerifyOutcome.OK
    assert abs(own_store._offset_ms) < 1000  # type: ignore[attr-defined]


@pytest.mark.redis
def test_a_send_answered_503_by_a_stalled_redis_leaves_nothing(
    own_redis: RedisServer, own_store: Store, admin: Admin
) -> None:
    assert decide(own_store, phone=OTHER_PHONE, client=CLIENT).reserved  # warm-up
    before = raw_state(admin)
    admin.config_resetstat()
    busy = stall(own_redis.url, 1500)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        decide(own_store, "123456", "send-1", cooldown=60, client=CLIENT)
    assert time.monotonic() - started < 1.0
    busy.join()
    time.sleep(0.1)
    stats = calls(admin)
    # The stalled script did run once Redis was free again, and stopped at its deadline
    # before reading anything.
    assert stats.get("evalsha") == 1, stats
    assert "hgetall" not in stats and "hset" not in stats, stats
    assert raw_state(admin) == before
    status = own_store.status(PHONE, "login", limits=LIMITS)
    assert (status.code_ttl, status.cooldown, status.sends) == (
        0,
        0,
        {HOURLY.text: 0, DAILY.text: 0},
    )
    assert decide(own_store, "123456", "send-2", cooldown=60, client=CLIENT).reserved


@pytest.mark.redis
def test_a_verify_answered_503_by_a_stalled_redis_consumes_and_counts_nothing(
    own_redis: RedisServer, own_store: Store, admin: Admin
) -> None:
    assert reserve(own_store, "123456") == 0
    assert check(own_store, "000000").attempts_left == 4
    before = raw_state(admin)
    admin.config_resetstat()
    busy = stall(own_redis.url, 1500)
    with pytest.raises(StorageUnavailable):
        own_store.check_code(PHONE, "login", h("123456"), max_attempts=5, window=900, client=CLIENT)
    busy.join()
    time.sleep(0.1)
    assert calls(admin).get("evalsha") == 1
    assert raw_state(admin) == before
    assert check(own_store, "000000").attempts_left == 3
    assert check(own_store, "123456").outcome is VerifyOutcome.OK


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["WRITE", "ALL"])
def test_a_send_and_verify_during_client_pause_leave_nothing(
    own_store: Store, admin: Admin, mode: str
) -> None:
    """CLIENT PAUSE longer than the timeout: 503, and nothing when the pause ends. (Redis
    drops a paused command whose client gave up; the busy-script tests above are the ones
    where the late script really runs.)"""
    assert reserve(own_store, "123456", "send-1") == 0
    before = raw_state(admin)
    admin.execute_command("CLIENT", "PAUSE", 1200, mode)
    with pytest.raises(StorageUnavailable):
        decide(own_store, "654321", "send-2", cooldown=60, client=CLIENT)
    with pytest.raises(StorageUnavailable):
        own_store.check_code(PHONE, "login", h("123456"), max_attempts=5, window=900)
    time.sleep(1.0)
    assert raw_state(admin) == before
    assert check(own_store, "000000").attempts_left == 4
    assert check(own_store, "123456").outcome is VerifyOutcome.OK


# -- keys of the old layout ---------------------------------------------------------------------


@pytest.mark.redis
def test_keys_of_the_old_layout_do_not_break_send_or_verify(
    make_redis_app: Callable[..., Flask], admin: Admin, sms_server: DysmsapiServer
) -> None:
    """A deploy over live keys of the previous release: no 500, the new layout is used and
    the old keys simply expire."""
    old = "smscode:{+8613800138000}"
    admin.hset(f"{old}:code:login", mapping={"h": "ab" * 32, "id": "old-send-id"})
    admin.expire(f"{old}:code:login", 300)
    admin.set(f"{old}:cooldown", "1", ex=60)
    admin.set(f"{old}:sends:5/3600", "5", ex=3600)
    admin.set(f"{old}:sends:10/86400", "10", ex=86400)
    admin.set(f"{old}:fail:login", "5", ex=900)
    admin.set("smscode:ip:LIMITER/send/203.0.113.9/20/1/hour", "20", ex=3600)
    admin.set("smscode:ip:LIMITER/verify/203.0.113.9/30/1/minute", "30", ex=60)
    admin.set("smscode:token:0123456789abcdef", "1", ex=300)
    app = make_redis_app()
    sent = post(app, "/sms/send", {"phone": "13800138000"})
    assert sent.status_code == 200, sent.get_json()
    wrong = post(app, "/sms/verify", {"phone": "13800138000", "code": "000000"})
    assert (wrong.status_code, wrong.get_json()["error"]) == (400, "invalid_code")
    assert wrong.get_json()["attempts_left"] == 4  # the old failure count is not read
    right = post(app, "/sms/verify", {"phone": "13800138000", "code": last_code(sms_server)})
    assert right.status_code == 200, right.get_json()
    assert admin.ttl(f"{old}:sends:10/86400") > 0  # left alone, to expire by itself


# -- URIs, options, and the log of a 503 --------------------------------------------------------


@pytest.mark.redis_cluster
def test_cluster_uri_with_several_seeds_one_of_them_dead(
    redis_cluster: Any, key_prefix: str
) -> None:
    seeds = ",".join(f"127.0.0.1:{p}" for p in redis_cluster.ports)
    uri = f"redis+cluster://127.0.0.1:{free_port()},{seeds}"
    store = store_from_uri(uri, key_prefix=key_prefix, socket_keepalive=True)
    try:
        assert store.cluster  # type: ignore[attr-defined]
        store.ping()
        assert decide(store, client=CLIENT).reserved
        assert check(store, "123456").outcome is VerifyOutcome.OK
    finally:
        store.close()


@pytest.mark.redis_cluster
def test_cluster_down_at_start_up_still_builds_and_answers_503() -> None:
    """An app must start while its Redis is down (it answers 503 until Redis is back)."""
    store = store_from_uri(f"redis+cluster://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        with pytest.raises(StorageUnavailable):
            store.ping()
    finally:
        store.close()


def test_sentinel_uri_parts_are_read_without_connecting() -> None:
    ports = free_port(), free_port()
    store = store_from_uri(
        f"redis+sentinel://:s3cretpw@127.0.0.1:{ports[0]},localhost:{ports[1]}/mymaster/3",
        key_prefix="x",
        sentinel_kwargs={"password": "sentinel-pw"},
        socket_keepalive=True,
    )
    try:
        pool = store.client.connection_pool  # type: ignore[attr-defined]
        assert pool.service_name == "mymaster"
        assert pool.connection_kwargs["db"] == 3
        assert pool.connection_kwargs["password"] == "s3cretpw"
        assert pool.connection_kwargs["socket_keepalive"] is True
        sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
        assert [(s["host"], s["port"]) for s in sentinels] == [
            ("127.0.0.1", ports[0]),
            ("localhost", ports[1]),
        ]
        assert all(s["password"] == "sentinel-pw" for s in sentinels)
    finally:
        store.close()


@pytest.mark.redis_sentinel
def test_sentinel_uri_reaches_the_master(redis_sentinel: Any, key_prefix: str) -> None:
    store = store_from_uri(redis_sentinel.uri, key_prefix=key_prefix)
    try:
        assert decide(store, client=CLIENT).reserved
        assert redis_sentinel.master().hgetall(f"{key_prefix}:{{{PHONE}}}")
    finally:
        store.close()


@pytest.mark.parametrize(
    "uri",
    [
        "redis+cluster://",
        "redis+cluster://127.0.0.1",
        "redis+cluster://127.0.0.1:7000,127.0.0.1",
        "redis+cluster://127.0.0.1:port",
        "redis+sentinel://127.0.0.1:26379",
        "redis+sentinel://127.0.0.1:26379/",
        "redis+sentinel://127.0.0.1/mymaster",
        "rediss+sentinel://:pw@127.0.0.1:26379",
        "redis+memcached://127.0.0.1:11211",
    ],
)
def test_bad_cluster_and_sentinel_uris_name_the_setting(uri: str) -> None:
    with pytest.raises(ConfigurationError, match="SMSCODE_STORAGE_URI") as info:
        store_from_uri(uri)
    assert "pw@" not in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        "redis://127.0.0.1:{port}/0",
        "redis+cluster://127.0.0.1:{port}",
        "redis+sentinel://127.0.0.1:{port}/mymaster",
    ],
    ids=["redis", "cluster", "sentinel"],
)
@pytest.mark.parametrize("option", ["socket_timeoutt", "sentinel_kwargs_typo", "retries"])
def test_unknown_storage_options_are_refused_by_name(uri: str, option: str) -> None:
    with pytest.raises(ConfigurationError, match="SMSCODE_STORAGE_OPTIONS") as info:
        options: dict[str, Any] = {option: 1}
        store_from_uri(uri.format(port=free_port()), **options)
    assert repr(option) in str(info.value)


def test_sentinel_kwargs_is_a_sentinel_option_only() -> None:
    with pytest.raises(ConfigurationError, match="sentinel_kwargs"):
        store_from_uri(f"redis://127.0.0.1:{free_port()}/0", sentinel_kwargs={})


@pytest.mark.parametrize(
    "uri",
    [f"redis://127.0.0.1:{free_port()}/0", f"redis+sentinel://127.0.0.1:{free_port()}/mymaster"],
    ids=["redis", "sentinel"],
)
def test_known_storage_options_pass(uri: str) -> None:
    store = store_from_uri(uri, timeout=0.3, socket_keepalive=True, client_name="smscode")
    try:  # the options reach redis-py's connections, next to the package's own timeout
        kwargs = store.client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
        assert kwargs["client_name"] == "smscode" and kwargs["socket_keepalive"] is True
        assert kwargs["socket_timeout"] == 0.3
    finally:
        store.close()


@pytest.mark.redis
def test_a_503_logs_its_cause_once_and_never_the_password(caplog: pytest.LogCaptureFixture) -> None:
    store = store_from_uri(f"redis://:s3cretpw@127.0.0.1:{free_port()}/0", timeout=0.5)
    caplog.set_level(logging.WARNING, logger="flask_smscode")
    try:
        for _ in range(3):
            with pytest.raises(StorageUnavailable) as info:
                decide(store, client=CLIENT)
            assert "s3cretpw" not in str(info.value)
    finally:
        store.close()
    causes = [r for r in caplog.records if "ConnectionError" in r.getMessage()]
    assert len(causes) == 1, [r.getMessage() for r in caplog.records]
    assert causes[0].levelno == logging.WARNING
    assert "s3cretpw" not in caplog.text


@pytest.mark.redis
def test_a_503_through_the_app_says_why_once(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, sms_server: DysmsapiServer
) -> None:
    app = make_app(
        SMSCODE_STORAGE_URI=f"redis://:s3cretpw@127.0.0.1:{free_port()}/0",
        SMSCODE_STORAGE_TIMEOUT_SECONDS=0.5,
    )
    caplog.set_level(logging.INFO, logger="flask_smscode")
    for path, body in [
        ("/sms/send", {"phone": "13800138000"}),
        ("/sms/verify", {"phone": "13800138000", "code": "123456"}),
    ]:
        response = post(app, path, body)
        assert response.status_code == 503
        assert response.get_json()["error"] == "storage_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert "s3cretpw" not in response.get_data(as_text=True)
    causes = [r for r in caplog.records if "ConnectionError" in r.getMessage()]
    assert len(causes) == 1 and causes[0].levelno == logging.WARNING
    assert "s3cretpw" not in caplog.text
    assert sms_server.sent == []
