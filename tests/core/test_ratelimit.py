"""Per-client-IP limits: who counts as one client, and the counting in the store.

The IP limit is the only brake on one client spraying codes at many phones, so it must
count per endpoint, group an IPv6 subscriber's /64, count requests refused before the store
too, and fail closed when Redis is gone. The store counts it inside the send and verify
decisions (``reserve_send(client=...)``, ``check_code(client=...)``) and on its own for
requests refused earlier (``hit_client``); these tests run on memory, Redis, Cluster and
Sentinel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode.config import Limit
from flask_smscode.core.ratelimit import client_key
from flask_smscode.errors import StorageUnavailable
from flask_smscode.stores import (
    ClientLimits,
    MemoryStore,
    Refusal,
    SendDecision,
    Store,
    VerifyOutcome,
    store_from_uri,
)
from tests.servers.redis_server import free_port

PHONE = "+8613800138000"
PER_MINUTE_2 = (Limit(2, 60, "2 per 1 minute"),)
PER_MINUTE_3 = (Limit(3, 60, "3 per 1 minute"),)
PHONE_LIMITS = (Limit(5, 3600, "5 per 1 hour"),)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("1.2.3.4", "1.2.3.4"),
        ("203.0.113.250", "203.0.113.250"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8:0:0:ffff:ffff:ffff:ffff", "2001:db8::/64"),
        ("2001:DB8::1", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::1", "::/64"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("::ffff:102:304", "1.2.3.4"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "garbage",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.4:80",
        " 1.2.3.4",
        "2001:db8:::1",
        "::g",
    ],
)
def test_client_key_of_garbage_is_unknown(address: str | None) -> None:
    """Garbage must not become its own bucket per spelling (that would be no limit at all)."""
    assert client_key(address) == "unknown"


def test_one_ipv6_slash_64_is_one_client() -> None:
    """A subscriber holds a whole /64; counting single addresses lets them rotate freely."""
    keys = {client_key(f"2001:db8:aa:bb::{n:x}") for n in range(1, 200, 7)}
    assert keys == {"2001:db8:aa:bb::/64"}
    assert client_key("2001:db8:aa:bc::1") != client_key("2001:db8:aa:bb::1")


# -- the store's per-client counting -------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(store_uri: str, key_prefix: str, clock: FakeClock) -> Iterator[Callable[..., Store]]:
    """Stores the way the service builds them, one per prefix (memory on a fake clock)."""
    stores: list[Store] = []

    def factory(prefix: str | None = None) -> Store:
        prefix = prefix or key_prefix
        s: Store = (
            MemoryStore(key_prefix=prefix, clock=clock)
            if store_uri == "memory://"
            else store_from_uri(store_uri, key_prefix=prefix)
        )
        stores.append(s)
        return s

    yield factory
    for s in stores:
        s.close()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    return make_store()


def who(address: str | None, limits: tuple[Limit, ...] = PER_MINUTE_2) -> ClientLimits:
    return ClientLimits(client_key(address), limits)


def send(store: Store, client: ClientLimits, phone: str = PHONE, n: int = 0) -> SendDecision:
    """A send that the phone alone would always allow (other send id, no cooldown)."""
    return store.reserve_send(
        phone, "login", "h" * 16, f"send-{n:04}", ttl=300, cooldown=0, limits=(), client=client
    )


def verify(store: Store, client: ClientLimits, phone: str = PHONE) -> Any:
    return store.check_code(phone, "login", "x" * 16, max_attempts=1000, window=900, client=client)


def client_fields(store: Store, client: ClientLimits) -> dict[str, str]:
    """What the store holds for one client (its hash)."""
    key = store.keys.client(client.client)  # type: ignore[attr-defined]
    if isinstance(store, MemoryStore):
        return dict(store._hashes.get(key, {}))
    return dict(store.client.hgetall(key))  # type: ignore[attr-defined]


def test_hit_client_throttles_with_a_positive_retry_after(store: Store) -> None:
    client = who("1.2.3.4")
    assert store.hit_client("send", client) == 0
    assert store.hit_client("send", client) == 0
    wait = store.hit_client("send", client)
    assert 1 <= wait <= 60


def test_a_send_over_the_client_limit_is_refused_by_the_client(store: Store) -> None:
    client = who("1.2.3.4")
    phones = [f"+86138001380{n:02d}" for n in range(3)]
    assert send(store, client, phones[0]).reserved
    assert send(store, client, phones[1]).reserved
    refused = send(store, client, phones[2])
    assert refused.refused_by is Refusal.CLIENT
    assert 1 <= refused.retry_after <= 60
    # The refused phone got nothing: no code, no cooldown, no send counted.
    status = store.status(phones[2], "login", limits=PHONE_LIMITS)
    assert (status.code_ttl, status.cooldown, status.sends) == (0, 0, {"5 per 1 hour": 0})


def test_a_verify_over_the_client_limit_is_throttled_before_the_code(store: Store) -> None:
    client = who("1.2.3.4", PER_MINUTE_2)
    assert store.reserve_send(
        PHONE, "login", "r" * 16, "send-1", ttl=300, cooldown=0, limits=()
    ).reserved
    for _ in range(2):
        assert verify(store, client).outcome is VerifyOutcome.INVALID
    throttled = verify(store, client)
    assert (throttled.outcome, throttled.attempts_left) == (VerifyOutcome.THROTTLED, 0)
    assert 1 <= throttled.retry_after <= 60
    # Not counted as a failure of the phone, and the right code still works elsewhere.
    assert store.status(PHONE, "login", limits=()).failures == 2
    right = store.check_code(
        PHONE, "login", "r" * 16, max_attempts=1000, window=900, client=who("5.6.7.8")
    )
    assert right.outcome is VerifyOutcome.OK


def test_requests_refused_before_the_store_count_too(store: Store) -> None:
    """hit_client (a malformed request) and the decisions share one budget per endpoint."""
    client = who("1.2.3.4", PER_MINUTE_3)
    assert store.hit_client("send", client) == 0
    assert store.hit_client("send", client) == 0
    assert send(store, client).reserved
    assert send(store, client, n=1).refused_by is Refusal.CLIENT
    assert store.hit_client("verify", client) == 0
    assert verify(store, client).outcome is VerifyOutcome.INVALID  # counted, then compared
    assert store.hit_client("verify", client) == 0
    assert verify(store, client).outcome is VerifyOutcome.THROTTLED
    assert store.hit_client("verify", client) > 0


def test_a_send_refused_by_the_phone_still_spends_the_clients_budget(store: Store) -> None:
    """One client hammering one phone in its cooldown is still one client sending."""
    client = who("1.2.3.4", PER_MINUTE_3)
    decisions = [
        store.reserve_send(
            PHONE, "login", "h" * 16, f"send-{n}", ttl=300, cooldown=60, limits=(), client=client
        )
        for n in range(4)
    ]
    assert [d.refused_by for d in decisions] == [None, Refusal.PHONE, Refusal.PHONE, Refusal.CLIENT]


def test_endpoints_are_counted_separately(store: Store) -> None:
    sends, verifies = who("1.2.3.4", PER_MINUTE_2), who("1.2.3.4", PER_MINUTE_3)
    for n in range(2):
        assert send(store, sends, n=n).reserved
    assert send(store, sends, n=2).refused_by is Refusal.CLIENT
    for _ in range(3):  # sends did not use up the verify budget
        assert verify(store, verifies).outcome is not VerifyOutcome.THROTTLED
    assert verify(store, verifies).outcome is VerifyOutcome.THROTTLED
    assert store.hit_client("send", sends) > 0  # nor the verifies the send budget


def test_clients_are_counted_separately(store: Store) -> None:
    limits = (Limit(1, 60, "1 per 1 minute"),)
    assert send(store, who("1.2.3.4", limits)).reserved
    assert send(store, who("5.6.7.8", limits), n=1).reserved
    assert send(store, who("2001:db8::1", limits), n=2).reserved
    # the same IPv4 client, mapped; the same /64
    assert send(store, who("::ffff:1.2.3.4", limits), n=3).refused_by is Refusal.CLIENT
    assert send(store, who("2001:db8::ffff", limits), n=4).refused_by is Refusal.CLIENT
    assert send(store, who("2001:db8:0:1::1", limits), n=5).reserved  # the next /64


def test_every_limit_of_an_endpoint_applies(store: Store) -> None:
    client = who("1.2.3.4", (Limit(10, 60, "10 per 1 minute"), Limit(2, 3600, "2 per 1 hour")))
    assert store.hit_client("send", client) == 0
    assert send(store, client).reserved
    wait = store.hit_client("send", client)
    assert 60 < wait <= 3600  # the hourly window, not the minute


def test_no_limits_never_throttle_and_store_nothing(store: Store) -> None:
    client = who("1.2.3.4", ())
    for n in range(100):
        assert store.hit_client("send", client) == 0
        assert store.hit_client("verify", client) == 0
        assert send(store, client, phone=f"+86138{n:08d}", n=n).reserved
        assert verify(store, client, phone=f"+86138{n:08d}").outcome is VerifyOutcome.INVALID
    assert client_fields(store, client) == {}


def test_unknown_clients_share_one_bucket(store: Store) -> None:
    assert store.hit_client("send", who(None)) == 0
    assert store.hit_client("send", who("garbage")) == 0
    assert send(store, who("")).refused_by is Refusal.CLIENT


def test_apps_with_different_prefixes_do_not_share_counts(
    make_store: Callable[..., Store], key_prefix: str
) -> None:
    first, second = make_store(), make_store(f"{key_prefix}-other")
    limits = (Limit(1, 60, "1 per 1 minute"),)
    assert first.hit_client("send", who("1.2.3.4", limits)) == 0
    assert second.hit_client("send", who("1.2.3.4", limits)) == 0
    assert send(second, who("5.6.7.8", limits)).reserved
    assert first.hit_client("send", who("1.2.3.4", limits)) > 0
    assert send(first, who("5.6.7.8", limits)).reserved


def test_the_window_lifts(store: Store, clock: FakeClock) -> None:
    client = who("1.2.3.4", (Limit(1, 1, "1 per 1 second"),))
    assert send(store, client).reserved
    refused = send(store, client, n=1)
    assert (refused.refused_by, refused.retry_after) == (Refusal.CLIENT, 1)
    if isinstance(store, MemoryStore):
        clock.now += 1.1
    else:
        time.sleep(1.1)
    assert send(store, client, n=2).reserved


def test_a_refused_client_request_is_not_counted(store: Store, clock: FakeClock) -> None:
    """Over the limit, more requests do not push the window further out."""
    client = who("1.2.3.4", (Limit(1, 60, "1 per 1 minute"), Limit(2, 3600, "2 per 1 hour")))
    assert store.hit_client("send", client) == 0
    for _ in range(5):
        assert 1 <= store.hit_client("send", client) <= 60
    counters = client_fields(store, client)["s"].split("|")
    assert counters[1::2] == ["1", "1"]  # one request counted in each window


def test_unknown_endpoint_is_a_programming_error(store: Store) -> None:
    """A typo in the endpoint name is a bug in the caller, not a storage outage (503)."""
    with pytest.raises(KeyError):
        store.hit_client("sned", who("1.2.3.4"))


@pytest.mark.redis
def test_redis_client_hash_lives_under_the_prefix(redis_url: str, key_prefix: str) -> None:
    """Operators find (and clear) the IP counters next to the codes, under one prefix."""
    store = store_from_uri(redis_url, key_prefix=key_prefix)
    try:
        assert store.hit_client("send", who("1.2.3.4")) == 0
        assert store.hit_client("verify", who("2001:db8::7")) == 0
        raw = store.client  # type: ignore[attr-defined]
        assert sorted(raw.scan_iter(match=f"{key_prefix}:*")) == [
            f"{key_prefix}:ip:{{1.2.3.4}}",
            f"{key_prefix}:ip:{{2001:db8::/64}}",
        ]
        assert raw.hkeys(f"{key_prefix}:ip:{{1.2.3.4}}") == ["s"]
        assert 0 < raw.ttl(f"{key_prefix}:ip:{{1.2.3.4}}") <= 60
    finally:
        store.close()


@pytest.mark.redis
def test_unreachable_redis_fails_closed_and_fast() -> None:
    """No Redis must mean 503 at once, not an unthrottled send or a hung worker."""
    store = store_from_uri(
        f"redis://127.0.0.1:{free_port()}/0", key_prefix="unreachable", timeout=1.0
    )
    try:
        for endpoint in ("send", "verify"):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as info:
                store.hit_client(endpoint, who("1.2.3.4"))
            assert time.monotonic() - started < 1.5
            assert info.value.status == 503
    finally:
        store.close()


# -- through the app -------------------------------------------------------------------------


def test_malformed_requests_spend_the_ip_budget_through_the_app(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app(SMSCODE_IP_SEND_LIMITS="3/minute", SMSCODE_RESEND_INTERVAL_SECONDS=0)
    http = app.test_client()
    ip = {"REMOTE_ADDR": "2001:db8:1:2::99"}
    for body in ({"phone": "not a phone"}, {"phone": "13800138000", "purpose": "nope"}):
        assert http.post("/sms/send", json=body, environ_base=ip).status_code == 400
    assert http.post("/sms/send", json={"phone": "13800138000"}, environ_base=ip).status_code == 200
    # The same /64, another address: over the limit, 429 with the wait, and no SMS.
    refused = http.post(
        "/sms/send", json={"phone": "13900139000"}, environ_base={"REMOTE_ADDR": "2001:db8:1:2::1"}
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(sms_server.sent) == 1
    other = http.post(
        "/sms/send", json={"phone": "13900139000"}, environ_base={"REMOTE_ADDR": "198.51.100.1"}
    )
    assert other.status_code == 200
