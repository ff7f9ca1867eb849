"""Redis store (single, Sentinel or Cluster): every decision is one Lua script.

One round trip per request on a single Redis or Sentinel: the client's per-IP hit is
folded into the send or verify script. On Cluster the client's hash and the phone's live in
different slots, so a request costs two (the per-IP hit, then the decision).

No half-state after a fault: a caller answered 503 must not see its decision take effect
when a stalled Redis resumes. Each decision script gets a deadline on Redis' clock — the
app's clock plus an offset measured against Redis, never assumed — a little shorter than the
socket timeout, and does nothing once it has passed. A script that answers "too late" well
within the timeout means the offset went stale (a failover to a node with another clock):
the offset is measured again and the call retried once, so a skewed clock never refuses
everything.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from functools import wraps
from importlib import resources
from typing import Any, TypeVar

import redis

from ..config import Limit
from ..errors import ConfigurationError, StorageUnavailable
from .base import (
    ENDPOINT_FIELDS,
    ClientLimits,
    Keys,
    PhoneStatus,
    Refusal,
    SendDecision,
    VerifyOutcome,
    VerifyResult,
)
from .connection import connect
from .fields import limit_args as _limit_args
from .fields import phone_status
from .fields import seconds_from_ms as _seconds

T = TypeVar("T")
logger = logging.getLogger("flask_smscode")

_CLOCK_REFRESH_SECONDS = 60.0
_LOG_EVERY_SECONDS = 10.0


def _load_script(name: str) -> str:
    folder = resources.files(__package__).joinpath("lua")
    return folder.joinpath("common.lua").read_text("utf-8") + "\n" + \
        folder.joinpath(name).read_text("utf-8")


class _FaultLog:
    """One WARNING per cause per interval: a Redis outage must not flood the log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def report(self, kind: str, exc: BaseException | str) -> None:
        cause = exc if isinstance(exc, str) else f"{type(exc).__name__}: {_redis_message(exc)}"
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(cause, -math.inf) < _LOG_EVERY_SECONDS:
                self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
                return
            self._last[cause] = now
            suppressed = self._suppressed.pop(cause, 0)
        logger.warning("smscode event=storage outcome=storage_unavailable store=%s cause=%r%s",
                       kind, cause,
                       f" suppressed={suppressed}" if suppressed else "")


def _redis_message(exc: BaseException) -> str:
    """Redis' own message, bounded. redis-py's messages name host:port, never a password."""
    text = " ".join(str(exc).split())
    return text[:200]


def _unavailable_on_redis_error(method: Callable[..., T]) -> Callable[..., T]:
    """Turn any redis-py failure into StorageUnavailable (fail closed, cause logged)."""

    @wraps(method)
    def wrapper(self: RedisStore, *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except redis.RedisError as exc:
            self.faults.report(self.kind, exc)
            self._clock_checked = 0.0  # a failover may have moved us to another clock
        raise StorageUnavailable()  # outside the except block: no chained Redis error

    return wrapper


class RedisStore:
    def __init__(self, uri: str, key_prefix: str = "smscode", timeout: float = 1.0,
                 **options: Any) -> None:
        self.keys = Keys(key_prefix)
        connected = connect(uri, timeout=timeout, options=options)
        self.client = connected.client
        self.cluster = connected.cluster
        self.kind = connected.kind
        self.faults = _FaultLog()
        # The script must run before the client gives up; what is left covers the reply.
        self._budget_ms = timeout * 1000 * 0.75
        self._offset_ms = 0.0
        self._clock_checked = 0.0
        self._clock_lock = threading.Lock()
        self._scripts = {name: self.client.register_script(_load_script(f"{name}.lua"))
                         for name in ("send", "check", "cancel", "hit", "read", "reset",
                                      "clock")}
        if not self.cluster:
            self._refuse_cluster_behind_plain_uri(timeout)

    def _refuse_cluster_behind_plain_uri(self, timeout: float) -> None:
        """A redis:// URI that reaches a cluster node would answer MOVED (503) forever."""
        try:
            info = self.client.info("cluster")
        except redis.RedisError:
            return  # Redis down at start-up: the app still starts, requests answer 503
        if str(info.get("cluster_enabled", "0")) == "1":
            self.client.close()
            raise ConfigurationError(
                "SMSCODE_STORAGE_URI reaches a Redis Cluster node; use redis+cluster://"
                "host:port[,host:port...] so that keys are routed to their slots.")

    # -- the clock and the deadline -------------------------------------------------------
    def _measure_offset(self, key: str) -> None:
        started = time.time()
        redis_ms = int(self._scripts["clock"](keys=[key], args=[]))
        finished = time.time()
        self._offset_ms = redis_ms - (started + finished) / 2 * 1000
        self._clock_checked = time.monotonic()

    def _deadline(self, key: str) -> int:
        if time.monotonic() - self._clock_checked > _CLOCK_REFRESH_SECONDS:
            with self._clock_lock:
                if time.monotonic() - self._clock_checked > _CLOCK_REFRESH_SECONDS:
                    self._measure_offset(key)
        return int(time.time() * 1000 + self._offset_ms + self._budget_ms)

    def _decide(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a decision script with a deadline; "late" is a 503 that changed nothing."""
        for attempt in (1, 2):
            started = time.monotonic()
            deadline = self._deadline(keys[0])
            result = self._scripts[name](keys=keys, args=[deadline, *args])
            if result[0] != "late":
                return result
            elapsed_ms = (time.monotonic() - started) * 1000
            if elapsed_ms >= self._budget_ms or attempt == 2:
                self.faults.report(self.kind, "StorageStalled: the decision reached Redis "
                                              "after its deadline and was not applied")
                raise StorageUnavailable()
            with self._clock_lock:  # answered in time but "late": our offset is stale
                self._measure_offset(keys[0])
        raise AssertionError("unreachable")

    # -- the Store protocol ---------------------------------------------------------------
    @_unavailable_on_redis_error
    def reserve_send(self, phone: str, purpose: str, code_hash: str, send_id: str, *,
                     ttl: int, cooldown: int, limits: Sequence[Limit],
                     client: ClientLimits | None = None) -> SendDecision:
        keys = [self.keys.phone(phone)]
        client_args: list[Any] = [0]
        if client is not None:
            if self.cluster:
                wait = self._hit(ENDPOINT_FIELDS["send"], client)
                if wait:
                    return SendDecision(Refusal.CLIENT, wait)
            else:
                keys.append(self.keys.client(client.client))
                client_args = _limit_args(client.limits)
        outcome, wait_ms = self._decide("send", keys, [
            purpose, code_hash, send_id, ttl * 1000, cooldown * 1000, *_limit_args(limits),
            *client_args])
        if outcome == "ok":
            return SendDecision()
        return SendDecision(Refusal(outcome), _seconds(wait_ms))

    @_unavailable_on_redis_error
    def hit_client(self, endpoint: str, client: ClientLimits) -> int:
        return self._hit(ENDPOINT_FIELDS[endpoint], client)

    def _hit(self, field: str, client: ClientLimits) -> int:
        if not client.limits:
            return 0
        outcome, wait_ms = self._decide("hit", [self.keys.client(client.client)],
                                        [field, *_limit_args(client.limits)])
        return 0 if outcome == "ok" else _seconds(wait_ms)

    @_unavailable_on_redis_error
    def cancel_send(self, phone: str, purpose: str, send_id: str, *,
                    limits: Sequence[Limit]) -> None:
        self._scripts["cancel"](keys=[self.keys.phone(phone)],
                                args=[purpose, send_id, *_limit_args(limits)])

    @_unavailable_on_redis_error
    def check_code(self, phone: str, purpose: str, code_hash: str, *,
                   max_attempts: int, window: int,
                   client: ClientLimits | None = None) -> VerifyResult:
        keys = [self.keys.phone(phone)]
        client_args: list[Any] = [0]
        if client is not None:
            if self.cluster:
                wait = self._hit(ENDPOINT_FIELDS["verify"], client)
                if wait:
                    return VerifyResult(VerifyOutcome.THROTTLED, 0, wait)
            else:
                keys.append(self.keys.client(client.client))
                client_args = _limit_args(client.limits)
        outcome, attempts_left, wait_ms = self._decide(
            "check", keys, [purpose, code_hash, max_attempts, window * 1000, *client_args])
        return VerifyResult(VerifyOutcome(outcome), int(attempts_left),
                            _seconds(wait_ms) if int(wait_ms) > 0 else 0)

    @_unavailable_on_redis_error
    def use_token(self, token_id: str, ttl: int) -> bool:
        return bool(self.client.set(self.keys.token(token_id), 1, nx=True, ex=ttl))

    @_unavailable_on_redis_error
    def token_used(self, token_id: str) -> bool:
        return bool(self.client.exists(self.keys.token(token_id)))

    @_unavailable_on_redis_error
    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        now, *flat = self._scripts["read"](keys=[self.keys.phone(phone)], args=[])
        return phone_status(dict(zip(flat[::2], flat[1::2], strict=True)), int(now), purpose,
                            limits)

    @_unavailable_on_redis_error
    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        return int(self._scripts["reset"](keys=[self.keys.phone(phone)], args=list(purposes)))

    @_unavailable_on_redis_error
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()
