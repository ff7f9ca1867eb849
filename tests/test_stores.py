"""The store contract, run unchanged against ``MemoryStore`` and ``RedisStore``.

The two stores must make the same decisions: development runs on memory, production on
Redis, and a difference between them is a bug nobody sees until it is live.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flask_smscode.codes import hash_code
from flask_smscode.config import Limit
from flask_smscode.errors import StorageUnavailable
from flask_smscode.stores import MemoryStore, Store, VerifyOutcome, store_from_uri

PHONE = "+8613800138000"
OTHER_PHONE = "+8613900139000"
SECRET = b"store-test-secret"
HOURLY = Limit(5, 3600, "5 per 1 hour")
DAILY = Limit(10, 86400, "10 per 1 day")
LIMITS = (HOURLY, DAILY)


def h(code: str, phone: str = PHONE, purpose: str = "login") -> str:
    return hash_code(SECRET, phone, purpose, code)


@pytest.fixture
def store(store_uri: str, key_prefix: str) -> Iterator[Store]:
    """One fresh store per test, on ``memory://`` and on the private Redis."""
    s = store_from_uri(store_uri, key_prefix=key_prefix)
    yield s
    s.close()


def reserve(store: Store, code: str = "123456", send_id: str = "send-1", *,
            phone: str = PHONE, purpose: str = "login", ttl: int = 300, cooldown: int = 0,
            limits: tuple[Limit, ...] = LIMITS) -> int:
    return store.reserve_send(phone, purpose, h(code, phone, purpose), send_id, ttl=ttl,
                              cooldown=cooldown, limits=limits)


def check(store: Store, code: str, *, phone: str = PHONE, purpose: str = "login",
          max_attempts: int = 5, window: int = 900) -> Any:
    return store.check_code(phone, purpose, h(code, phone, purpose),
                            max_attempts=max_attempts, window=window)


def stored_items(store: Store) -> dict[str, str]:
    """Every key the store holds, with its value rendered as text."""
    if isinstance(store, MemoryStore):
        # The memory store has no public key listing; its dict is the whole state.
        return {key: repr(value) for key, (value, _exp) in store._data.items()}
    client = store.client  # type: ignore[attr-defined]
    items: dict[str, str] = {}
    for key in client.keys(store.keys.prefix + "*"):  # type: ignore[attr-defined]
        kind = client.type(key)
        items[key] = repr(client.hgetall(key) if kind == "hash" else client.get(key))
    return items


# -- reserve_send: cooldown and caps --------------------------------------------------------

def test_reserve_returns_zero_then_the_cooldown_wait(store: Store) -> None:
    assert reserve(store, cooldown=60) == 0
    wait = reserve(store, "654321", "send-2", cooldown=60)
    assert 59 <= wait <= 60
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
    assert store.status(PHONE, "login", limits=limits).sends == {"10 per 1 hour": 2,
                                                                  "2 per 1 day": 2}


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
    """"2/hour;10/60 minutes" is legal config; one send must not count twice against it."""
    limits = (Limit(2, 3600, "2 per 1 hour"), Limit(10, 3600, "10 per 60 minute"))
    assert reserve(store, send_id="a", limits=limits) == 0
    assert reserve(store, send_id="b", limits=limits) == 0
    assert store.status(PHONE, "login", limits=limits).sends == {"2 per 1 hour": 2,
                                                                  "10 per 60 minute": 2}


def test_a_new_reserve_replaces_the_code(store: Store) -> None:
    assert reserve(store, "111111", "send-1") == 0
    assert reserve(store, "222222", "send-2") == 0
    assert store.status(PHONE, "login", limits=LIMITS).out_id == "send-2"
    # The replaced code is dead ("expired"), and typing it is not counted as a guess.
    assert check(store, "111111").outcome is VerifyOutcome.EXPIRED
    assert check(store, "333333").attempts_left == 4
    assert check(store, "222222").outcome is VerifyOutcome.OK


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
    wrong = store.check_code(PHONE, "login", h("123456", purpose="signup"), max_attempts=5,
                             window=900)
    assert wrong.outcome is VerifyOutcome.INVALID


# -- expiry (real sleeps, kept to one ~1.1 s sleep per test) --------------------------------

def test_code_cooldown_and_cap_expire(store: Store) -> None:
    per_second = (Limit(1, 1, "1 per 1 second"),)
    assert reserve(store, "123456", "send-1", ttl=1, cooldown=1, limits=per_second) == 0
    assert reserve(store, "123456", "send-2", ttl=1, cooldown=0, limits=per_second) == 1
    assert reserve(store, "123456", "send-2", ttl=1, cooldown=1, limits=()) == 1
    time.sleep(1.1)
    assert check(store, "123456").outcome is VerifyOutcome.EXPIRED
    assert store.status(PHONE, "login", limits=per_second).sends == {"1 per 1 second": 0}
    assert reserve(store, "123456", "send-3", ttl=1, cooldown=1, limits=per_second) == 0


def test_lock_lifts_and_token_ids_expire(store: Store) -> None:
    reserve(store, "123456")
    assert check(store, "000000", max_attempts=1, window=1).attempts_left == 0
    locked = check(store, "123456", max_attempts=1, window=1)
    assert locked.outcome is VerifyOutcome.LOCKED
    assert locked.retry_after == 1
    assert store.use_token("tok", ttl=1) is True
    time.sleep(1.1)
    after = check(store, "123456", max_attempts=1, window=1)
    assert after.outcome is VerifyOutcome.EXPIRED  # lock gone, and the code died with it
    assert store.status(PHONE, "login", limits=()).failures == 0
    assert store.use_token("tok", ttl=1) is True


# -- tokens, status, reset ------------------------------------------------------------------

def test_use_token_is_single_use(store: Store) -> None:
    assert store.use_token("abc", ttl=60) is True
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
    assert (status.code_ttl, status.out_id, status.failures, status.failures_ttl,
            status.cooldown) == (0, None, 0, 0, 0)
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
    # cooldown + 2 send counters + login code + login failures
    assert store.reset(PHONE, ["login"], limits=LIMITS) == 5
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
    assert store.reset(PHONE, ["login", "signup"], limits=LIMITS) == 4  # cooldown, 2 sends, fail
    assert reserve(store, "654321", cooldown=60) == 0
    assert check(store, "654321").outcome is VerifyOutcome.OK


def test_reset_leaves_other_phones_alone(store: Store) -> None:
    reserve(store, "123456", phone=OTHER_PHONE)
    assert store.reset(PHONE, ["login"], limits=LIMITS) == 0
    assert check(store, "123456", phone=OTHER_PHONE).outcome is VerifyOutcome.OK


# -- key layout and what is stored ----------------------------------------------------------

def test_keys_of_one_phone_share_a_hash_tag(store: Store) -> None:
    """Each script touches one phone's keys; one hash tag keeps them in one Cluster slot."""
    assert reserve(store, "123456", "send-1", purpose="signup", cooldown=0, limits=()) == 0
    assert reserve(store, "123456", "send-2", cooldown=60) == 0
    check(store, "000000")
    store.use_token("tok-1", ttl=60)
    keys = list(stored_items(store))
    prefix = store.keys.prefix  # type: ignore[attr-defined]
    assert all(key.startswith(prefix + ":") for key in keys)
    phone_keys = [key for key in keys if ":token:" not in key]
    # code x2, failures, cooldown, two counters
    assert len(phone_keys) == 6
    assert all("{+8613800138000}" in key for key in phone_keys)
    assert all(key.count("{") == 1 and key.count("}") == 1 for key in phone_keys)
    assert [key for key in keys if ":token:" in key] == [f"{prefix}:token:tok-1"]


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
    assert any(digest in value for value in items.values())  # only the HMAC hex is kept


def test_ping_succeeds(store: Store) -> None:
    assert store.ping() is None


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
    assert sorted(r.attempts_left for r in results if r.outcome is VerifyOutcome.INVALID) \
        == [0, 1, 2, 3, 4]


def test_parallel_sends_reserve_exactly_once(store: Store) -> None:
    results = run_at_once(20, lambda i: reserve(store, "123456", f"send-{i}", cooldown=60))
    assert results.count(0) == 1
    assert all(wait > 0 for wait in results if wait != 0)
    assert store.status(PHONE, "login", limits=LIMITS).sends == {HOURLY.text: 1, DAILY.text: 1}


# -- an unreachable Redis -------------------------------------------------------------------

@pytest.mark.redis
def test_unreachable_redis_raises_storage_unavailable_fast() -> None:
    """Fail closed and fast: a dead Redis is a 503 within the timeout, never a hang."""
    from tests.redis_server import free_port

    store = store_from_uri(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    calls: list[Callable[[], Any]] = [
        lambda: store.reserve_send(PHONE, "login", "x", "s", ttl=60, cooldown=60, limits=LIMITS),
        lambda: store.cancel_send(PHONE, "login", "s", limits=LIMITS),
        lambda: store.check_code(PHONE, "login", "x", max_attempts=5, window=60),
        lambda: store.use_token("t", 60),
        lambda: store.status(PHONE, "login", limits=LIMITS),
        lambda: store.reset(PHONE, ["login"], limits=LIMITS),
        store.ping,
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable):
                call()
            assert time.monotonic() - started < 1.5
    finally:
        store.close()
