"""Store parity of the guard's new counting (core/guard.py): per-source unverified sends in a
prefix, distinct sources before a prefix is blocked for everyone, probation after a block,
shadow mode's "would block", cancelled sends and dead-number reports — the same decisions
on memory, single Redis, Cluster and Sentinel (the Lua scripts and memory.py are two
writings of one rule; this file is what keeps them one).
"""

from __future__ import annotations

import base64
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest

from flask_smscode.codes import hash_code
from flask_smscode.stores import GuardRequest, MemoryStore, Store, store_from_uri
from flask_smscode.stores.fields import SOURCES_KEPT

SECRET = b"guard-sources-test"
PREFIX = "+861380013"
GUARD = GuardRequest(
    prefix=PREFIX,
    window_ms=3_600_000,
    min_sends=6,
    ratio_permille=200,
    block_ms=600_000,
    min_sources=3,
    source_sends=3,
)


def phone(i: int) -> str:
    return f"+861380013{i:04d}"


def h(code: str, e164: str) -> str:
    return base64.urlsafe_b64encode(
        bytes.fromhex(hash_code(SECRET, e164, "login", code)[:24])
    ).decode()


@pytest.fixture
def store(store_uri: str, key_prefix: str) -> Iterator[Store]:
    s: Store = (
        MemoryStore(key_prefix=key_prefix)
        if store_uri == "memory://"
        else store_from_uri(store_uri, key_prefix=key_prefix)
    )
    yield s
    s.close()


def send(store: Store, i: int, source: str, **guard: Any) -> str:
    """``ok``, ``would_<kind>`` (shadow) or the refusal's kind."""
    request = dataclasses.replace(GUARD, source=source, **guard)
    decision = store.reserve_send(
        phone(i),
        "login",
        h("123456", phone(i)),
        f"send-{i}",
        ttl=300,
        cooldown=0,
        limits=(),
        guard=request,
    )
    if decision.refused_by is not None:
        return decision.refused_by.value
    return f"would_{decision.would_block.value}" if decision.would_block else "ok"


def verify(store: Store, i: int, source: str) -> str:
    request = dataclasses.replace(GUARD, source=source)
    return store.check_code(
        phone(i), "login", h("123456", phone(i)), max_attempts=5, window=900, guard=request
    ).outcome.value


def blocked_for(store: Store) -> int:
    _, prefixes = store.guard_status((), (), GUARD.window_ms)
    return next((p.blocked_for for p in prefixes if p.prefix == PREFIX), 0)


def test_one_source_is_refused_itself_and_the_prefix_stays_open(store):
    assert [send(store, i, "A") for i in range(5)] == ["ok"] * 3 + ["source"] * 2
    # verifying one of its codes gives the source one send back
    assert verify(store, 0, "A") == "ok"
    assert [send(store, 10 + i, "A") for i in range(2)] == ["ok", "source"]
    assert [send(store, 20 + i, "B") for i in range(3)] == ["ok"] * 3
    assert blocked_for(store) == 0


def test_distinct_sources_block_the_prefix_for_everyone(store):
    answers = [send(store, i, src) for i, src in enumerate("ABCABCAB")]
    # six unverified sends from three sources: the seventh finds the conversion too low
    assert answers == ["ok"] * 6 + ["conversion", "blocked"]
    assert blocked_for(store) > 590
    assert send(store, 50, "Z") == "blocked"


def test_two_sources_are_not_enough(store):
    answers = [send(store, i, src) for i, src in enumerate("ABABABAB")]
    assert answers == ["ok"] * 6 + ["source"] * 2
    assert blocked_for(store) == 0


def test_unknown_sources_keep_the_conversion_rule_alone(store):
    """The Python API without client_ip: no source is weighed, the old rule decides."""
    answers = [send(store, i, "") for i in range(8)]
    assert answers == ["ok"] * 6 + ["conversion", "blocked"]


def test_a_cancelled_send_gives_the_source_its_send_back(store):
    request = dataclasses.replace(GUARD, source="A")
    assert [send(store, i, "A") for i in range(3)] == ["ok"] * 3
    store.cancel_send(phone(2), "login", "send-2", limits=(), guard=request)
    assert send(store, 3, "A") == "ok"
    assert send(store, 4, "A") == "source"


def test_shadow_mode_keeps_the_state_and_refuses_nothing(store):
    answers = [send(store, i, src, shadow=True) for i, src in enumerate("AAAABCBCB")]
    assert answers == ["ok"] * 3 + ["would_source"] + ["ok"] * 2 + [
        "would_conversion",
        "would_blocked",
        "would_blocked",
    ]
    assert blocked_for(store) > 590
    assert send(store, 99, "Q") == "blocked"  # enforce mode sees the block shadow made


def test_a_dead_number_report_counts_as_an_unverified_send(store):
    for i, src in enumerate("ABC"):
        assert send(store, i, src) == "ok"
    assert verify(store, 0, "A") == "ok"
    for _ in range(3):
        store.guard_learn(PREFIX, GUARD.window_ms)
    _, prefixes = store.guard_status((), (), GUARD.window_ms)
    row = next(p for p in prefixes if p.prefix == PREFIX)
    assert (row.sends, row.verifies) == (6, 1)
    # 6 sends, 1 verify, but only two sources with unverified sends (B, C): still open
    assert send(store, 10, "D") == "ok"
    assert send(store, 11, "E") == "conversion"


def test_sources_kept_per_prefix_are_bounded(store):
    answers = [send(store, i, f"s{i}", min_sends=1000) for i in range(SOURCES_KEPT + 4)]
    assert answers == ["ok"] * (SOURCES_KEPT + 4)
    # a source past the bound is not tracked: it is never refused by its own budget, but
    # the prefix already has SOURCES_KEPT distinct sources, so it can be blocked
    extra = [send(store, 100 + i, f"s{SOURCES_KEPT + 1}", min_sends=1000) for i in range(5)]
    assert extra == ["ok"] * 5


def test_a_prefix_blocked_before_is_judged_again_from_its_first_send(key_prefix):
    """Probation (on memory's clock; the Lua writes the same rule, and the HTTP tests run it
    on Redis): for one block length after its block ends, a prefix blocked before is judged
    from its first unverified send, so a slow drip that waited out the block gets no fresh
    budget; the sources behind the first block still count."""
    now = [1_000_000.0]
    store = MemoryStore(key_prefix=key_prefix, clock=lambda: now[0])
    short = {"window_ms": 600_000, "block_ms": 3_600_000}  # a 10-minute window, 1-hour block
    assert [send(store, i, src, **short) for i, src in enumerate("ABCABCA")][-1] == "conversion"
    now[0] += 3601  # block over, window and sources forgotten: only the probation is left
    drip = [send(store, 20 + i, src, **short) for i, src in enumerate("DEFG")]
    assert drip == ["ok", "conversion", "blocked", "blocked"]
    now[0] += 2 * 3600 + 1  # probation over too: min_sends and min_sources again
    assert [send(store, 40 + i, src, **short) for i, src in enumerate("HIJK")] == ["ok"] * 4
    store.close()


def test_probation_on_every_store(store):
    """The same probation on memory, Redis, Cluster and Sentinel, in real time: a 1-second
    block; the sends behind it are then given back (cancelled), so only the probation can
    make the second new source's send find the conversion too low."""
    fast = {"block_ms": 1000}
    assert [send(store, i, src, **fast) for i, src in enumerate("ABCABCA")][-1] == "conversion"
    time.sleep(1.1)
    for i, src in enumerate("ABCABC"):
        request = dataclasses.replace(GUARD, source=src, **fast)
        store.cancel_send(phone(i), "login", f"send-{i}", limits=(), guard=request)
    assert [send(store, 20 + i, src, **fast) for i, src in enumerate("DE")] == ["ok", "conversion"]
