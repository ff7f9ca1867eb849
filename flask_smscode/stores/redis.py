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
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import wraps
from importlib import resources
from typing import Any, NamedTuple, TypeVar

import redis
from redis.exceptions import AskError, MovedError, NoScriptError, RedisClusterException

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
from flask_smscode.stores.wire import call

T = TypeVar("T")
logger = logging.getLogger("flask_smscode")

_CLOCK_REFRESH_SECONDS = 60.0
#: How much longer than the storage timeout a request may take in a stall: the most it
#: waits for a clock measurement before its decision (RedisStore._refresh_offset).
STALL_MARGIN_SECONDS = 0.25
#: How long an undo whose node is down is retried (a Sentinel failover takes its
#: down-after time plus an election, a Cluster replica's promotion the node timeout, 15 s
#: by default): RedisStore._defer_undo.
UNDO_PATIENCE_SECONDS = 30.0
#: Undos kept waiting at most (a long outage under traffic: every failed send or verify
#: leaves one): past it a new one is given up at once, counted and logged, so memory and
#: the background pass stay bounded. What it held only throttles (a cooldown, a count).
MAX_PENDING_UNDOS = 10_000
#: A reply lost with its connection: the errors after which the command may have run.
_REPLY_LOST = (redis.ConnectionError, redis.TimeoutError)
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
            # The clock offset is kept: re-measuring after every error made each thread's
            # next request pay a clock round trip first (twice the timeout in a stall). A
            # failover to a node with another clock shows as "late but answered fast" in
            # _decide, and a clock behind ours only makes deadlines generous until the
            # periodic refresh (_deadline).
            self.faults.report(self.kind, exc)
        raise StorageUnavailable()  # outside the except block: no chained Redis error

    return wrapper


class _Undo(NamedTuple):
    """One give-back retried until it gets through (:meth:`RedisStore._defer_undo`)."""

    give_up: float  # monotonic: retried until then
    not_before: float  # monotonic: the failed decision can no longer run (its deadline)
    name: str  # the script
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    what: str  # for the log: which give-back
    phone_key: str  # the phone it concerns ('' none): settled before its next decision


class _NotReplicated(Exception):
    """A decision Redis applied but fewer replicas than required acknowledged (WAIT): the
    caller undoes it and answers 503. Carries the script's reply (check.lua's holds what the
    undo puts back)."""

    def __init__(self, reply: Sequence[Any], acked: int, needed: int) -> None:
        super().__init__(f"{acked} of {needed} replicas acknowledged")
        self.reply = reply


# Decisions whose "ok" grants something a failover must not lose or bring back: a send's
# code (and cooldown), a verify's consume. Their EVALSHA travels with a WAIT.
_ACKED = frozenset({"send", "check"})


class RedisStore:
    """Codes and counters in Redis.

    Durability (``SMSCODE_STORAGE_MIN_REPLICAS``, ``min_replicas``): Redis replicates
    asynchronously, so a write acknowledged by a master that dies before its replica got it
    is lost by the failover: a delivered code answers ``code_expired``, or a used code
    verifies again. With ``min_replicas`` > 0 a send or verify whose decision grants
    something ("ok") answers 200 only once that many replicas acknowledged it (``WAIT``);
    otherwise the decision is undone on the master (cancel.lua, restore.lua) and the answer
    is 503, before any SMS goes out. ``"auto"`` (the default) means 0 on a single Redis
    (nothing to fail over to), 1 on Sentinel, and on Cluster 1 when the key's master has a
    replica in the client's slot map, else 0: a failover can only promote a replica, so one
    acknowledging replica is what makes the write survive it.

    Cost: on a single Redis or Sentinel the WAIT is pipelined with the EVALSHA on the same
    connection (WAIT counts that connection's own writes): still one round trip, plus the
    replica's acknowledgement (about one replica round trip). On Cluster the pair goes in
    one pipeline to the node that owns the phone's slot (same reason). The WAIT timeout is a
    quarter of the storage timeout: the decision's deadline is three quarters of it
    (``_budget_ms``), so script + WAIT fit in ``SMSCODE_STORAGE_TIMEOUT_SECONDS``; the undo
    after a short WAIT is one more call. ``WAITAOF`` (fsync on master and replicas)
    needs Redis 7.2, which this package is not tested against: not offered.

    Refusals and wrong-code verifies are answered whatever the WAIT says: they grant
    nothing, and a lost failure count costs at most the attempts made in the
    replication lag before a failover. The undo is not waited for: each state a replica can
    hold (before the decision, after it, after its undo) is safe — a send's reservation
    without its SMS only throttles, a consumed code only has to be sent again.
    """

    def __init__(
        self,
        uri: str,
        key_prefix: str = "smscode",
        timeout: float = 1.0,
        min_replicas: int | str = "auto",
        **options: Any,
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
        # Replicas a granting decision waits for (see the class docstring); None: per key,
        # from the cluster's slot map ("auto" on Cluster).
        self._wait_ms = max(1, int(timeout * 1000 * 0.25))  # WAIT 0 would block forever
        if min_replicas != "auto" and (
            isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0
        ):
            raise ConfigurationError("SMSCODE_STORAGE_MIN_REPLICAS must be 'auto' or an int >= 0.")
        self._offset_ms = 0.0
        self._clock_checked = 0.0  # monotonic time of the last measurement; 0: never
        self._clock_lock = threading.Lock()  # held only to start a measurement, never on I/O
        self._measuring: threading.Thread | None = None
        self._measure_error: redis.RedisError | RedisClusterException | None = None
        # A cluster undo (cancel.lua after a 503) retries for up to this long in line (see
        # _undo_step), then in the background until the node is back (_defer_undo), as
        # does the undo of a decision whose reply was lost; the ones given up are logged
        # and counted in undo_failures.
        self._undo_seconds = timeout
        self.undo_failures = 0
        self._undo_lock = threading.Lock()
        # By the phone key they concern ('' none): _settle looks up one phone's at once.
        self._deferred: dict[str, list[_Undo]] = {}
        self._pending = 0
        # Cluster's send and verify counters, written in the background (_count_on_cluster)
        self._stats_lock = threading.Lock()
        self._stats_pending: Counter[tuple[int, str]] = Counter()
        self._stats_writer: threading.Thread | None = None
        self._undoer: threading.Thread | None = None
        self._scripts = {
            name: self.client.register_script(_load_script(f"{name}.lua"))
            for name in "send check cancel hit read reset clock idem restore".split()
        }
        self._min_replicas: int | None = (
            int(min_replicas)
            if min_replicas != "auto"
            else (None if self.cluster else 1 if self.kind == "sentinel" else 0)
        )
        if not self.cluster:
            self._refuse_cluster_behind_plain_uri(timeout)

    @classmethod
    def from_uri(
        cls,
        uri: str,
        *,
        key_prefix: str = "smscode",
        timeout: float = 1.0,
        min_replicas: int | str = "auto",
        **options: Any,
    ) -> RedisStore:
        """Every redis scheme (single, TLS, unix socket, Cluster, Sentinel): the topology is
        :func:`~flask_smscode.stores.connection.connect`'s to tell from the URI."""
        return cls(
            uri, key_prefix=key_prefix, timeout=timeout, min_replicas=min_replicas, **options
        )

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
        redis_ms = int(self._evalsha("clock", [key], []))
        finished = time.time()
        self._offset_ms = redis_ms - (started + finished) / 2 * 1000
        self._clock_checked = time.monotonic()

    def _deadline(self, key: str) -> int:
        if time.monotonic() - self._clock_checked > _CLOCK_REFRESH_SECONDS:
            self._refresh_offset(key)
        return int(time.time() * 1000 + self._offset_ms + self._budget_ms)

    def _refresh_offset(self, key: str) -> None:
        """Measure the clock offset without letting a request wait more than
        :data:`STALL_MARGIN_SECONDS` for it.

        Why a thread: the measurement is a Redis round trip, and in a stall it lasts the
        whole storage timeout; done in line (under a process-wide lock, as before) it came
        on top of the decision's own timeout, and every thread of a worker queued behind
        it (503s of 2 s and 200s of 3 s with a 1 s timeout and 4 threads). Now one thread
        at a time measures, started under a lock held for no I/O; the request that started
        it waits for it at most the margin (a healthy Redis answers in far less, so the new
        offset is used at once), the others go on with the offset they have. Only a
        process that never measured has no offset to go on with: its requests wait for the
        measurement up to the storage timeout (the first command also builds the
        connection, on Cluster the slot map: on a loaded machine that took 0.8 s) and
        answer 503 without deciding if it has not come. So a request takes at most the
        storage timeout plus the margin, or two timeouts for the first requests of a
        process."""
        measuring, started = self._start_measuring(key)
        if self._clock_checked == 0:
            measuring.join(self._undo_seconds)  # the storage timeout
            failure = self._measure_error
            if self._clock_checked == 0 and failure is not None and not measuring.is_alive():
                raise failure  # its cause, reported by the decorator (Redis down, ...)
            if self._clock_checked == 0:
                self.faults.report(
                    self.kind, "StorageSlow: Redis' clock was not read in time; nothing decided"
                )
                raise StorageUnavailable()
        elif started:
            measuring.join(STALL_MARGIN_SECONDS)

    def _start_measuring(self, key: str) -> tuple[threading.Thread, bool]:
        """The measuring thread (see :meth:`_refresh_offset`), started unless one runs;
        and whether this call started it."""
        with self._clock_lock:
            measuring = self._measuring
            if measuring is not None and measuring.is_alive():
                return measuring, False
            measuring = threading.Thread(
                target=self._measure_in_background,
                args=(key,),
                name="smscode-redis-clock",
                daemon=True,
            )
            self._measuring = measuring
            measuring.start()
            return measuring, True

    def _measure_in_background(self, key: str) -> None:
        """The measuring thread's body. A failure is the requests' to report (they meet the
        same Redis); a failed refresh of a known offset is retried a second later, not by
        every request."""
        try:
            self._measure_offset(key)
            self._measure_error = None
        except (redis.RedisError, RedisClusterException) as exc:
            self._measure_error = exc
            if self._clock_checked > 0:
                self._clock_checked = max(1e-9, time.monotonic() - _CLOCK_REFRESH_SECONDS + 1)
        except Exception as exc:  # never kill the worker from a helper thread; say why
            self.faults.report(self.kind, exc)

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A decision script: with the replicas' acknowledgement when it grants something
        and the topology has replicas to wait for (see the class docstring), else
        :meth:`_evalsha`."""
        if name in _ACKED and self._min_replicas != 0:
            needed = self._replicas_for(keys[0])
            if needed > 0 and (not self.cluster or "P" in str(args[1])):
                return self._run_acked(name, keys, args, needed)
        return self._evalsha(name, keys, args)

    def _evalsha(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA of the script ``name`` (registered on first use: most apps never load the
        report, reply or failover scripts), and on NOSCRIPT its body by EVAL.

        Not redis-py's :class:`~redis.commands.core.Script` wrapper, for two reasons. On
        NOSCRIPT it sends SCRIPT LOAD, which a cluster client sends to every primary: one
        dead primary failed it on a live node (every cluster undo after a master died
        failed that way, and the phone kept its cooldown after a 503); EVAL runs where the
        key lives and caches the script there. And on a single Redis or Sentinel the call
        goes through :func:`~flask_smscode.stores.wire.call` (the same pool, parser and
        exceptions, without redis-py's per-command layers: a fifth of a verify's Python)."""
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(_load_script(f"{name}.lua"))
        try:
            if self.cluster:
                return self.client.evalsha(script.sha, len(keys), *keys, *args)
            return call(self.client, ("EVALSHA", script.sha, len(keys), *keys, *args))
        except NoScriptError:
            return self.client.eval(script.script, len(keys), *keys, *args)

    # -- durability: WAIT for replicas (see the class docstring) -----------------------------
    def _replicas_for(self, key: str) -> int:
        """Replicas a granting decision on ``key`` waits for. Cluster "auto": 1 when the
        slot's entry in redis-py's slot map lists a replica (it holds primary, then
        replicas), else 0 — a master without a replica has nothing to fail over to."""
        if self._min_replicas is not None:
            return self._min_replicas
        slot = self.client.nodes_manager.slots_cache.get(self.client.keyslot(key)) or ()
        return 1 if len(slot) > 1 else 0

    def _run_acked(self, name: str, keys: list[str], args: list[Any], needed: int) -> Any:
        """EVALSHA and ``WAIT needed timeout`` in one pipeline on one connection: WAIT counts
        the writes of the connection it is sent on, so it must follow the script there. On
        Cluster that connection is the slot owner's own client (the cluster client would
        pick any pooled connection for the WAIT); a MOVED or ASK there means the script did
        not run: the slot map is patched (MOVED) or ASKING sent (ASK) and the pair retried.
        Raises :class:`_NotReplicated` when an "ok" was not acknowledged in time."""
        script = self._scripts[name]
        client: Any = self.client
        node: Any = None
        asking = False
        for _ in range(3):
            if self.cluster:
                if not asking:
                    node = self.client.get_node_from_key(keys[0])
                client = node.redis_connection
                if client is None:
                    raise redis.ConnectionError("no connection to the slot's node yet")
            pipe = client.pipeline(transaction=False)
            if asking:
                pipe.execute_command("ASKING")
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", needed, self._wait_ms)
            try:
                *_, reply, acked = pipe.execute(raise_on_error=False)
            except redis.ConnectionError:
                if self.cluster:
                    self._tell_cluster_client(keys[0])
                raise
            except redis.TimeoutError:
                raise  # a stall is no topology change: telling would wait it out again
            asking = False
            if isinstance(reply, NoScriptError):
                client.script_load(script.script)
                continue
            if isinstance(reply, MovedError):
                self.client.nodes_manager.move_slot(reply)
                continue
            if isinstance(reply, AskError):
                node = self.client.get_node(host=reply.host, port=reply.port)
                if node is None:
                    raise reply
                asking = True
                continue
            if isinstance(reply, Exception):
                raise reply
            if isinstance(acked, Exception):
                raise acked
            if reply[0] == "ok" and int(acked) < needed:
                raise _NotReplicated(reply, int(acked), needed)
            return reply
        raise redis.ResponseError("the slot kept moving")

    def _tell_cluster_client(self, key: str) -> None:
        """The slot owner's connection broke under our own pipeline, which the cluster
        client did not see: one EXISTS through it lets its failure handling refresh the
        slot map (a dead master's replica promoted), so the next request reaches the new
        owner. Its outcome does not matter: this request answers 503 either way. Not after
        a timeout: the node is alive but stalled, and the EXISTS would wait out the
        storage timeout once more (the stall bound)."""
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self.client.exists(key)

    def _not_replicated(self, exc: _NotReplicated) -> StorageUnavailable:
        self.faults.report(self.kind, f"NotReplicated: {exc}; the decision was undone")
        return StorageUnavailable()

    @_unavailable_on_redis_error
    def replication(self) -> tuple[int, int | None]:
        """(replicas the master holding the phone keys has now, replicas required; None on
        Cluster "auto": per slot). For ``flask smscode doctor``. On Cluster the first
        master's."""
        if self.cluster:
            node = self.client.get_primaries()[0]
            info = node.redis_connection.info("replication")
        else:
            info = self.client.info("replication")
        return int(info.get("connected_slaves", 0)), self._min_replicas

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
            # Answered in time but "late": our offset is stale (a failover to a node with
            # another clock). Measured in line, without a lock: this request needs it now.
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
        if self._deferred:
            self._settle(roles["P"])
        args = self._send_args(
            purpose, code_hash, send_id, ttl, cooldown, limits, client, guard, idempotency
        )
        started = time.monotonic()
        try:
            if not self.cluster:
                roles["s"] = self._stats_key()  # counted by the same call (stores/stats.py)
                layout = "".join(roles)
                return self._send_decision(
                    self._decide("send", list(roles.values()), [layout, *args])
                )
            decision = self._reserve_on_cluster(
                roles, args, phone, purpose, send_id, limits, client, guard, idempotency
            )
        except _NotReplicated as exc:
            failed = exc
        except _REPLY_LOST as exc:
            if not self.cluster:  # Cluster: _reserve_on_cluster knows which step it was
                self._cancel_later(roles, purpose, send_id, limits, guard, started, exc)
            raise
        else:
            self._count_on_cluster(send_field(decision))
            return decision
        # Outside the except block: the 503 carries no chained exception.
        self._undo_send(phone, purpose, send_id, limits, guard, idempotency)
        raise self._not_replicated(failed)

    def _undo_send(
        self,
        phone: str,
        purpose: str,
        send_id: str,
        limits: Sequence[Limit],
        guard: GuardRequest | None,
        idempotency: IdempotencyRequest | None,
    ) -> None:
        """Give back a reservation the replicas did not acknowledge (cancel.lua, as after a
        provider rejection): no code, no cooldown, no counted send, no guard count. On
        Cluster only the phone's slot: its WAIT comes right after the phone's step, before
        the global and prefix steps count anything (order i, c, P, g, p). The per-IP hit
        stays counted, as for any request. A failure here is still a 503; the give-back is
        then retried until Redis answers (:meth:`_cancel_later`): meanwhile the reservation
        only throttles, it never lets a code through (fail closed)."""
        roles = self._send_roles(phone, None, guard, None)
        if self.cluster:
            roles = {"P": roles["P"]}
        args = self._cancel_args(purpose, send_id, limits, guard)
        try:
            self._evalsha("cancel", list(roles.values()), ["".join(roles), *args])
        except _REPLY_LOST as exc:
            self._cancel_later(roles, purpose, send_id, limits, guard, 0.0, exc)
            raise
        if idempotency is not None:
            self._idem("release", idempotency)

    def _cancel_later(
        self,
        roles: dict[str, str],
        purpose: str,
        send_id: str,
        limits: Sequence[Limit],
        guard: GuardRequest | None,
        started: float,
        failure: BaseException,
    ) -> None:
        """A send whose outcome this process does not know (its reply, or its undo's, was
        lost with the connection: a master killed under it): give its reservation back
        once Redis answers again, if it ran — cancel.lua's unsure mode ('?') gives back
        only what the phone's code or cooldown proves was reserved by this send id, so it
        may run any number of times, and on a replica that never saw the send it does
        nothing. Without it the phone kept a 60 s cooldown (and a counted send) for an SMS
        never sent: the retry of the 503 heard 429. The phone's, global and prefix keys
        go in one call on a single Redis or Sentinel; on Cluster only the phone's slot."""
        undo = {role: roles[role] for role in "Pgp" if role in roles}
        args = self._cancel_args(purpose, send_id, limits, guard)
        self._defer_undo(
            "cancel", undo, ["".join(undo), *args, "?"], "a send answered 503", failure, started
        )

    def _restore_later(
        self,
        roles: dict[str, str],
        purpose: str,
        window_ms: int,
        src: str,
        verify_id: str,
        started: float,
        failure: BaseException,
    ) -> None:
        """A verify whose outcome this process does not know: put the code back once Redis
        answers again if this verify consumed it (restore.lua by the verify's id, which
        check.lua recorded with the consumed code): no 200 was given for that consume,
        so the code must still verify on the retry. Idempotent, like _cancel_later."""
        undo = {role: roles[role] for role in "Pp" if role in roles}
        args = ["".join(undo), purpose, "", "", "", window_ms, src, verify_id]
        self._defer_undo("restore", undo, args, "a verify answered 503", failure, started)

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
        claimed: IdempotencyRequest | None = None  # released by an undo only once taken
        would: Refusal | None = None  # shadow mode: the first slot's "would block" wins
        step = ""
        began = time.monotonic()
        try:
            for role, key in roles.items():
                step, started = role, time.monotonic()
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
                else:
                    claimed = idempotency
        except (redis.RedisError, RedisClusterException, StorageUnavailable) as exc:
            # A 503 must leave nothing behind: undo what this send already counted. The
            # step that failed, when its reply was lost, is the phone's: given back once
            # its node answers if it ran (_cancel_later); a lost global or prefix step is
            # not (no proof on its key that it ran: one send of slack, logged). A step that
            # stalled runs late and does nothing: its deadline. Given back in line only
            # after a broken connection (a dead node: the others answer at once) and within
            # the storage timeout of the request's start; after a timeout or a late script
            # (a stalled node, which may hold a step already done) in the background: an
            # undo waiting on that node in line held the 503 for a second timeout.
            in_line = isinstance(exc, redis.ConnectionError)
            self._undo_on_cluster(
                done, roles, purpose, send_id, limits, guard, claimed,
                deadline=began + self._undo_seconds if in_line else 0.0,
            )  # fmt: skip
            if step == "P" and isinstance(exc, _REPLY_LOST):
                self._cancel_later({"P": roles["P"]}, purpose, send_id, limits, guard, started, exc)
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
        idempotency: IdempotencyRequest | None = None,
        *,
        deadline: float | None = None,
    ) -> None:
        """Give back the steps of a cluster send that succeeded (``done``) and, with
        ``idempotency``, release the key's claim. Each step is tried on its own (one that
        fails does not keep the others from being given back) with :meth:`_undo_step`'s
        retries until ``deadline`` (monotonic; None: the storage timeout from now; 0: not
        in line at all, straight to :meth:`_defer_undo`); one still failing is logged and
        counted, never silent, never raised: the caller's answer (503 or 429) stands, and
        what is left only throttles."""
        args = self._cancel_args(purpose, send_id, limits, guard)
        give_up = time.monotonic() + self._undo_seconds if deadline is None else deadline
        for role in done:
            if role in "Pgp":
                self._undo_step("cancel", roles[role], [role, *args], role, give_up)
        if idempotency is not None:
            self._undo_step(
                "idem",
                self.keys.idempotency(idempotency.key_id),
                ["release", idempotency.fingerprint],
                "i",
                give_up,
            )

    def _undo_step(self, name: str, key: str, args: list[Any], role: str, give_up: float) -> bool:
        """Run one undo script on ``key``, retried until ``give_up`` (monotonic; the first
        try is skipped when it has passed); False (and handed to :meth:`_defer_undo`) if
        it did not get through.

        Why retries: the undo follows a failure of another node, and the cluster client
        then asks for a topology refresh that the next command (this one, or another
        thread's) runs; a command meeting the old slot map, or a connection the refresh
        dropped, fails on a node that is alive. Short pauses let the refresh finish; the
        budget (the storage timeout) bounds what a 503 can cost. Why :meth:`_evalsha`:
        see there — redis-py's script wrapper made every undo on a live master fail
        while any master was down."""
        pause = 0.02
        failure: BaseException = StorageUnavailable()  # not tried in line: see the caller
        while time.monotonic() < give_up:
            try:
                self._evalsha(name, [key], args)
                return True
            except (redis.RedisError, RedisClusterException) as exc:
                failure = exc
            if time.monotonic() + pause > give_up:
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
        if name == "cancel" and role == "P":  # by proof from here on: see _cancel_later
            args = [*args, "?"]
        self._defer_undo(name, {role: key}, args, f"role {role} of a send", failure, 0.0)
        return False

    def _defer_undo(
        self,
        name: str,
        roles: dict[str, str],
        args: list[Any],
        what: str,
        failure: BaseException,
        started: float,
    ) -> None:  # roles: the keys by role letter; args: the script's whole ARGV
        """Keep trying an undo that did not get through, for :data:`UNDO_PATIENCE_SECONDS`:
        in one background thread, and in line before this process's next decision on the
        same phone (:meth:`_settle`).

        Why: a decision in flight when a master dies can be applied on that master and
        copied to its replica, which is promoted seconds later (Sentinel's down-after time,
        the cluster's node timeout, or an operator); the give-back can only reach it then.
        Without it a send answered 503 kept its 60 s cooldown, or a verify answered 503
        its consumed code. Why also in line: the client's retry of that 503 comes on its
        kept-alive connection to this process, often before the background pass; it must
        meet the state the 503 promised. Every deferred undo may run more than once (the
        background pass and a request can meet): cancel.lua's unsure mode and restore.lua
        by id are idempotent; a cluster step's count given back unconditionally ('g', 'p',
        the idempotency release) runs in the background thread only.

        ``started``: when the undone decision was sent (0: it is known to have run). After a
        timeout the undo waits until the decision's deadline has passed, so a decision
        still queued in a stalled Redis cannot run after it (a late one does nothing). A
        broken connection needs no wait: Redis ran what it had read before it closed (or
        died with it), and the undo goes on a new connection after the break was seen."""
        # Not logged here: the failure is the 503's cause, which the decorator logs once.
        # One given up is logged (_retry_deferred).
        now = time.monotonic()
        undo = _Undo(
            give_up=now + UNDO_PATIENCE_SECONDS,
            not_before=started + self._budget_ms / 1000 + STALL_MARGIN_SECONDS
            if started and isinstance(failure, redis.TimeoutError)
            else 0,
            name=name,
            keys=tuple(roles.values()),
            args=tuple(args),
            what=what,
            phone_key=roles.get("P", "") if name != "idem" else "",
        )
        with self._undo_lock:
            if self._pending >= MAX_PENDING_UNDOS:
                self.undo_failures += 1
                dropped = True
            else:
                dropped = False
                self._deferred.setdefault(undo.phone_key, []).append(undo)
                self._pending += 1
        if dropped:
            self.faults.report(
                self.kind,
                f"UndoFailed: the undo of {what} was given up: {MAX_PENDING_UNDOS} are "
                "waiting already; what it held only throttles",
            )
            return
        with self._undo_lock:
            if self._undoer is None or not self._undoer.is_alive():
                self._undoer = threading.Thread(
                    target=self._retry_deferred, name="smscode-redis-undo", daemon=True
                )
                self._undoer.start()

    def _settle(self, phone_key: str) -> None:
        """Before a decision on ``phone_key``: run the undos still pending for it in this
        process (see :meth:`_defer_undo`), so that the retry of a 503 meets the state the
        503 promised. One that cannot run yet (its decision's deadline has not passed) or
        does not get through makes this request a 503 too, within the storage timeout:
        deciding first would let the retry meet the failed request's reservation."""
        for undo in list(self._deferred.get(phone_key, ())):
            if undo.not_before > time.monotonic():
                self.faults.report(
                    self.kind, f"UndoPending: the undo of {undo.what} waits for its deadline"
                )
                raise StorageUnavailable()
            self._evalsha(undo.name, undo.keys, undo.args)  # a Redis error: 503 (decorator)
            self._forget(undo)

    def _forget(self, undo: _Undo) -> None:
        with self._undo_lock:
            waiting = self._deferred.get(undo.phone_key)
            if waiting is None or undo not in waiting:
                return  # run by a request and the background pass alike
            waiting.remove(undo)
            self._pending -= 1
            if not waiting:
                del self._deferred[undo.phone_key]

    def _retry_deferred(self) -> None:
        """The background undo: every quarter second, each deferred undo whose time has come
        once; it ends when none is left (or the store is closed: close() empties them and
        lets this thread go). On a single Redis or Sentinel a pass stops calling Redis at
        its first failure (one unreachable server: the rest would each wait out the same
        timeout) and only gives up those past their patience."""
        while True:
            time.sleep(0.25)
            with self._undo_lock:
                if self._undoer is not threading.current_thread():
                    return  # closed
                pending = [undo for waiting in self._deferred.values() for undo in waiting]
                if not pending:
                    self._undoer = None
                    return
            unreachable: BaseException | None = None
            for undo in pending:
                if undo.not_before > time.monotonic():
                    continue
                failure = unreachable
                if failure is None:
                    try:
                        self._evalsha(undo.name, undo.keys, undo.args)
                    except (redis.RedisError, RedisClusterException) as exc:
                        failure = exc
                        if not self.cluster:
                            unreachable = exc
                    except Exception as exc:  # never die with undos queued; say why
                        self.faults.report(self.kind, exc)
                if failure is not None:
                    if time.monotonic() < undo.give_up:
                        continue
                    with self._undo_lock:
                        self.undo_failures += 1
                    self.faults.report(
                        self.kind,
                        f"UndoFailed: the undo of {undo.what} was given up; what it held "
                        f"only throttles ({type(failure).__name__}: {_redis_message(failure)})",
                    )
                self._forget(undo)

    def pending_undos(self) -> int:
        """Undos still waiting to get through (see :meth:`_defer_undo`)."""
        with self._undo_lock:
            return self._pending

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
        reply = self._evalsha(
            "idem", [self.keys.idempotency(request.key_id)], [op, request.fingerprint, *extra]
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
            self._evalsha("cancel", list(roles.values()), ["".join(roles), *args])
            return
        # One slot per call, each given back even if another fails (see _undo_step); a
        # failure still makes the caller's answer a 503, as on a single Redis.
        give_up = time.monotonic() + self._undo_seconds
        given = [
            self._undo_step("cancel", key, [role, *args], role, give_up)
            for role, key in roles.items()
        ]
        if not all(given):
            raise StorageUnavailable()

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
        if self._deferred:
            self._settle(roles["P"])
        converts = guard is not None and guard.prefix is not None and guard.window_ms > 0
        window_ms = guard.window_ms if guard is not None and converts else 0
        if converts and guard is not None and guard.prefix is not None and not self.cluster:
            roles["p"] = self.keys.guard_prefix(guard.prefix)
        if not self.cluster:
            roles["s"] = self._stats_key()  # counted by the same call (stores/stats.py)
        source = (guard.source or "") if guard is not None else ""  # the guard's source rule
        args: list[Any] = [
            purpose,
            code_hash,
            _check_conf(max_attempts, window * 1000, window_ms, client_limits),
            source,
        ]
        verify_id = ""
        if self._min_replicas != 0:
            # A success returns what it consumed (restore.lua's input after a short WAIT)
            # and keeps it under this verify's id (its input when the reply is lost).
            verify_id = os.urandom(6).hex()
            args += ["1", verify_id]
        failed: _NotReplicated | None = None
        started = time.monotonic()
        try:
            reply = self._decide("check", list(roles.values()), ["".join(roles), *args])
        except _NotReplicated as exc:
            failed = exc
        except _REPLY_LOST as exc:
            if verify_id:
                self._restore_later(roles, purpose, window_ms, source, verify_id, started, exc)
            raise
        if failed is not None:  # outside the except block: no chained exception
            self._restore(roles, purpose, failed.reply, window_ms, source, verify_id)
            raise self._not_replicated(failed)
        outcome, attempts_left, wait_ms = reply[:3]
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

    def _restore(
        self,
        roles: dict[str, str],
        purpose: str,
        reply: Sequence[Any],
        window_ms: int,
        src: str,
        verify_id: str,
    ) -> None:
        """Put back a consume the replicas did not acknowledge (restore.lua), and the prefix's
        conversion when this call counted it (single Redis; on Cluster the conversion is
        counted after the WAIT). Only a right code is waited for: a wrong one's failure
        count is answered at once (see the class docstring). If this undo's reply is lost
        too, it is retried by the verify's id (:meth:`_restore_later`)."""
        undo = {role: roles[role] for role in "Pp" if role in roles}
        try:
            self._evalsha(
                "restore",
                list(undo.values()),
                ["".join(undo), purpose, reply[3], reply[4], reply[5], window_ms, src, verify_id],
            )
        except _REPLY_LOST as exc:
            self._restore_later(roles, purpose, window_ms, src, verify_id, 0.0, exc)
            raise

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
        now, *flat = self._evalsha("read", [self.keys.guard_global()], [])
        counts = window_counts(
            dict(zip(flat[::2], flat[1::2], strict=True)).get("n"), global_limits, int(now)
        )
        start = self.keys.guard_prefix("")[:-1]
        found = []
        for key in sorted(set(self.client.scan_iter(match=f"{start}*", count=1000))):
            now, *flat = self._evalsha("read", [key], [])
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
        self._evalsha("learn", [self.keys.guard_prefix(prefix)], [window_ms])

    @_unavailable_on_redis_error
    def use_token(self, token_id: str, ttl: int) -> bool:
        return bool(self.client.set(self.keys.token(token_id), 1, nx=True, ex=ttl))

    @_unavailable_on_redis_error
    def token_used(self, token_id: str) -> bool:
        return bool(self.client.exists(self.keys.token(token_id)))

    @_unavailable_on_redis_error
    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        now, *flat = self._evalsha("read", [self.keys.phone(phone)], [])
        return phone_status(
            dict(zip(flat[::2], flat[1::2], strict=True)), int(now), purpose, limits
        )

    @_unavailable_on_redis_error
    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        return int(self._evalsha("reset", [self.keys.phone(phone)], list(purposes)))

    @_unavailable_on_redis_error
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        if self.cluster:
            with contextlib.suppress(redis.RedisError, RedisClusterException):
                self._flush_stats()  # what this process counted, before its connections go
        with self._undo_lock:
            self._deferred.clear()  # the background undo stops: no connection after close
            self._pending = 0
            self._undoer = None
        if self._watch is not None:
            self._watch.close()
        self.client.close()

    # -- delivery reports (aliyun/reports.py; lua/report.lua) ----------------------------
    @_unavailable_on_redis_error
    def record_delivery(
        self, phone: str, report_id: str, state: str, err_code: str, *, ttl_ms: int
    ) -> str:
        return str(
            self._evalsha("report", [self.keys.phone(phone)], [report_id, state, err_code, ttl_ms])
        )

    @_unavailable_on_redis_error
    def last_delivery(self, phone: str) -> LastDelivery | None:
        # read.lua skips fields past their expiry on Redis' clock (they linger until the
        # hash's next write).
        _, *flat = self._evalsha("read", [self.keys.phone(phone)], [])
        return last_delivery(dict(zip(flat[::2], flat[1::2], strict=True)).get(DELIVERY_FIELD))

    # -- operator statistics (stores/stats.py; lua/stats.lua) ----------------------------
    def _stats_key(self, hour: int | None = None) -> str:
        return stats_key(self.keys.prefix, self.stats_hour() if hour is None else hour)

    def stats_hour(self) -> int:
        """The hour on Redis' clock (the measured offset), as the scripts' TTLs are."""
        return hour_of(time.time() * 1000 + self._offset_ms)

    def _count(self, field: str) -> None:
        self._evalsha("stats", [self._stats_key()], [field])

    def _count_on_cluster(self, field: str | None) -> None:
        """Cluster: the hour's hash is a slot of its own, on one node for every request:
        counted in the process and written by a background thread every half second
        (:meth:`_flush_stats`), never on the request path. In line, one more round trip
        per send and verify made that node everyone's: stalled, it held every decided
        request for the storage timeout after its answer was known (the soak measured 2 s
        server-side in a 4 s stall). Counts not yet written when the process dies are
        lost (half a second's worth); :meth:`read_stats` writes this process's first."""
        if field is None:
            return
        with self._stats_lock:
            self._stats_pending[(self.stats_hour(), field)] += 1
            if self._stats_writer is None or not self._stats_writer.is_alive():
                self._stats_writer = threading.Thread(
                    target=self._write_stats, name="smscode-redis-stats", daemon=True
                )
                self._stats_writer.start()

    def _write_stats(self) -> None:
        """The background writer of :meth:`_count_on_cluster`'s counts; it ends when nothing
        is left to write (decided under the lock the counts are added under, so none is
        left behind; a later count starts it again)."""
        while True:
            time.sleep(0.5)
            self._flush_stats()
            with self._stats_lock:
                if not self._stats_pending:
                    self._stats_writer = None
                    return

    def _flush_stats(self) -> None:
        """Write the counts gathered so far, one call per hour's hash; those that fail are
        kept for the next pass (the fields are few: the memory stays small)."""
        with self._stats_lock:
            pending, self._stats_pending = self._stats_pending, Counter()
        if not pending:
            return
        by_hour: dict[int, list[Any]] = {}
        for (hour, field), amount in pending.items():
            by_hour.setdefault(hour, []).extend((field, amount))
        for hour, args in by_hour.items():
            try:
                self._evalsha("stats", [self._stats_key(hour)], args)
            except (redis.RedisError, RedisClusterException) as exc:
                self.faults.report(self.kind, exc)
                with self._stats_lock:
                    for field, amount in zip(args[::2], args[1::2], strict=True):
                        self._stats_pending[(hour, field)] += amount

    @_unavailable_on_redis_error
    def count_delivery(self, carrier: str, vendor: object, seconds: float) -> None:
        self._count(delivery_field(carrier, vendor, seconds))

    @_unavailable_on_redis_error
    def read_stats(self, hours: Sequence[int]) -> dict[int, dict[str, int]]:
        """One HGETALL per hour (a pipeline on a single Redis; on Cluster each key is its
        own slot and redis-py's cluster pipeline groups them by node). On Cluster this
        process's counts not yet written go first (:meth:`_count_on_cluster`)."""
        if self.cluster:
            self._flush_stats()
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
        self._evalsha("sender", [self.keys.phone(phone)], [purpose, send_id, index])

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
        return str(self._evalsha("reply", [self.keys.phone(phone)], [reply_id, sent_s, ttl_ms]))

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
