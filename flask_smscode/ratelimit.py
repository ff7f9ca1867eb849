"""Per-client-IP limits on the two endpoints, with the ``limits`` library.

Flask-Limiter keeps one ``Limiter`` per app; a blueprint registered on several apps with
different settings needs one limiter per app, so this uses ``limits`` (Flask-Limiter's
engine) directly, on the same storage URI as the codes, and fails closed.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import Any

from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from .config import ceil_seconds
from .errors import StorageUnavailable, Throttled


def client_key(address: str | None) -> str:
    """The identity an IP limit counts: the address itself, or its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64, so counting single addresses would
    let one client rotate through 2**64 of them.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class IpLimiter:
    def __init__(self, storage: Storage, *, send: Sequence[RateLimitItem],
                 verify: Sequence[RateLimitItem]) -> None:
        self._limiter = FixedWindowRateLimiter(storage)
        self._limits = {"send": tuple(send), "verify": tuple(verify)}

    @classmethod
    def for_store(cls, uri: str, store: Any, key_prefix: str, **limits: Sequence[RateLimitItem]
                  ) -> IpLimiter:
        """Share the code store's Redis pool; memory:// gets its own in-process storage."""
        pool = getattr(store, "connection_pool", None)
        if pool is not None:
            storage: Storage = RedisStorage(uri, connection_pool=pool, wrap_exceptions=True,
                                            key_prefix=f"{key_prefix}:ip")
        else:
            storage = MemoryStorage()
        return cls(storage, **limits)

    def hit(self, endpoint: str, address: str | None) -> None:
        """Count one request; raise Throttled (with the wait) or StorageUnavailable."""
        who = client_key(address)
        items = self._limits[endpoint]  # a KeyError here is a bug, not a storage fault
        try:
            for item in items:
                if not self._limiter.hit(item, endpoint, who):
                    reset_at = self._limiter.get_window_stats(item, endpoint, who).reset_time
                    raise Throttled("Too many requests from this network; try again later.",
                                    retry_after=ceil_seconds(reset_at - time.time()))
        except Throttled:
            raise
        except Exception as exc:  # limits wraps redis errors in StorageError; fail closed
            raise StorageUnavailable() from exc
