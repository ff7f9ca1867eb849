"""In-process store for development and tests (``memory://``).

It makes the same atomic decisions as the Redis store, over the same field encoding (see
``lua/common.lua``), under one lock. But it lives in one process: with several gunicorn
workers each worker has its own codes and throttles, so a code sent through one worker
fails on another and limits multiply. Use Redis in production.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from flask_smscode.codes import codes_match
from flask_smscode.config import Limit
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
)
from flask_smscode.stores.fields import (
    conv_add,
    conv_estimate,
    conv_read,
    conv_value,
    expiry,
    n36,
    phone_status,
    prefix_status,
    source_add,
    source_count,
    t36,
    window_counts,
)
from flask_smscode.stores.fields import seconds_from_ms as _seconds
from flask_smscode.stores.stats import (
    HourlyCounters,
    counted,
    delivery_field,
    send_field,
    verify_field,
)

_SWEEP_EVERY = 10_000
_Limits = list[tuple[int, int]]  # (amount, window_ms)


def _ms(limits: Sequence[Limit]) -> _Limits:
    return [(limit.amount, limit.seconds * 1000) for limit in limits]


def _windows(value: str | None, limits: _Limits, now: int) -> tuple[list[list[int]], int]:
    parts = value.split("|") if value else []
    state, wait = [], 0
    for i, (amount, window) in enumerate(limits):
        count = int(parts[2 * i + 1]) if len(parts) > 2 * i + 1 else 0
        ends = n36(parts[2 * i + 2]) if len(parts) > 2 * i + 2 else 0
        if ends <= now:
            count, ends = 0, now + window
        if count >= amount:
            wait = max(wait, ends - now)
        state.append([count, ends])
    return state, wait


def _windows_value(state: list[list[int]], delta: int) -> str:
    latest = max(ends for _, ends in state)
    return f"{t36(latest)}|" + "|".join(
        f"{max(0, count + delta)}|{t36(ends)}" for count, ends in state
    )


class MemoryStore:
    """``key -> {field: "<expires_ms>|..."}`` hashes, as in Redis, behind one lock."""

    def __init__(
        self,
        key_prefix: str = "smscode",
        clock: Callable[[], float] = time.monotonic,
        **_options: Any,
    ) -> None:
        self.keys = Keys(key_prefix)
        self._clock = clock
        self._hashes: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, float] = {}
        self._suppressed_numbers: dict[str, str] = {}  # the suppression list
        self._lock = threading.Lock()
        self._writes = 0
        self.stats = HourlyCounters()  # operator statistics (stores/stats.py): wall clock

    @classmethod
    def from_uri(
        cls, uri: str, *, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
    ) -> MemoryStore:
        """``memory://``: nothing to connect to; ``timeout`` and options do not apply."""
        return cls(key_prefix=key_prefix)

    def _now(self) -> int:
        return int(self._clock() * 1000)

    def _load(self, key: str, now: int) -> dict[str, str]:
        """The live fields of ``key`` (a copy: write back with :meth:`_save`)."""
        return {f: v for f, v in self._hashes.get(key, {}).items() if expiry(v) > now}

    def _save(self, key: str, fields: dict[str, str]) -> None:
        if fields:
            self._hashes[key] = fields
        else:
            self._hashes.pop(key, None)
        self._writes += 1
        if self._writes % _SWEEP_EVERY == 0:  # drop what expired, as Redis would
            now = self._now()
            self._hashes = {
                k: h for k, h in self._hashes.items() if any(expiry(v) > now for v in h.values())
            }

    def _client_hit(self, key: str, field: str, limits: Sequence[Limit], now: int) -> int:
        if not limits:
            return 0
        h = self._load(key, now)
        state, wait = _windows(h.get(field), _ms(limits), now)
        if wait:
            return wait
        h[field] = _windows_value(state, 1)
        self._save(key, h)
        return 0

    def _notice_once(self, key: str, h: dict[str, str], ends: int) -> bool:
        """The first refusal of a guard budget in its window (see notice_once in Lua)."""
        if "w" in h:
            return False
        h["w"] = f"{t36(ends)}|1"
        self._save(key, h)
        return True

    def _idem_look(self, h: dict[str, str], fingerprint: str, now: int) -> IdempotencyState | None:
        if "f" not in h:
            return None
        _, fp, state = h["f"].split("|")
        if fp != fingerprint:
            return IdempotencyState("reused")
        if state == "w":
            return IdempotencyState("pending", wait_ms=expiry(h["f"]) - now)
        _, status, code, key, n1, n2 = (h.get("a") or "0|0||||").split("|")
        return IdempotencyState(
            "replay",
            StoredAnswer(int(status), code, key, int(n1) if n1 else None, int(n2) if n2 else None),
        )

    def _idem_answer(
        self,
        key: str,
        h: dict[str, str],
        request: IdempotencyRequest,
        now: int,
        answer: StoredAnswer,
    ) -> None:
        expires = t36(now + request.ttl_ms)
        h["f"] = f"{expires}|{request.fingerprint}|d"
        h["a"] = (
            f"{expires}|{answer.status}|{answer.code}|{answer.key}|"
            f"{'' if answer.n1 is None else answer.n1}|"
            f"{'' if answer.n2 is None else answer.n2}"
        )
        self._save(key, h)

    # -- the Store protocol --------------------------------------------------------------
    @counted(send_field)
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
        """The steps and order of ``lua/send.lua``, under the lock."""
        with self._lock:
            now = self._now()
            ikey = self.keys.idempotency(idempotency.key_id) if idempotency else ""
            ih = self._load(ikey, now) if idempotency else {}
            if idempotency is not None:
                known = self._idem_look(ih, idempotency.fingerprint, now)
                if known is not None:
                    return SendDecision(idempotency=known)

            def refuse(kind: Refusal, wait: int, notice: bool = False) -> SendDecision:
                # Not the per-IP refusal: a client past its budget stores nothing per key.
                if idempotency is not None and kind is not Refusal.CLIENT:
                    self._idem_answer(
                        ikey,
                        ih,
                        idempotency,
                        now,
                        StoredAnswer(429, "throttled", f"r:{kind.value}", _seconds(wait)),
                    )
                return SendDecision(kind, _seconds(wait), notice)

            if client is not None:
                wait = self._client_hit(self.keys.client(client.client), "s", client.limits, now)
                if wait:
                    return refuse(Refusal.CLIENT, wait)
            key = self.keys.phone(phone)
            h = self._load(key, now)
            wait = expiry(h["cd"]) - now if "cd" in h else 0
            state, capped = _windows(h.get("n"), _ms(limits), now)
            wait = max(wait, capped)
            if wait > 0:
                return refuse(Refusal.PHONE, wait)
            gkey, g = "", {}
            gstate: list[list[int]] = []
            would: list[Refusal] = []  # shadow mode: the first refusal the guard would make

            def guard_refuse(kind: Refusal, wait: int, notice: bool = False) -> SendDecision | None:
                if guard is None or not guard.shadow:
                    return refuse(kind, wait, notice)
                would.append(kind)
                return None

            if guard is not None and guard.global_limits:
                gkey = self.keys.guard_global()
                g = self._load(gkey, now)
                gstate, wait = _windows(g.get("n"), _ms(guard.global_limits), now)
                if wait > 0:
                    notice = self._notice_once(gkey, g, now + wait)
                    if r := guard_refuse(Refusal.GLOBAL, wait, notice):
                        return r
            xkey, x, cstate = "", {}, None
            xstate: list[list[int]] = []
            source = (guard.source or "") if guard is not None else ""
            if guard is not None and guard.prefix is not None and guard.counts_prefix:
                xkey = self.keys.guard_prefix(guard.prefix)
                x = self._load(xkey, now)
                if "b" in x and (r := guard_refuse(Refusal.BLOCKED, expiry(x["b"]) - now)):
                    return r
                xstate, wait = _windows(x.get("n"), _ms(guard.prefix_limits), now)
                if wait > 0:
                    notice = self._notice_once(xkey, x, now + wait)
                    if r := guard_refuse(Refusal.PREFIX, wait, notice):
                        return r
                if guard.window_ms > 0:
                    # who is behind the unverified sends (core/guard.py, source_count in Lua)
                    mine, mine_ends, distinct = source_count(x, source)
                    if (
                        source
                        and guard.source_sends > 0
                        and mine >= guard.source_sends
                        and (r := guard_refuse(Refusal.SOURCE, mine_ends - now))
                    ):
                        return r
                    cstate = conv_read(x.get("cv"), guard.window_ms, now)
                    sends, verifies = conv_estimate(cstate, guard.window_ms, now)
                    # blocked before, lately (probation): judged from the first unverified
                    # send, and the block's own sources still count (see core/guard.py)
                    probation = "bh" in x
                    least = 1 if probation else guard.min_sends
                    enough = (
                        probation
                        or not source
                        or guard.min_sources == 0
                        or distinct >= guard.min_sources
                    )
                    if (
                        "b" not in x
                        and enough
                        and sends >= least
                        and verifies * 1000 < guard.ratio_permille * sends
                    ):
                        x["b"] = f"{t36(now + guard.block_ms)}|{int(sends)}|{int(verifies)}"
                        x["bh"] = f"{t36(now + 2 * guard.block_ms)}|1"
                        self._save(xkey, x)
                        if r := guard_refuse(Refusal.CONVERSION, guard.block_ms, True):
                            return r
            # every check passed: count and store
            if limits:
                h["n"] = _windows_value(state, 1)
            if cooldown > 0:
                h["cd"] = f"{t36(now + cooldown * 1000)}|{send_id[:6]}"
            field, replaced = f"c:{purpose}", f"p:{purpose}"
            if field in h:
                h[replaced] = f"{t36(now + ttl * 1000)}|{h[field].split('|')[1]}"
            else:
                h.pop(replaced, None)
            h[field] = f"{t36(now + ttl * 1000)}|{code_hash}|{send_id}"
            self._save(key, h)
            if gkey:
                g["n"] = _windows_value(gstate, 1)
                self._save(gkey, g)
            if xkey and guard is not None:
                if guard.prefix_limits:
                    x["n"] = _windows_value(xstate, 1)
                if cstate is not None:
                    cstate[1] += 1
                    x["cv"] = conv_value(cstate, guard.window_ms)
                    source_add(x, source, 1, guard.window_ms, now)
                self._save(xkey, x)
            if idempotency is not None:
                ih["f"] = f"{t36(now + idempotency.pending_ms)}|{idempotency.fingerprint}|w"
                ih.pop("a", None)
                self._save(ikey, ih)
            return SendDecision(would_block=would[0] if would else None)

    def finish_idempotency(self, request: IdempotencyRequest, answer: StoredAnswer) -> None:
        with self._lock:
            now, key = self._now(), self.keys.idempotency(request.key_id)
            h = self._load(key, now)
            if "f" not in h or h["f"].split("|")[1:] == [request.fingerprint, "w"]:
                self._idem_answer(key, h, request, now, answer)

    def release_idempotency(self, request: IdempotencyRequest) -> None:
        with self._lock:
            now, key = self._now(), self.keys.idempotency(request.key_id)
            h = self._load(key, now)
            if "f" in h and h["f"].split("|")[1:] == [request.fingerprint, "w"]:
                h.pop("f")
                h.pop("a", None)
                self._save(key, h)

    def peek_idempotency(self, request: IdempotencyRequest) -> IdempotencyState | None:
        with self._lock:
            now = self._now()
            return self._idem_look(
                self._load(self.keys.idempotency(request.key_id), now), request.fingerprint, now
            )

    def guard_status(
        self, global_limits: Sequence[Limit], prefix_limits: Sequence[Limit], window_ms: int
    ) -> tuple[dict[str, int], list[PrefixStatus]]:
        with self._lock:
            now = self._now()
            counts = window_counts(
                self._load(self.keys.guard_global(), now).get("n"), global_limits, now
            )
            start, found = self.keys.guard_prefix(""), []
            for key in list(self._hashes):
                if key.startswith(start[:-1]):
                    fields = self._load(key, now)
                    if fields:
                        found.append(
                            prefix_status(
                                key[len(start) - 1 : -1], fields, now, prefix_limits, window_ms
                            )
                        )
            return counts, found

    def guard_unblock(self, prefix: str) -> bool:
        with self._lock:
            now, key = self._now(), self.keys.guard_prefix(prefix)
            h = self._load(key, now)
            removed = [f for f in ("b", "cv", "w", "bh") if h.pop(f, None) is not None]
            self._save(key, h)
            return bool(removed)

    def guard_learn(self, prefix: str, window_ms: int) -> None:
        """Mirrors lua/learn.lua: one more unverified send against the prefix."""
        if window_ms <= 0:
            return
        with self._lock:
            now, key = self._now(), self.keys.guard_prefix(prefix)
            h = self._load(key, now)
            h["cv"] = conv_add(h.get("cv"), window_ms, now, 1, 0)
            self._save(key, h)

    def hit_client(self, endpoint: str, client: ClientLimits) -> int:
        with self._lock:
            wait = self._client_hit(
                self.keys.client(client.client),
                ENDPOINT_FIELDS[endpoint],
                client.limits,
                self._now(),
            )
        return _seconds(wait) if wait else 0

    def cancel_send(
        self,
        phone: str,
        purpose: str,
        send_id: str,
        *,
        limits: Sequence[Limit],
        guard: GuardRequest | None = None,
    ) -> None:
        with self._lock:
            now, key = self._now(), self.keys.phone(phone)
            h = self._load(key, now)
            field = f"c:{purpose}"
            if field in h and h[field].split("|")[2] == send_id:
                del h[field]
            if "cd" in h and h["cd"].split("|")[1] == send_id[:6]:
                del h["cd"]
            if "n" in h and limits:
                h["n"] = _windows_value(_windows(h["n"], _ms(limits), now)[0], -1)
            self._save(key, h)
            if guard is None:
                return
            if guard.global_limits:
                gkey = self.keys.guard_global()
                g = self._load(gkey, now)
                if "n" in g:
                    g["n"] = _windows_value(_windows(g["n"], _ms(guard.global_limits), now)[0], -1)
                    self._save(gkey, g)
            if guard.prefix is not None and guard.counts_prefix:
                xkey = self.keys.guard_prefix(guard.prefix)
                x = self._load(xkey, now)
                if "n" in x and guard.prefix_limits:
                    x["n"] = _windows_value(_windows(x["n"], _ms(guard.prefix_limits), now)[0], -1)
                if "cv" in x and guard.window_ms > 0:
                    x["cv"] = conv_add(x["cv"], guard.window_ms, now, -1, 0)
                    source_add(x, guard.source or "", -1, guard.window_ms, now)
                self._save(xkey, x)

    @counted(verify_field)
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
        with self._lock:
            now = self._now()
            if client is not None:
                wait = self._client_hit(self.keys.client(client.client), "v", client.limits, now)
                if wait:
                    return VerifyResult(VerifyOutcome.THROTTLED, 0, _seconds(wait))
            key = self.keys.phone(phone)
            h = self._load(key, now)
            code_field, fail_field = f"c:{purpose}", f"f:{purpose}"
            failures, fail_ends = 0, 0
            if fail_field in h:
                ends, count = h[fail_field].split("|")
                fail_ends, failures = n36(ends), int(count)
            if failures >= max_attempts:
                return VerifyResult(VerifyOutcome.LOCKED, 0, _seconds(fail_ends - now))
            if code_field not in h:
                return VerifyResult(VerifyOutcome.EXPIRED, max_attempts - failures)
            stored = h[code_field].split("|")[1]
            if codes_match(stored, code_hash):
                h.pop(code_field)
                h.pop(fail_field, None)
                h.pop(f"p:{purpose}", None)
                self._save(key, h)
                if guard is not None and guard.prefix is not None and guard.window_ms > 0:
                    xkey = self.keys.guard_prefix(guard.prefix)  # a conversion
                    x = self._load(xkey, now)
                    x["cv"] = conv_add(x.get("cv"), guard.window_ms, now, 0, 1)
                    source_add(x, guard.source or "", -1, guard.window_ms, now)
                    self._save(xkey, x)
                return VerifyResult(VerifyOutcome.OK, max_attempts)
            replaced = h.get(f"p:{purpose}")
            if replaced and codes_match(replaced.split("|")[1], code_hash):
                # the code this one replaced: an older SMS, not a guess
                return VerifyResult(VerifyOutcome.EXPIRED, max_attempts - failures)
            failures += 1
            if fail_ends <= now:
                fail_ends = now + window * 1000
            h[fail_field] = f"{t36(fail_ends)}|{failures}"
            if failures >= max_attempts:
                h.pop(code_field)
            self._save(key, h)
            return VerifyResult(
                VerifyOutcome.INVALID, max_attempts - failures, _seconds(fail_ends - now)
            )

    def use_token(self, token_id: str, ttl: int) -> bool:
        with self._lock:
            now = self._clock()
            if self._tokens.get(token_id, 0) > now:
                return False
            self._tokens[token_id] = now + ttl
            if len(self._tokens) > _SWEEP_EVERY:
                self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            return True

    def token_used(self, token_id: str) -> bool:
        with self._lock:
            return self._tokens.get(token_id, 0) > self._clock()

    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        with self._lock:
            now = self._now()
            return phone_status(self._load(self.keys.phone(phone), now), now, purpose, limits)

    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        with self._lock:
            key = self.keys.phone(phone)
            h = self._load(key, self._now())
            fields = ["cd", "n", *(f"{kind}:{p}" for p in purposes for kind in "cf")]
            removed = [f for f in fields if h.pop(f, None) is not None]
            for purpose in purposes:
                h.pop(f"p:{purpose}", None)
            self._save(key, h)
            return len(removed)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        with self._lock:
            self._hashes.clear()
            self._tokens.clear()

    # -- delivery reports (aliyun/reports.py; mirrors lua/report.lua) --------------------
    def record_delivery(
        self, phone: str, report_id: str, state: str, err_code: str, *, ttl_ms: int
    ) -> str:
        with self._lock:
            now, key = self._now(), self.keys.phone(phone)
            h = self._load(key, now)
            current = h.get(DELIVERY_FIELD)
            if current:
                stored, stored_state = current.split("|")[1:3]
                if stored == report_id and (stored_state != "w" or state == "w"):
                    return "duplicate"
                if stored[2:] > report_id[2:]:
                    return "late"
            h[DELIVERY_FIELD] = f"{t36(now + ttl_ms)}|{report_id}|{state}|{err_code}"
            self._save(key, h)
            return "stored"

    # -- operator statistics (stores/stats.py) -------------------------------------------
    def stats_hour(self) -> int:
        return self.stats.hour()

    def count_delivery(self, carrier: str, vendor: object, seconds: float) -> None:
        self.stats.bump(delivery_field(carrier, vendor, seconds))

    def read_stats(self, hours: Sequence[int]) -> dict[int, dict[str, int]]:
        return self.stats.read(hours)

    def last_delivery(self, phone: str) -> LastDelivery | None:
        with self._lock:
            now = self._now()
            return last_delivery(self._load(self.keys.phone(phone), now).get(DELIVERY_FIELD))

    # -- failover: which sender carried a code (mirrors lua/sender.lua) ------------------
    def record_sender(self, phone: str, purpose: str, send_id: str, index: int) -> None:
        with self._lock:
            now, key = self._now(), self.keys.phone(phone)
            h = self._load(key, now)
            code = h.get(f"c:{purpose}")
            if code is None or code.split("|")[2] != send_id:
                return  # a newer send replaced it (or it is gone)
            h[f"sn:{purpose}"] = f"{code.split('|')[0]}|{send_id}|{index}"
            self._save(key, h)

    def sender_of(self, phone: str, purpose: str, send_id: str) -> int:
        from flask_smscode.stores.base import sender_index

        with self._lock:
            h = self._load(self.keys.phone(phone), self._now())
            return sender_index(h.get(f"sn:{purpose}"), send_id)

    # -- replies and the suppression list (mirrors lua/reply.lua; stores/base.py) -------
    def record_reply(self, phone: str, reply_id: str, sent_s: int, *, ttl_ms: int) -> str:
        from flask_smscode.stores.base import REPLY_FIELD

        with self._lock:
            now, key = self._now(), self.keys.phone(phone)
            h = self._load(key, now)
            current = h.get(REPLY_FIELD)
            if current:
                stored, stored_sent = current.split("|")[1:3]
                if stored == reply_id:
                    return "duplicate"
                if int(stored_sent or 0) > sent_s:
                    return "late"
            h[REPLY_FIELD] = f"{t36(now + ttl_ms)}|{reply_id}|{sent_s}"
            self._save(key, h)
            return "stored"

    def _suppression(self) -> dict[str, str]:
        """The suppression list (``phone -> "<added ms>|<source>"``), as Redis' hash: one
        process's, like everything of this store."""
        return self._suppressed_numbers

    def suppress(self, phone: str, source: str) -> bool:
        with self._lock:
            entries = self._suppression()
            if phone in entries:
                return False
            entries[phone] = f"{int(time.time() * 1000)}|{source}"
            return True

    def unsuppress(self, phone: str) -> bool:
        with self._lock:
            return self._suppression().pop(phone, None) is not None

    def suppressed(self, phones: Sequence[str]) -> set[str]:
        with self._lock:
            entries = self._suppression()
            return {phone for phone in phones if phone in entries}

    def suppression_list(self) -> list[SuppressedNumber]:
        from flask_smscode.stores.base import suppressed_number

        with self._lock:
            items = sorted(self._suppression().items())
        return [entry for phone, value in items if (entry := suppressed_number(phone, value))]
