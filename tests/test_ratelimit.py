"""Per-client-IP limits: who counts as one client, and the limiter on memory and Redis.

The IP limit is the only brake on one client spraying codes at many phones, so it must
count per endpoint, group an IPv6 subscriber's /64, and fail closed when Redis is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from limits import parse_many

from flask_smscode.errors import StorageUnavailable, Throttled
from flask_smscode.ratelimit import IpLimiter, client_key
from flask_smscode.stores import store_from_uri
from tests.redis_server import free_port


@pytest.mark.parametrize(("address", "key"), [
    ("1.2.3.4", "1.2.3.4"),
    ("203.0.113.250", "203.0.113.250"),
    ("2001:db8::1", "2001:db8::/64"),
    ("2001:db8:0:0:ffff:ffff:ffff:ffff", "2001:db8::/64"),
    ("2001:DB8::1", "2001:db8::/64"),
    ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
    ("::1", "::/64"),
    ("::ffff:1.2.3.4", "1.2.3.4"),
    ("::ffff:102:304", "1.2.3.4"),
])
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.parametrize("address", [None, "", "garbage", "1.2.3", "1.2.3.4.5", "256.1.1.1",
                                     "1.2.3.4:80", " 1.2.3.4", "2001:db8:::1", "::g"])
def test_client_key_of_garbage_is_unknown(address: str | None) -> None:
    """Garbage must not become its own bucket per spelling (that would be no limit at all)."""
    assert client_key(address) == "unknown"


def test_one_ipv6_slash_64_is_one_client() -> None:
    """A subscriber holds a whole /64; counting single addresses lets them rotate freely."""
    keys = {client_key(f"2001:db8:aa:bb::{n:x}") for n in range(1, 200, 7)}
    assert keys == {"2001:db8:aa:bb::/64"}
    assert client_key("2001:db8:aa:bc::1") != client_key("2001:db8:aa:bb::1")


@pytest.fixture
def make_limiter(store_uri: str, key_prefix: str) -> Iterator[Callable[..., IpLimiter]]:
    """Build limiters the way the service does: on the code store's URI and pool."""
    stores = []

    def factory(send: str = "2/minute", verify: str = "3/minute",
                prefix: str | None = None) -> IpLimiter:
        prefix = prefix or key_prefix
        store = store_from_uri(store_uri, key_prefix=prefix)
        stores.append(store)
        return IpLimiter.for_store(store_uri, store, prefix, send=parse_many(send) if send else (),
                                   verify=parse_many(verify) if verify else ())

    yield factory
    for store in stores:
        store.close()


def test_send_limit_throttles_with_a_positive_retry_after(
        make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="2/minute")
    limiter.hit("send", "1.2.3.4")
    limiter.hit("send", "1.2.3.4")
    with pytest.raises(Throttled) as info:
        limiter.hit("send", "1.2.3.4")
    assert info.value.retry_after is not None
    assert 1 <= info.value.retry_after <= 60
    assert info.value.status == 429


def test_endpoints_are_counted_separately(make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="2/minute", verify="3/minute")
    for _ in range(2):
        limiter.hit("send", "1.2.3.4")
    with pytest.raises(Throttled):
        limiter.hit("send", "1.2.3.4")
    for _ in range(3):
        limiter.hit("verify", "1.2.3.4")  # sends did not use up the verify budget
    with pytest.raises(Throttled):
        limiter.hit("verify", "1.2.3.4")


def test_clients_are_counted_separately(make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="1/minute")
    limiter.hit("send", "1.2.3.4")
    limiter.hit("send", "5.6.7.8")
    limiter.hit("send", "2001:db8::1")
    with pytest.raises(Throttled):
        limiter.hit("send", "::ffff:1.2.3.4")  # the same IPv4 client, mapped
    with pytest.raises(Throttled):
        limiter.hit("send", "2001:db8::ffff")  # the same /64


def test_every_limit_of_an_endpoint_applies(make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="10/minute;2/hour")
    limiter.hit("send", "1.2.3.4")
    limiter.hit("send", "1.2.3.4")
    with pytest.raises(Throttled) as info:
        limiter.hit("send", "1.2.3.4")
    assert 60 < info.value.retry_after <= 3600  # the hourly window, not the minute


def test_no_limits_never_throttle(make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="", verify="")
    for _ in range(50):
        limiter.hit("send", "1.2.3.4")
        limiter.hit("verify", None)


def test_unknown_clients_share_one_bucket(make_limiter: Callable[..., IpLimiter]) -> None:
    limiter = make_limiter(send="2/minute")
    limiter.hit("send", None)
    limiter.hit("send", "garbage")
    with pytest.raises(Throttled):
        limiter.hit("send", "")


def test_apps_with_different_prefixes_do_not_share_counts(
        make_limiter: Callable[..., IpLimiter], key_prefix: str) -> None:
    first = make_limiter(send="1/minute")
    second = make_limiter(send="1/minute", prefix=f"{key_prefix}-other")
    first.hit("send", "1.2.3.4")
    second.hit("send", "1.2.3.4")
    with pytest.raises(Throttled):
        first.hit("send", "1.2.3.4")


@pytest.mark.redis
def test_redis_limiter_keys_live_under_the_prefix(redis_url: str, key_prefix: str) -> None:
    """Operators find (and clear) the IP counters next to the codes, under one prefix."""
    store = store_from_uri(redis_url, key_prefix=key_prefix)
    try:
        limiter = IpLimiter.for_store(redis_url, store, key_prefix, send=parse_many("5/minute"),
                                      verify=())
        limiter.hit("send", "1.2.3.4")
        keys = store.client.keys(f"{key_prefix}:ip*")  # type: ignore[attr-defined]
        assert len(keys) == 1
        assert "1.2.3.4" in keys[0]
    finally:
        store.close()


@pytest.mark.redis
def test_unreachable_redis_fails_closed_and_fast() -> None:
    """No Redis must mean 503 at once, not an unthrottled send or a hung worker."""
    uri = f"redis://127.0.0.1:{free_port()}/0"
    store = store_from_uri(uri, key_prefix="unreachable", timeout=1.0)
    try:
        limiter = IpLimiter.for_store(uri, store, "unreachable", send=parse_many("5/minute"),
                                      verify=parse_many("5/minute"))
        for endpoint in ("send", "verify"):
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as info:
                limiter.hit(endpoint, "1.2.3.4")
            assert time.monotonic() - started < 1.5
            assert info.value.status == 503
    finally:
        store.close()


def test_unknown_endpoint_is_a_programming_error(make_limiter: Callable[..., IpLimiter]) -> None:
    """A typo in the endpoint name is a bug in the caller, not a storage outage."""
    limiter = make_limiter()
    with pytest.raises((KeyError, ValueError)):  # anything but StorageUnavailable (a 503)
        limiter.hit("sned", "1.2.3.4")
