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

import contextlib
import functools
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from functools import wraps
from importlib import resources
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError, RedisClusterException

from flask_smscode.config import Limit
from flask_smscode.errors import ConfigurationError, StorageUnavailable
from flask_smscode.stores.base import (
    DELIVERY_FIELD,
    ENDPOINT_FIELDS,
    ClientLimits,
    GuardRequest,
    IdempotencyRequest,
    IdempotencyState,
    Keys,
    LastDelivery,
    PhoneStatus,
    PrefixStatus,
    Refusal,
    SendDecision,
    StoredAnswer,
    SuppressedNumber,
    VerifyOutcome,
    VerifyResult,
    last_delivery,
    suppressed_number,
    suppression_key,
)
from flask_smscode.stores.connection import connect
from flask_smscode.stores.fields import (
    answer_args,
    idempotency_state,
    phone_status,
    prefix_status,
    window_counts,
)
from flask_smscode.stores.fields import limit_args as _limit_args
from flask_smscode.stores.fields import seconds_from_ms as _seconds
from flask_smscode.stores.stats import (
    delivery_field,
    hour_of,
    send_field,
    stats_key,
    verify_field,
)

T = TypeVar("T")
logger = logging.getLogger("flask_smscode")

_CLOCK_REFRESH_SECONDS = 60.0
_LOG_EVERY_SECONDS = 10.0


def _load_script(name: str) -> str:
    folder = resources.files(__package__).joinpath("lua")
    body = folder.joinpath(name).read_text("utf-8")
    if name in _COUNTED:
        # Operator statistics (stores/stats.py): the body runs as a function and its
        # answer goes through stats_after (lua/common.lua), which bumps the hour's counter
        # when the call carries one (role 's'). The scripts themselves stay untouched.
        body = f"return stats_after('{_COUNTED[name]}', (function()\n{body}\nend)())"
    return folder.joinpath("common.lua").read_text("utf-8") + "\n" + body


_COUNTED = {"send.lua": "send", "check.lua": "check"}


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
        logger.warning(
            "smscode event=storage outcome=storage_unavailable store=%s cause=%r%s",
            kind,
            cause,
            f" suppressed={suppressed}" if suppressed else "",
        )


@functools.lru_cache(maxsize=256)
def _check_conf(
    max_attempts: int, window_ms: int, conversion_ms: int, client_limits: tuple[Limit, ...]
) -> bytes:
    """check.lua's settings as one argument (see its header): they are the same on every
    verify of an app, and each argument costs redis-py and Redis encoding work (bytes:
    redis-py sends them as they are)."""
    return "|".join(
        map(str, (max_attempts, window_ms, conversion_ms, *_limit_args(client_limits)))
    ).encode()


@functools.lru_cache(maxsize=256)
def _send_conf(
    ttl_ms: int,
    cooldown_ms: int,
    phone: tuple[Limit, ...],
    client: tuple[Limit, ...],
    global_: tuple[Limit, ...],
    prefix: tuple[Limit, ...],
    *guard: int,
) -> bytes:
    """send.lua's settings as one argument, like :func:`_check_conf`."""
    return "|".join(
        map(
            str,
            (
                ttl_ms,
                cooldown_ms,
                *_limit_args(phone),
                *_limit_args(client),
                *_limit_args(global_),
                *_limit_args(prefix),
                *guard,
            ),
        )
    ).encode()


def _redis_message(exc: BaseException) -> str:
    """Redis' own message, bounded. redis-py's messages name host:port, never a password."""
    text = " ".join(str(exc).split())
    return text[:200]


def _unavailable_on_redis_error(method: Callable[..., T]) -> Callable[..., T]:
    """Turn any redis-py failure into StorageUnavailable (fail closed, cause logged)."""

    @wraps(method)
    def wrapper(self: RedisStore, *args: Any, **kwargs: Any) -> T:
        if self._watch is not None:
            self._watch.ensure()
        try:
            return method(self, *args, **kwargs)
        except (redis.RedisError, RedisClusterException) as exc:
            self.faults.report(self.kind, exc)
            self._clock_checked = 0.0  # a failover may have moved us to another clock
        raise StorageUnavailable()  # outside the except block: no chained Redis error

    return wrapper


class RedisStore:
    def __init__(
        self, uri: str, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
    ) -> None:
        self.keys = Keys(key_prefix)
        connected = connect(uri, timeout=timeout, options=options)
        self.client = connected.client
        self.cluster = connected.cluster
        self.kind = connected.kind
        self._watch = connected.watch
        self.faults = _FaultLog()
        # The script must run before the client gives up; what is left covers the reply.
        self._budget_ms = timeout * 1000 * 0.75
        self._offset_ms = 0.0
        self._clock_checked = 0.0
        self._clock_lock = threading.Lock()
        self._scripts = {
            name: self.client.register_script(_load_script(f"{name}.lua"))
            for name in ("send", "check", "cancel", "hit", "read", "reset", "clock", "idem")
        }
        if not self.cluster:
            self._refuse_cluster_behind_plain_uri(timeout)

    @classmethod
    def from_uri(
        cls, uri: str, *, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
    ) -> RedisStore:
        """Every redis scheme (single, TLS, unix socket, Cluster, Sentinel): the topology is
        :func:`~flask_smscode.stores.connection.connect`'s to tell from the URI."""
        return cls(uri, key_prefix=key_prefix, timeout=timeout, **options)

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
                "host:port[,host:port...] so that keys are routed to their slots."
            )

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

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA of a loaded script: redis-py's Script wrapper costs a request more Python
        than the call itself; a Redis that lost its scripts (restart, failover) gets the
        script again, as the wrapper would do."""
        script = self._scripts[name]
        try:
            return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return script(keys=keys, args=args)

    def _decide(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a decision script with a deadline; "late" is a 503 that changed nothing."""
        for attempt in (1, 2):
            started = time.monotonic()
            deadline = self._deadline(keys[0])
            result = self._run(name, keys, [deadline, *args])
            if result[0] != "late":
                return result
            elapsed_ms = (time.monotonic() - started) * 1000
            if elapsed_ms >= self._budget_ms or attempt == 2:
                self.faults.report(
                    self.kind,
                    "StorageStalled: the decision reached Redis "
                    "after its deadline and was not applied",
                )
                raise StorageUnavailable()
            with self._clock_lock:  # answered in time but "late": our offset is stale
                self._measure_offset(keys[0])
        raise AssertionError("unreachable")

    # -- the Store protocol ---------------------------------------------------------------
    # On a single Redis or Sentinel every key of a send (idempotency key, client, phone,
    # global budget, number prefix) goes to one send.lua call: one round trip. On Cluster
    # they live in different slots, so the same script runs once per slot, in the order
    # idempotency claim, client, phone, global, prefix; a refusal by a later step undoes
    # the earlier ones (cancel.lua) and records the refusal as the key's answer: up to five
    # round trips, documented in the README.
    @_unavailable_on_redis_error
    def reserve_send(
        self,
        phone: str,
        purpose: str,
        code_hash: str,
        send_id: str,
        *,
        ttl: int,
        cooldown: int,
        limits: Sequence[Limit],
        client: ClientLimits | None = None,
        guard: GuardRequest | None = None,
        idempotency: IdempotencyRequest | None = None,
    ) -> SendDecision:
        roles = self._send_roles(phone, client, guard, idempotency)
        args = self._send_args(
            purpose, code_hash, send_id, ttl, cooldown, limits, client, guard, idempotency
        )
        if not self.cluster:
            roles["s"] = self._stats_key()  # counted by the same call (stores/stats.py)
            layout = "".join(roles)
            return self._send_decision(self._decide("send", list(roles.values()), [layout, *args]))
        decision = self._reserve_on_cluster(
            roles, args, phone, purpose, send_id, limits, client, guard, idempotency
        )
        self._count_on_cluster(send_field(decision))
        return decision

    def _send_roles(
        self,
        phone: str,
        client: ClientLimits | None,
        guard: GuardRequest | None,
        idempotency: IdempotencyRequest | None,
    ) -> dict[str, str]:
        """The keys of one send by role letter (see keyed() in lua/common.lua), in order."""
        roles: dict[str, str] = {}
        if idempotency is not None:
            roles["i"] = self.keys.idempotency(idempotency.key_id)
        if client is not None and client.limits:
            roles["c"] = self.keys.client(client.client)
        roles["P"] = self.keys.phone(phone)
        if guard is not None and guard.global_limits:
            roles["g"] = self.keys.guard_global()
        if guard is not None and guard.prefix is not None and guard.counts_prefix:
            roles["p"] = self.keys.guard_prefix(guard.prefix)
        return roles

    @staticmethod
    def _send_args(
        purpose: str,
        code_hash: str,
        send_id: str,
        ttl: int,
        cooldown: int,
        limits: Sequence[Limit],
        client: ClientLimits | None,
        guard: GuardRequest | None,
        idempotency: IdempotencyRequest | None,
    ) -> list[Any]:
        g = guard or GuardRequest()
        conf = _send_conf(
            ttl * 1000,
            cooldown * 1000,
            tuple(limits),
            tuple(client.limits) if client is not None else (),
            tuple(g.global_limits),
            tuple(g.prefix_limits),
            g.window_ms,
            g.min_sends,
            g.ratio_permille,
            g.block_ms,
            g.min_sources,
            g.source_sends,
            int(g.shadow),
        )
        return [
            purpose,
            code_hash,
            send_id,
            conf,
            idempotency.fingerprint if idempotency else "",
            idempotency.pending_ms if idempotency else 0,
            idempotency.ttl_ms if idempotency else 0,
            g.source or "",  # per request: not part of the cached settings argument
        ]

    @staticmethod
    def _send_decision(reply: Sequence[Any]) -> SendDecision:
        outcome = str(reply[0])
        if outcome == "ok":  # a 4th item: the guard in shadow mode would have refused
            return SendDecision(would_block=Refusal(str(reply[3])) if len(reply) > 3 else None)
        known = idempotency_state(reply)
        if known is not None:
            return SendDecision(idempotency=known)
        return SendDecision(
            Refusal(outcome), _seconds(reply[1]), len(reply) > 2 and int(reply[2]) == 1
        )

    def _reserve_on_cluster(
        self,
        roles: dict[str, str],
        args: list[Any],
        phone: str,
        purpose: str,
        send_id: str,
        limits: Sequence[Limit],
        client: ClientLimits | None,
        guard: GuardRequest | None,
        idempotency: IdempotencyRequest | None,
    ) -> SendDecision:
        done: list[str] = []
        would: Refusal | None = None  # shadow mode: the first slot's "would block" wins
        try:
            for role, key in roles.items():
                decision = self._send_decision(self._decide("send", [key], [role, *args]))
                would = would or decision.would_block
                if decision.idempotency is not None:
                    return decision
                if decision.refused_by is not None:
                    self._undo_on_cluster(done, roles, purpose, send_id, limits, guard)
                    if idempotency is not None and decision.refused_by is Refusal.CLIENT:
                        # Past its per-IP budget a client's key keeps nothing (the claim
                        # taken in the key's own slot is dropped), as on a single Redis.
                        self._idem("release", idempotency)
                    elif idempotency is not None:
                        self._idem(
                            "finish",
                            idempotency,
                            StoredAnswer(
                                429,
                                "throttled",
                                f"r:{decision.refused_by.value}",
                                decision.retry_after,
                            ),
                        )
                    return decision
                if role != "i":
                    done.append(role)
        except (redis.RedisError, StorageUnavailable):
            # A 503 must leave nothing behind: undo what this send already counted.
            with contextlib.suppress(redis.RedisError, StorageUnavailable):
                self._undo_on_cluster(done, roles, purpose, send_id, limits, guard)
                if idempotency is not None:
                    self._idem("release", idempotency)
            raise
        return SendDecision(would_block=would)

    def _undo_on_cluster(
        self,
        done: Sequence[str],
        roles: dict[str, str],
        purpose: str,
        send_id: str,
        limits: Sequence[Limit],
        guard: GuardRequest | None,
    ) -> None:
        for role in done:
            if role in "Pgp":
                self._scripts["cancel"](
                    keys=[roles[role]],
                    args=[role, *self._cancel_args(purpose, send_id, limits, guard)],
                )

    @staticmethod
    def _cancel_args(
        purpose: str, send_id: str, limits: Sequence[Limit], guard: GuardRequest | None
    ) -> list[Any]:
        g = guard or GuardRequest()
        return [
            purpose,
            send_id,
            *_limit_args(limits),
            *_limit_args(g.global_limits),
            *_limit_args(g.prefix_limits),
            g.window_ms,
            g.source or "",
        ]

    def _idem(
        self, op: str, request: IdempotencyRequest, answer: StoredAnswer | None = None
    ) -> IdempotencyState | None:
        extra = [request.ttl_ms, *answer_args(answer)] if answer is not None else []
        reply = self._scripts["idem"](
            keys=[self.keys.idempotency(request.key_id)], args=[op, request.fingerprint, *extra]
        )
        return idempotency_state(reply)

    @_unavailable_on_redis_error
    def finish_idempotency(self, request: IdempotencyRequest, answer: StoredAnswer) -> None:
        self._idem("finish", request, answer)

    @_unavailable_on_redis_error
    def release_idempotency(self, request: IdempotencyRequest) -> None:
        self._idem("release", request)

    @_unavailable_on_redis_error
    def peek_idempotency(self, request: IdempotencyRequest) -> IdempotencyState | None:
        return self._idem("peek", request)

    @_unavailable_on_redis_error
    def hit_client(self, endpoint: str, client: ClientLimits) -> int:
        return self._hit(ENDPOINT_FIELDS[endpoint], client)

    def _hit(self, field: str, client: ClientLimits) -> int:
        if not client.limits:
            return 0
        outcome, wait_ms = self._decide(
            "hit", [self.keys.client(client.client)], [field, *_limit_args(client.limits)]
        )
        return 0 if outcome == "ok" else _seconds(wait_ms)

    @_unavailable_on_redis_error
    def cancel_send(
        self,
        phone: str,
        purpose: str,
        send_id: str,
        *,
        limits: Sequence[Limit],
        guard: GuardRequest | None = None,
    ) -> None:
        roles = {role: key for role, key in self._send_roles(phone, None, guard, None).items()}
        args = self._cancel_args(purpose, send_id, limits, guard)
        if not self.cluster:
            self._scripts["cancel"](keys=list(roles.values()), args=["".join(roles), *args])
            return
        for role, key in roles.items():  # one slot per call
            self._scripts["cancel"](keys=[key], args=[role, *args])

    @_unavailable_on_redis_error
    def check_code(
        self,
        phone: str,
        purpose: str,
        code_hash: str,
        *,
        max_attempts: int,
        window: int,
        client: ClientLimits | None = None,
        guard: GuardRequest | None = None,
    ) -> VerifyResult:
        roles: dict[str, str] = {}
        client_limits: tuple[Limit, ...] = ()
        if client is not None:
            if self.cluster:
                wait = self._hit(ENDPOINT_FIELDS["verify"], client)
                if wait:
                    throttled = VerifyResult(VerifyOutcome.THROTTLED, 0, wait)
                    self._count_on_cluster(verify_field(throttled))  # stores/stats.py
                    return throttled
            else:
                roles["c"] = self.keys.client(client.client)
                client_limits = tuple(client.limits)
        roles["P"] = self.keys.phone(phone)
        converts = guard is not None and guard.prefix is not None and guard.window_ms > 0
        window_ms = guard.window_ms if guard is not None and converts else 0
        if converts and guard is not None and guard.prefix is not None and not self.cluster:
            roles["p"] = self.keys.guard_prefix(guard.prefix)
        if not self.cluster:
            roles["s"] = self._stats_key()  # counted by the same call (stores/stats.py)
        args = [
            purpose,
            code_hash,
            _check_conf(max_attempts, window * 1000, window_ms, client_limits),
            (guard.source or "") if guard is not None else "",  # the guard's source rule
        ]
        outcome, attempts_left, wait_ms = self._decide(
            "check", list(roles.values()), ["".join(roles), *args]
        )
        if (
            outcome == "ok"
            and converts
            and self.cluster
            and guard is not None
            and guard.prefix is not None
        ):
            self._convert_on_cluster(guard.prefix, args)
        result = VerifyResult(
            VerifyOutcome(outcome), int(attempts_left), _seconds(wait_ms) if int(wait_ms) > 0 else 0
        )
        if self.cluster:
            self._count_on_cluster(verify_field(result))
        return result

    def _convert_on_cluster(self, prefix: str, args: list[Any]) -> None:
        """Count the conversion in the prefix's slot. The code is already consumed, so a
        failure here must not turn the success into a 503: it is logged and skipped."""
        try:
            self._decide("check", [self.keys.guard_prefix(prefix)], ["p", *args])
        except (redis.RedisError, StorageUnavailable) as exc:
            self.faults.report(self.kind, exc)

    @_unavailable_on_redis_error
    def guard_status(
        self, global_limits: Sequence[Limit], prefix_limits: Sequence[Limit], window_ms: int
    ) -> tuple[dict[str, int], list[PrefixStatus]]:
        now, *flat = self._scripts["read"](keys=[self.keys.guard_global()], args=[])
        counts = window_counts(
            dict(zip(flat[::2], flat[1::2], strict=True)).get("n"), global_limits, int(now)
        )
        start = self.keys.guard_prefix("")[:-1]
        found = []
        for key in sorted(set(self.client.scan_iter(match=f"{start}*", count=1000))):
            now, *flat = self._scripts["read"](keys=[key], args=[])
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            if fields:
                found.append(
                    prefix_status(key[len(start) : -1], fields, int(now), prefix_limits, window_ms)
                )
        return counts, found

    @_unavailable_on_redis_error
    def guard_unblock(self, prefix: str) -> bool:
        return bool(self.client.hdel(self.keys.guard_prefix(prefix), "b", "cv", "w", "bh"))

    @_unavailable_on_redis_error
    def guard_learn(self, prefix: str, window_ms: int) -> None:
        script = self._scripts.get("learn")
        if script is None:  # registered on first use: apps without reports never load it
            script = self._scripts["learn"] = self.client.register_script(_load_script("learn.lua"))
        script(keys=[self.keys.guard_prefix(prefix)], args=[window_ms])

    @_unavailable_on_redis_error
    def use_token(self, token_id: str, ttl: int) -> bool:
        return bool(self.client.set(self.keys.token(token_id), 1, nx=True, ex=ttl))

    @_unavailable_on_redis_error
    def token_used(self, token_id: str) -> bool:
        return bool(self.client.exists(self.keys.token(token_id)))

    @_unavailable_on_redis_error
    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        now, *flat = self._scripts["read"](keys=[self.keys.phone(phone)], args=[])
        return phone_status(
            dict(zip(flat[::2], flat[1::2], strict=True)), int(now), purpose, limits
        )

    @_unavailable_on_redis_error
    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        return int(self._scripts["reset"](keys=[self.keys.phone(phone)], args=list(purposes)))

    @_unavailable_on_redis_error
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self.client.close()

    # -- delivery reports (aliyun/reports.py; lua/report.lua) ----------------------------
    @_unavailable_on_redis_error
    def record_delivery(
        self, phone: str, report_id: str, state: str, err_code: str, *, ttl_ms: int
    ) -> str:
        script = self._scripts.get("report")
        if script is None:  # registered on first use: apps without reports never load it
            script = self._scripts["report"] = self.client.register_script(
                _load_script("report.lua")
            )
        return str(script(keys=[self.keys.phone(phone)], args=[report_id, state, err_code, ttl_ms]))

    @_unavailable_on_redis_error
    def last_delivery(self, phone: str) -> LastDelivery | None:
        # read.lua skips fields past their expiry on Redis' clock (they linger until the
        # hash's next write).
        _, *flat = self._scripts["read"](keys=[self.keys.phone(phone)], args=[])
        return last_delivery(dict(zip(flat[::2], flat[1::2], strict=True)).get(DELIVERY_FIELD))

    # -- operator statistics (stores/stats.py; lua/stats.lua) ----------------------------
    def _stats_key(self, hour: int | None = None) -> str:
        return stats_key(self.keys.prefix, self.stats_hour() if hour is None else hour)

    def stats_hour(self) -> int:
        """The hour on Redis' clock (the measured offset), as the scripts' TTLs are."""
        return hour_of(time.time() * 1000 + self._offset_ms)

    def _count(self, field: str) -> None:
        script = self._scripts.get("stats")
        if script is None:  # registered on first use
            script = self._scripts["stats"] = self.client.register_script(_load_script("stats.lua"))
        script(keys=[self._stats_key()], args=[field])

    def _count_on_cluster(self, field: str | None) -> None:
        """Cluster: the hour's hash is its own slot, one more round trip. The decision is
        made and answered already: a failure here is logged, never a 503."""
        if field is None:
            return
        try:
            self._count(field)
        except redis.RedisError as exc:
            self.faults.report(self.kind, exc)

    @_unavailable_on_redis_error
    def count_delivery(self, carrier: str, vendor: object, seconds: float) -> None:
        self._count(delivery_field(carrier, vendor, seconds))

    @_unavailable_on_redis_error
    def read_stats(self, hours: Sequence[int]) -> dict[int, dict[str, int]]:
        """One HGETALL per hour (a pipeline on a single Redis; on Cluster each key is its
        own slot and redis-py's cluster pipeline groups them by node)."""
        pipe = self.client.pipeline(transaction=False)
        for hour in hours:
            pipe.hgetall(self._stats_key(hour))
        out: dict[int, dict[str, int]] = {}
        for hour, flat in zip(hours, pipe.execute(), strict=True):
            if flat:
                out[hour] = {str(k): int(v) for k, v in flat.items()}
        return out

    # -- failover: which sender carried a code (lua/sender.lua) --------------------------
    @_unavailable_on_redis_error
    def record_sender(self, phone: str, purpose: str, send_id: str, index: int) -> None:
        script = self._scripts.get("sender")
        if script is None:  # registered on first use: most apps never fail over
            script = self._scripts["sender"] = self.client.register_script(
                _load_script("sender.lua")
            )
        script(keys=[self.keys.phone(phone)], args=[purpose, send_id, index])

    @_unavailable_on_redis_error
    def sender_of(self, phone: str, purpose: str, send_id: str) -> int:
        from flask_smscode.stores.base import sender_index

        value = self.client.hget(self.keys.phone(phone), f"sn:{purpose}")
        text = value.decode() if isinstance(value, bytes) else value
        # The field expires with the code; a lingering one names an older send_id.
        return sender_index(text, send_id)

    # -- replies and the suppression list (lua/reply.lua; stores/base.py) ----------------
    @_unavailable_on_redis_error
    def record_reply(self, phone: str, reply_id: str, sent_s: int, *, ttl_ms: int) -> str:
        script = self._scripts.get("reply")
        if script is None:  # registered on first use: apps without replies never load it
            script = self._scripts["reply"] = self.client.register_script(_load_script("reply.lua"))
        return str(script(keys=[self.keys.phone(phone)], args=[reply_id, sent_s, ttl_ms]))

    @_unavailable_on_redis_error
    def suppress(self, phone: str, source: str) -> bool:
        key = suppression_key(self.keys.prefix)
        return bool(self.client.hsetnx(key, phone, f"{int(time.time() * 1000)}|{source}"))

    @_unavailable_on_redis_error
    def unsuppress(self, phone: str) -> bool:
        return bool(self.client.hdel(suppression_key(self.keys.prefix), phone))

    @_unavailable_on_redis_error
    def suppressed(self, phones: Sequence[str]) -> set[str]:
        """One HMGET per 1000 numbers, all on the list's one key (one slot on Cluster)."""
        key = suppression_key(self.keys.prefix)
        found: set[str] = set()
        for start in range(0, len(phones), 1000):
            chunk = list(phones[start : start + 1000])
            values = self.client.hmget(key, chunk)
            found.update(phone for phone, value in zip(chunk, values, strict=True) if value)
        return found

    @_unavailable_on_redis_error
    def suppression_list(self) -> list[SuppressedNumber]:
        entries = []
        for phone, value in self.client.hscan_iter(suppression_key(self.keys.prefix), count=1000):
            phone_text = phone.decode() if isinstance(phone, bytes) else str(phone)
            value_text = value.decode() if isinstance(value, bytes) else str(value)
            entry = suppressed_number(phone_text, value_text)
            if entry is not None:
                entries.append(entry)
        return sorted(entries, key=lambda e: e.phone)
