"""The chaos benchmark: 10,000 code sends through two vendors with faults injected, and the
one invariant of failover checked send by send — **at most one SMS per send, exactly one
per accepted send, none for a send answered with an error**.

``bash scripts/bench.sh chaos`` (``python -m bench.chaos``; ``--sends N``, ``--workers N``,
``--seed N``, ``--results bench/RESULTS.md``). About a minute; exits non-zero when an
invariant breaks.

**Set-up.** Alibaba Cloud's and Tencent Cloud's loopback servers (the tests', checking every
signature), each behind a :class:`~tests.servers.fault_proxy.FaultProxy`; one Flask app
whose ``SMSCODE_SENDER_ROUTES`` sends mainland numbers Alibaba first then Tencent, and Hong
Kong numbers Tencent first then Alibaba; a private ``redis-server`` as the store (``memory://``
when none is installed). Sends go through the real package in-process (``service.send``,
the real SDKs, timeouts of 0.5 s), ``--workers`` threads at a time; every send has its own
phone, so each SMS the servers record belongs to exactly one send.

**Faults**, on the first sender of the send's route (the proxy's by the phone number; the
vendor's own through its server's ``fail_next``):

========================  ====================================================  ==========
fault                     what happens                                           expected
========================  ====================================================  ==========
none                      nothing                                                first sends
slow                      the answer comes after 0.15 s (under the timeout)     first sends
refused                   the proxy is not listening: ECONNREFUSED              moves
http_5xx                  the proxy answers 502 Bad Gateway, nothing forwarded  moves
provider_down             the vendor's definite business code (Alibaba          moves
                          ``isp.SYSTEM_ERROR``, Tencent
                          ``FailedOperation.InsufficientBalanceInSmsPackage``)
reset_before              the connection is reset, the request never forwarded   unconfirmed, 0 SMS
reset_after               forwarded (the SMS is recorded), then reset            unconfirmed, 1 SMS
read_timeout              forwarded (recorded), the answer withheld              unconfirmed, 1 SMS
flow_control              the vendor's flow-control code                         429, 0 SMS
both_down                 502 from both vendors' proxies                         502, 0 SMS
========================  ====================================================  ==========

``reset_before`` is an *unconfirmed* case by design: the client cannot tell a reset before
the vendor read the request from one after it (``reset_after``), so it may not move on — a
second SMS would follow the first whenever the vendor did get it.

The proxy faults and ``none``/``slow`` run concurrently; ``refused`` (the whole proxy stops
listening) and the vendor-level faults (a server's ``fail_next`` is taken by whichever
request comes next) run one at a time, so each fault lands on its own send.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask import Flask

from bench.results import write_sections
from flask_smscode import SmsCode, SmsCodeError, get_service
from flask_smscode.metrics import FAILOVERS, SENDERS
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.fault_proxy import FaultProxy
from tests.servers.tencent_server import (
    SDK_APP_ID,
    SECRET_ID,
    SECRET_KEY,
    TencentServer,
)

ALIYUN_KEY_ID, ALIYUN_SECRET = "chaos-key-id", "chaos-key-secret"
TIMEOUT_SECONDS = 0.5
SLOW_SECONDS = 0.15
# Fault -> weight (per cent of sends).
WEIGHTS: dict[str, int] = {
    "none": 40,
    "slow": 8,
    "refused": 5,
    "http_5xx": 8,
    "provider_down": 5,
    "reset_before": 8,
    "reset_after": 8,
    "read_timeout": 4,
    "flow_control": 6,
    "both_down": 8,
}
PROXY_FAULTS = {"slow", "http_5xx", "reset_before", "reset_after", "read_timeout"}
ONE_AT_A_TIME = {"refused", "provider_down", "flow_control", "both_down"}
# What each fault must come to: (answer, where the SMS is). "first"/"second": accepted, one
# SMS at that vendor; "unconfirmed-0"/"unconfirmed-1": a 200 "unconfirmed" answer with that
# many SMS; an error code: refused, no SMS.
EXPECTED = {
    "none": "first",
    "slow": "first",
    "refused": "second",
    "http_5xx": "second",
    "provider_down": "second",
    "reset_before": "unconfirmed-0",
    "reset_after": "unconfirmed-1",
    "read_timeout": "unconfirmed-1",
    "flow_control": "throttled",
    "both_down": "provider_error",
}
# Where a vendor's own table judges a fault differently. Tencent's SDK cannot tell a
# gateway's 5xx from one after its backend took the request, so its sender calls any
# non-200 answer unconfirmed (tencent/transport.py): never a move, never a second SMS.
VENDOR_EXPECTED = {("tencent", "http_5xx"): "unconfirmed-0"}
VENDOR_CODES = {
    "aliyun": {"provider_down": "isp.SYSTEM_ERROR", "flow_control": "isv.BUSINESS_LIMIT_CONTROL"},
    "tencent": {
        "provider_down": "FailedOperation.InsufficientBalanceInSmsPackage",
        "flow_control": "LimitExceeded.PhoneNumberThirtySecondLimit",
    },
}
# Hong Kong numbers go Tencent first: every fault is tried in both directions.
HK_SHARE = 0.3
BLOCK = 500  # sends per block: its concurrent sends run first, then its one-at-a-time ones
# The phone numbers the proxies look for (mainland national numbers, 852 + 8 digits).
TOKEN_PATTERN = rb"139\d{8}|85251\d{6}"


@dataclass
class Send:
    """One send of the run and what became of it."""

    index: int
    phone: str  # E.164
    token: str  # what the proxies find in the request
    first: str  # the vendor the route tries first
    fault: str
    answer: str = ""  # "sent", "unconfirmed" or the error code
    sms: dict[str, int] = field(default_factory=dict)  # vendor -> SMS recorded

    @property
    def second(self) -> str:
        return "tencent" if self.first == "aliyun" else "aliyun"

    @property
    def expected(self) -> str:
        return VENDOR_EXPECTED.get((self.first, self.fault), EXPECTED[self.fault])

    def result(self) -> str:
        """What the send came to, in :data:`EXPECTED`'s terms."""
        total = sum(self.sms.values())
        if self.answer == "sent":
            if total != 1:
                return f"sent-with-{total}-sms"
            return "first" if self.sms.get(self.first) else "second"
        if self.answer == "unconfirmed":
            return f"unconfirmed-{total}"
        return self.answer if total == 0 else f"{self.answer}-with-{total}-sms"


@dataclass
class Report:
    sends: list[Send]
    seconds: float
    store: str
    failovers: dict[tuple[str, str, str], int]
    proxy_errors: list[str]
    server_errors: list[str]

    def broken(self) -> list[str]:
        """Every invariant that does not hold (empty: all hold)."""
        problems: list[str] = []
        for send in self.sends:
            got = send.result()
            if got != send.expected:
                problems.append(
                    f"send {send.index} ({send.first} first, {send.fault}): expected "
                    f"{send.expected}, got {got}"
                )
        moved = sum(1 for s in self.sends if s.result() == "second")
        moves = sum(self.failovers.values())
        both = sum(1 for s in self.sends if s.fault == "both_down")
        if moves != moved + both:
            problems.append(f"the failover counter says {moves} moves, the sends {moved + both}")
        problems += [f"proxy: {e}" for e in self.proxy_errors]
        problems += [f"server: {e.splitlines()[-1]}" for e in self.server_errors]
        return problems

    def render(self) -> str:
        sends = self.sends
        accepted = [s for s in sends if s.answer == "sent"]
        unconfirmed = [s for s in sends if s.answer == "unconfirmed"]
        errors = [s for s in sends if s.answer not in ("sent", "unconfirmed")]
        sms_accepted = sum(sum(s.sms.values()) for s in accepted)
        sms_errors = sum(sum(s.sms.values()) for s in errors)
        sms_unconfirmed = sum(sum(s.sms.values()) for s in unconfirmed)
        ratio = sms_accepted / len(accepted) if accepted else 0.0
        lines = [
            f"sends attempted: {len(sends)} in {self.seconds:.1f} s (store: {self.store})",
            f"accepted: {len(accepted)}; SMS recorded per accepted send: {ratio:.3f} "
            f"(every one exactly 1: {all(sum(s.sms.values()) == 1 for s in accepted)})",
            f"answered with an error: {len(errors)}; SMS recorded for them: {sms_errors}",
            f"unconfirmed (200, delivery=unconfirmed): {len(unconfirmed)}; SMS recorded for "
            f"them: {sms_unconfirmed} (the request reached the vendor in those cases)",
            "",
            "| fault | first vendor | sends | first vendor sent | moved to the other "
            "| unconfirmed, 0 SMS | unconfirmed, 1 SMS | 429 throttled | 502 provider_error "
            "| expected |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for fault in WEIGHTS:
            for vendor in ("aliyun", "tencent"):
                mine = [s for s in sends if s.fault == fault and s.first == vendor]
                if not mine:
                    continue
                got = Counter(s.result() for s in mine)
                lines.append(
                    f"| {fault} | {vendor} | {len(mine)} | {got['first']} | {got['second']} | "
                    f"{got['unconfirmed-0']} | {got['unconfirmed-1']} | {got['throttled']} | "
                    f"{got['provider_error']} | {mine[0].expected} |"
                )
        lines += ["", "moves by (from, to, reason), from smscode_sender_failovers_total:"]
        for (source, target, reason), count in sorted(self.failovers.items()):
            lines.append(f"- {source} → {target}, {reason}: {count}")
        problems = self.broken()
        lines += ["", "invariants: all hold" if not problems else f"BROKEN ({len(problems)}):"]
        lines += [f"- {p}" for p in problems[:20]]
        return "\n".join(lines)


class _Gate:
    """Many concurrent sends, or one alone (a vendor-level fault, a refusing proxy)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: self._running == 0)
            yield


def plan_sends(count: int, seed: int) -> list[Send]:
    rng = random.Random(seed)
    faults = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()), k=count)
    sends = []
    for index, fault in enumerate(faults):
        if rng.random() < HK_SHARE:
            national = f"51{index:06d}"
            sends.append(Send(index, f"+852{national}", f"852{national}", "tencent", fault))
        else:
            national = f"139{index:08d}"
            sends.append(Send(index, f"+86{national}", national, "aliyun", fault))
    return sends


def chaos_app(aliyun: FaultProxy, tencent: FaultProxy, storage_uri: str) -> Flask:
    app = Flask("chaos")
    app.config.update(
        SECRET_KEY="chaos-secret",
        TESTING=True,
        SMSCODE_STORAGE_URI=storage_uri,
        SMSCODE_KEY_PREFIX=f"chaos{random.randrange(10**6)}",
        SMSCODE_ALLOWED_REGIONS=["CN", "HK"],
        SMSCODE_SENDER=None,
        SMSCODE_SENDER_ROUTES={"86": ["aliyun", "tencent"], "852": ["tencent", "aliyun"]},
        SMSCODE_ALIYUN_ACCESS_KEY_ID=ALIYUN_KEY_ID,
        SMSCODE_ALIYUN_ACCESS_KEY_SECRET=ALIYUN_SECRET,
        SMSCODE_ALIYUN_SIGN_NAME="TestSign",
        SMSCODE_ALIYUN_TEMPLATE_CODE="SMS_123456789",
        SMSCODE_ALIYUN_INTL_TEMPLATE_CODE="SMS_INTL_CODE",
        SMSCODE_ALIYUN_ENDPOINT=aliyun.endpoint,
        SMSCODE_ALIYUN_PROTOCOL="http",
        SMSCODE_ALIYUN_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
        SMSCODE_TENCENT_SECRET_ID=SECRET_ID,
        SMSCODE_TENCENT_SECRET_KEY=SECRET_KEY,
        SMSCODE_TENCENT_SDK_APP_ID=SDK_APP_ID,
        SMSCODE_TENCENT_SIGN_NAME="TestSign",
        SMSCODE_TENCENT_TEMPLATE_ID="1001",
        SMSCODE_TENCENT_INTL_TEMPLATE_ID="2001",
        SMSCODE_TENCENT_ENDPOINT=tencent.endpoint,
        SMSCODE_TENCENT_PROTOCOL="http",
        SMSCODE_TENCENT_TIMEOUT_SECONDS=TIMEOUT_SECONDS,
        # Every phone sends once: no limit or guard may refuse (they are not under test).
        SMSCODE_PHONE_LIMITS="1000000/hour",
        SMSCODE_PREFIX_SEND_LIMITS="1000000/hour",
        SMSCODE_GUARD_MIN_SENDS=1_000_000,
    )
    SmsCode(app)
    return app


def run(
    sends_count: int = 10_000,
    *,
    workers: int = 8,
    seed: int = 20261205,
    storage_uri: str = "memory://",
) -> Report:
    """Run the chaos benchmark and return its report (nothing printed)."""
    sends = plan_sends(sends_count, seed)
    with contextlib.ExitStack() as stack:
        servers: dict[str, Any] = {
            "aliyun": stack.enter_context(DysmsapiServer({ALIYUN_KEY_ID: ALIYUN_SECRET})),
            "tencent": stack.enter_context(TencentServer()),
        }
        proxies = {
            vendor: stack.enter_context(
                FaultProxy(
                    server.endpoint,
                    token_pattern=TOKEN_PATTERN,
                    slow_seconds=SLOW_SECONDS,
                    hold_seconds=TIMEOUT_SECONDS * 4,
                )
            )
            for vendor, server in servers.items()
        }
        app = chaos_app(proxies["aliyun"], proxies["tencent"], storage_uri)
        stack.callback(lambda: app.extensions["smscode"].store.close())
        SENDERS.reset()
        FAILOVERS.reset()
        gate = _Gate()

        def one(send: Send) -> None:
            first = proxies[send.first]
            if send.fault in PROXY_FAULTS:
                first.plan(send.token, send.fault)
            elif send.fault == "both_down":
                for vendor in servers:
                    servers[vendor].fail_next(VENDOR_CODES[vendor]["provider_down"])
            elif send.fault in ("provider_down", "flow_control"):
                code = VENDOR_CODES[send.first][send.fault]
                servers[send.first].fail_next(code)
            with app.app_context():
                service = get_service()
                try:
                    result = service.send(send.phone)
                    send.answer = result.delivery
                except SmsCodeError as exc:
                    send.answer = exc.code

        def shared(send: Send) -> None:
            with gate.shared():
                one(send)

        began = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(sends), BLOCK):
                block = sends[start : start + BLOCK]
                # The concurrent sends of the block, then its one-at-a-time sends alone.
                futures = [pool.submit(shared, s) for s in block if s.fault not in ONE_AT_A_TIME]
                for future in futures:
                    future.result()
                with gate.alone():
                    for send in block:
                        if send.fault == "refused":
                            with proxies[send.first].refusing():
                                one(send)
                        elif send.fault in ONE_AT_A_TIME:
                            one(send)
        seconds = time.perf_counter() - began
        time.sleep(TIMEOUT_SECONDS)  # let withheld answers' connections close
        recorded: dict[str, dict[str, int]] = defaultdict(dict)
        for vendor, server in servers.items():
            for sms in server.sent:
                for phone in _phones_of(vendor, sms):
                    recorded[phone][vendor] = recorded[phone].get(vendor, 0) + 1
        for send in sends:
            send.sms = recorded.get(send.phone, {})
        return Report(
            sends=sends,
            seconds=seconds,
            store=storage_uri.split(":")[0],
            failovers=FAILOVERS.snapshot(),
            proxy_errors=[e for p in proxies.values() for e in p.errors],
            server_errors=[e for s in servers.values() for e in s.errors],
        )


def _phones_of(vendor: str, sms: Any) -> list[str]:
    """The E.164 numbers of one recorded SMS (each server records in its own shape)."""
    out = []
    for phone in sms.phones if vendor == "aliyun" else [sms.phone]:
        digits = "".join(ch for ch in str(phone) if ch.isdigit())
        if len(digits) == 11 and digits.startswith("1"):
            digits = "86" + digits  # Alibaba records mainland numbers without 86
        out.append("+" + digits)
    return out


def write_results(path: Path, text: str, argv: list[str]) -> None:
    """Replace (or add) the "Chaos" section of ``path``, leaving the rest as it is."""
    heading = "## Chaos"
    section = (
        f"{heading}\n\n`bash scripts/bench.sh chaos {' '.join(argv)}`".rstrip()
        + f" — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, see bench/chaos.py for "
        "the faults and bench/README.md for how to read this.\n\n```\n"
        + text.split("\n| fault |")[0].rstrip()
        + "\n```\n\n| fault |"
        + text.split("\n| fault |", 1)[1]
        + "\n"
    )
    write_sections(path, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--memory", action="store_true", help="memory:// instead of Redis")
    parser.add_argument("--results", type=Path, help="write the 'Chaos' section of this file")
    args = parser.parse_args(argv)
    # The per-send log lines are not the output: keep them out of the terminal.
    quiet = logging.getLogger("flask_smscode")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    with contextlib.ExitStack() as stack:
        storage_uri = "memory://"
        if not args.memory:
            from tests.servers.redis_server import RedisServer

            try:
                own_redis = RedisServer().start()
            except RuntimeError as exc:
                print(f"({exc}; using memory://)", file=sys.stderr)
            else:
                stack.callback(own_redis.cleanup)
                storage_uri = own_redis.url
        report = run(args.sends, workers=args.workers, seed=args.seed, storage_uri=storage_uri)
    text = report.render()
    print(text)
    if args.results:
        write_results(args.results, text, sys.argv[2:] if argv is None else argv)
    return 1 if report.broken() else 0


if __name__ == "__main__":
    sys.exit(main())
