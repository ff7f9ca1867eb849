"""The fraud replay: honest traffic mixed with SMS-pumping attacks on a simulated clock.

``python -m bench.replay`` (or ``bash scripts/bench.sh replay``) replays three simulated
days per scenario in a few seconds and prints, per scenario, what the pumping guard let
through and what it cost honest users. ``--results bench/RESULTS.md`` writes the table under
the "Fraud replay" heading; ``--short`` is the small version the test suite runs
(tests/bench/test_replay.py asserts the targets on it).

**What runs.** The store's decisions exactly as the service makes them, on the in-process
store (``MemoryStore``) with an injected clock: per-IP limits, per-phone cooldown and caps,
the global and per-prefix budgets, the conversion guard and its source rule, verifies with
the source of the verifying request — the same ``GuardSettings.request`` and
``reserve_send`` / ``check_code`` calls as :class:`~flask_smscode.core.service.SmsCodeService`,
with the package's default settings. Redis runs the same rule in Lua (``stores/lua/``); the
two are held to the same decisions by tests/stores/test_guard_sources.py on memory, Redis,
Cluster and Sentinel. Simulated days need a simulated clock, which Redis' ``TIME`` is not.

**Honest traffic** (about 95 % of send requests): users log in at random times, from their
own address (85 %) or from one of 300 shared carrier-grade NAT addresses (15 %). Their
numbers are spread over the mainland mobile ranges (40 operator prefixes × 10 000 blocks),
a fifth of them concentrated in 200 "home city" blocks. 85 % type their code within 15-90 s,
5 % make a typo first, 5 % ask for a second code after the cooldown, 5 % never finish.

**Attacks** (one per scenario, over the same honest traffic): one block hammered by a
botnet; 50 blocks × 20 numbers; a slow drip into 10 blocks over the 3 days; 3 000 addresses
over 20 blocks; one address trying to close one block for everyone.

**Figures.** *SMS billed per attacked block*: attack sends the guard let through, per
attacked block (mean and worst block). *Honest refused*: honest send requests answered 429
(any reason), and how many of them were in an attacked block. *Time to block*: from a
block's first attack request to the first one the guard refused (median over blocks).
*Closed by one address*: blocks closed to everyone in the one-address scenario.
"""

from __future__ import annotations

import argparse
import functools
import heapq
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.results import write_sections
from flask_smscode.codes import hash_code
from flask_smscode.config import Settings
from flask_smscode.core.guard import GuardSettings
from flask_smscode.core.ratelimit import RateLimitSettings, client_key
from flask_smscode.stores import ClientLimits, MemoryStore, Refusal, VerifyOutcome

DAY = 86_400
TARGET_BILLED_PER_BLOCK = 20
TARGET_HONEST_REFUSED = 0.001  # 0.1 %
GUARD_REFUSALS = {
    Refusal.GLOBAL,
    Refusal.PREFIX,
    Refusal.BLOCKED,
    Refusal.CONVERSION,
    Refusal.SOURCE,
}
# 40 mainland mobile operator prefixes (the first 3 digits of the national number).
MOBILE = [f"{p}" for p in (*range(130, 140), *range(150, 160), *range(180, 190), *range(170, 179))]
MOBILE = MOBILE[:40]


@dataclass
class Tally:
    """What one scenario saw."""

    honest_sends: int = 0
    honest_refused: int = 0
    honest_refused_in_attacked: int = 0
    attack_requests: int = 0
    billed: dict[str, int] = field(default_factory=dict)  # attacked block -> SMS let through
    first_attack: dict[str, float] = field(default_factory=dict)
    first_refusal: dict[str, float] = field(default_factory=dict)
    closed_for_everyone: set[str] = field(default_factory=set)


class Replay:
    """One scenario: a store on a simulated clock, a queue of timed events."""

    def __init__(self, config: dict[str, Any], seed: int) -> None:
        self.now = 1_800_000_000.0  # simulated seconds; any fixed start
        self.store = MemoryStore(key_prefix="replay", clock=lambda: self.now)
        self.core = Settings.from_config(config)
        self.guard = GuardSettings.from_config(config)
        self.ip = RateLimitSettings.from_config(config, self.core)
        self.rng = random.Random(seed)
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.serial = 0
        self.tally = Tally()
        self.attacked: set[str] = set()
        self.secret = b"replay"

    # -- the service's calls -------------------------------------------------------------
    def at(self, when: float, action: Callable[[], None]) -> None:
        self.serial += 1
        heapq.heappush(self.queue, (when, self.serial, action))

    def _hash(self, phone: str, code: str) -> str:
        return hash_code(self.secret, phone, "login", code)[:24]

    def send(self, phone: str, address: str, code: str) -> Refusal | None:
        """``None`` when the SMS went out (billed), else who refused."""
        self.serial += 1
        source = self.guard.source_tag(None, client_key(address))
        decision = self.store.reserve_send(
            phone,
            "login",
            self._hash(phone, code),
            f"r{self.serial}",
            ttl=self.core.code_ttl,
            cooldown=self.core.resend_interval,
            limits=self.core.phone_limits,
            client=ClientLimits(client_key(address), self.ip.send),
            guard=self.guard.request(phone, source),
        )
        return decision.refused_by

    def verify(self, phone: str, address: str, code: str) -> VerifyOutcome:
        source = self.guard.source_tag(None, client_key(address))
        return self.store.check_code(
            phone,
            "login",
            self._hash(phone, code),
            max_attempts=self.core.max_attempts,
            window=self.core.attempt_window,
            client=ClientLimits(client_key(address), self.ip.verify),
            guard=self.guard.request(phone, source) if self.guard.converts else None,
        ).outcome

    def run(self, until: float) -> Tally:
        while self.queue and self.queue[0][0] <= until:
            when, _, action = heapq.heappop(self.queue)
            self.now = when
            action()
        return self.tally

    # -- traffic -------------------------------------------------------------------------
    def number(self, block: str | None = None) -> str:
        if block is None:
            block = f"+86{self.rng.choice(MOBILE)}{self.rng.randrange(10_000):04d}"
        return f"{block}{self.rng.randrange(10_000):04d}"

    def honest(self, users: int, days: float, start: float) -> None:
        home = [f"+86{self.rng.choice(MOBILE)}{self.rng.randrange(10_000):04d}" for _ in range(200)]
        nat = [f"100.64.{i // 250}.{i % 250 + 1}" for i in range(300)]
        for _ in range(users):
            phone = self.number(self.rng.choice(home) if self.rng.random() < 0.2 else None)
            address = (
                self.rng.choice(nat)
                if self.rng.random() < 0.15
                else f"{self.rng.randrange(1, 224)}.{self.rng.randrange(256)}."
                f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
            )
            when = start + self.rng.random() * days * DAY
            kind = self.rng.random()
            self.at(when, functools.partial(self._honest_user, phone, address, kind))

    def _honest_send(self, phone: str, address: str) -> str | None:
        code = f"{self.rng.randrange(10**6):06d}"
        self.tally.honest_sends += 1
        refused = self.send(phone, address, code)
        if refused is None:
            return code
        self.tally.honest_refused += 1
        if self.guard.prefix_of(phone) in self.attacked:
            self.tally.honest_refused_in_attacked += 1
        return None

    def _type(self, phone: str, address: str, code: str) -> None:
        """The user types ``code`` (right or not) from the address that asked for it."""
        self.verify(phone, address, code)

    def _honest_user(self, phone: str, address: str, kind: float) -> None:
        code = self._honest_send(phone, address)
        if code is None:
            return
        later = self.now + self.rng.uniform(15, 90)
        if kind < 0.85:
            self.at(later, functools.partial(self._type, phone, address, code))
        elif kind < 0.90:  # a typo, then the right code
            wrong = f"{(int(code) + 1) % 10**6:06d}"
            self.at(later, functools.partial(self._type, phone, address, wrong))
            self.at(later + 10, functools.partial(self._type, phone, address, code))
        elif kind < 0.95:  # no SMS seen: a second code after the cooldown, that one typed
            resend = self.now + self.core.resend_interval + self.rng.uniform(1, 60)

            def again() -> None:
                second = self._honest_send(phone, address)
                if second is not None:
                    self.at(self.now + 30, functools.partial(self._type, phone, address, second))

            self.at(resend, again)
        # else: never finished

    def attack(self, block: str, address: str, when: float) -> None:
        """One attack request: a number of ``block`` nobody will type a code back from."""

        def hit() -> None:
            self.tally.attack_requests += 1
            self.tally.first_attack.setdefault(block, self.now)
            refused = self.send(self.number(block), address, "000000")
            if refused is None:
                self.tally.billed[block] = self.tally.billed.get(block, 0) + 1
            elif refused in GUARD_REFUSALS:
                self.tally.first_refusal.setdefault(block, self.now)
            if refused in (Refusal.CONVERSION,):
                self.tally.closed_for_everyone.add(block)

        self.attacked.add(block)
        self.at(when, hit)


# -- scenarios ----------------------------------------------------------------------------


def _block(replay: Replay) -> str:
    return f"+86{replay.rng.choice(MOBILE)}{replay.rng.randrange(10_000):04d}"


def _botnet(replay: Replay, n: int) -> list[str]:
    return [f"198.18.{i // 250 % 250}.{i % 250 + 1}" for i in range(n)]


def hammered(replay: Replay, days: float) -> None:
    """One block, a request every 30 s for the whole run, from 500 addresses in turn."""
    block, bots = _block(replay), _botnet(replay, 500)
    for i in range(int(days * DAY / 30)):
        replay.attack(block, bots[i % len(bots)], replay.now + i * 30)


def fifty_blocks(replay: Replay, days: float) -> None:
    """50 blocks × 20 numbers within one hour, from 200 addresses, each retried once."""
    bots = _botnet(replay, 200)
    for b in range(50):
        block = _block(replay)
        for i in range(20):
            when = replay.now + DAY / 2 + replay.rng.random() * 3600
            replay.attack(block, bots[(b * 20 + i) % len(bots)], when)
            replay.attack(block, bots[(b * 20 + i + 7) % len(bots)], when + 600)


def slow_drip(replay: Replay, days: float) -> None:
    """10 blocks, one request per block every 20 minutes for 3 days, each from a new address."""
    bots = _botnet(replay, 20_000)
    for b in range(10):
        block = _block(replay)
        for i in range(int(days * DAY / 1200)):
            replay.attack(block, bots[(b * 3000 + i) % len(bots)], replay.now + i * 1200 + b * 7)


def many_addresses(replay: Replay, days: float) -> None:
    """3 000 addresses, 2 requests each, over 20 blocks within 6 hours."""
    bots = _botnet(replay, 3000)
    blocks = [_block(replay) for _ in range(20)]
    for i, bot in enumerate(bots):
        for j in range(2):
            when = replay.now + DAY + replay.rng.random() * 6 * 3600
            replay.attack(blocks[(i + j) % len(blocks)], bot, when)


def one_address(replay: Replay, days: float) -> None:
    """One address tries, every minute for 3 days, to close one block for everyone."""
    block = _block(replay)
    for i in range(int(days * DAY / 60)):
        replay.attack(block, "203.0.113.66", replay.now + i * 60)


SCENARIOS: dict[str, Callable[[Replay, float], None]] = {
    "one block hammered": hammered,
    "50 blocks × 20 numbers": fifty_blocks,
    "slow drip, 3 days": slow_drip,
    "many addresses": many_addresses,
    "one address vs one block": one_address,
}


@dataclass(frozen=True)
class Row:
    scenario: str
    attack_requests: int
    blocks: int
    billed_mean: float
    billed_max: int
    honest_sends: int
    honest_refused: int
    honest_refused_attacked: int
    time_to_block: float | None  # median seconds, None: never refused
    closed_for_everyone: int

    @property
    def honest_share(self) -> float:
        return self.honest_sends / max(1, self.honest_sends + self.attack_requests)

    @property
    def refused_ratio(self) -> float:
        return self.honest_refused / max(1, self.honest_sends)


def replay(
    scenario: str, *, days: float = 3, users: int = 40_000, seed: int = 15, **config: Any
) -> Row:
    """Run one scenario; ``config`` overrides the package defaults."""
    r = Replay({"SECRET_KEY": "replay", **config}, seed)
    r.honest(users, days, r.now)
    SCENARIOS[scenario](r, days)
    tally = r.run(r.now + days * DAY + 3600)
    billed = [tally.billed.get(block, 0) for block in r.attacked]
    waits = [tally.first_refusal[b] - tally.first_attack[b] for b in tally.first_refusal]
    return Row(
        scenario,
        tally.attack_requests,
        len(r.attacked),
        statistics.mean(billed) if billed else 0.0,
        max(billed, default=0),
        tally.honest_sends,
        tally.honest_refused,
        tally.honest_refused_in_attacked,
        statistics.median(waits) if waits else None,
        len(tally.closed_for_everyone) if scenario == "one address vs one block" else 0,
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def table(rows: list[Row]) -> str:
    lines = [
        "| Scenario | attack requests | honest share of requests | attacked blocks "
        "| SMS billed per attacked block (mean / worst) | honest sends refused "
        "(in attacked blocks) | time to block (median) | blocks closed to everyone by one "
        "address |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.scenario} | {row.attack_requests:,} | {row.honest_share:.1%} | {row.blocks} "
            f"| {row.billed_mean:.1f} / {row.billed_max} "
            f"| {row.honest_refused} of {row.honest_sends:,} = {row.refused_ratio:.3%} "
            f"({row.honest_refused_attacked}) | {_duration(row.time_to_block)} "
            f"| {row.closed_for_everyone if row.scenario == 'one address vs one block' else '—'} |"
        )
    return "\n".join(lines)


def verdict(rows: list[Row]) -> list[str]:
    """The targets each row misses (empty: all met)."""
    misses = []
    for row in rows:
        if row.billed_max > TARGET_BILLED_PER_BLOCK:
            misses.append(f"{row.scenario}: {row.billed_max} SMS billed in the worst block")
        if row.refused_ratio > TARGET_HONEST_REFUSED:
            misses.append(f"{row.scenario}: {row.refused_ratio:.3%} honest sends refused")
        if row.closed_for_everyone:
            misses.append(f"{row.scenario}: {row.closed_for_everyone} blocks closed by one address")
    return misses


def run_all(days: float, users: int, **config: Any) -> Iterator[Row]:
    for name in SCENARIOS:
        yield replay(name, days=days, users=users, **config)


def write_results(path: Path, text: str) -> None:
    """Replace (or add) the "Fraud replay" section of RESULTS.md; the rest stays."""
    write_sections(path, text)  # text starts with its "## Fraud replay" heading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--short", action="store_true", help="1 simulated day, 8 000 users")
    parser.add_argument("--results", type=Path, help="write the table to this RESULTS.md")
    args = parser.parse_args(argv)
    days, users = (1.0, 8_000) if args.short else (3.0, 40_000)
    started = time.perf_counter()
    rows = list(run_all(days, users))
    elapsed = time.perf_counter() - started
    body = table(rows)
    misses = verdict(rows)
    summary = (
        "Targets: ≤ 20 SMS billed per attacked block, ≤ 0.1 % honest sends refused, 0 blocks "
        "closed to everyone by one address — "
        + ("all met." if not misses else "missed: " + "; ".join(misses) + ".")
    )
    print(body)
    print()
    print(summary)
    print(
        f"({len(rows)} scenarios, {days:g} simulated days each, {users:,} honest users, "
        f"{elapsed:.1f} s)"
    )
    if args.results:
        text = "\n".join(
            [
                "## Fraud replay",
                "",
                f"`bash scripts/bench.sh replay --results bench/RESULTS.md` "
                f"({days:g} simulated days per scenario, {users:,} honest users, seed 15; "
                f"{elapsed:.0f} s of wall time). The package's default settings. What each "
                'figure is: bench/README.md, "Fraud replay".',
                "",
                body,
                "",
                summary,
            ]
        )
        write_results(args.results, text)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
