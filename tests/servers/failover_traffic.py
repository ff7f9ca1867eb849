"""Background send+verify traffic through a Flask app, for failover and migration tests.

Each thread owns one phone and loops: send, read the code from the loopback Dysmsapi
server, verify it; a verify that answered 503 is retried with the same code (it must still
be live). Every answer is recorded, so a test can count the 503s a topology change caused,
prove there was no other 5xx, and see that work resumed without restarting the app.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from tests.servers.dysmsapi_server import DysmsapiServer

#: Settings that let one phone send again at once, with per-IP limits out of the way.
TRAFFIC_CONFIG: dict[str, Any] = {
    "SMSCODE_RESEND_INTERVAL_SECONDS": 0,
    "SMSCODE_PHONE_LIMITS": "100000/hour",
    "SMSCODE_IP_SEND_LIMITS": "100000/hour",
    "SMSCODE_IP_VERIFY_LIMITS": "100000/hour",
    "SMSCODE_PREFIX_SEND_LIMITS": "100000/hour",
    # one client (the test) whose codes a failover may lose: not the guard's source rule
    "SMSCODE_GUARD_SOURCE_SENDS": 0,
}


@dataclass(frozen=True)
class Answer:
    op: str  # "send" or "verify"
    phone: str
    status: int
    error: str | None  # the JSON ``error`` code of a failure
    retry_after: str | None
    started: float  # time.monotonic() when the request left
    seconds: float  # how long it took


@dataclass
class Traffic:
    """Threads doing send+verify on their own phone until :meth:`stop`."""

    app: Flask
    sms_server: DysmsapiServer
    phones: list[str]
    pause_seconds: float = 0.01
    answers: list[Answer] = field(default_factory=list)
    verified: list[tuple[str, str]] = field(default_factory=list)  # (phone, code) accepted
    lost: list[tuple[str, str]] = field(default_factory=list)  # sent, then not accepted

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(phone,), daemon=True) for phone in self.phones
        ]
        self.errors: list[BaseException] = []

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in self._threads), "a traffic thread hangs"
        if self.errors:
            raise self.errors[0]

    def _call(self, client: Any, op: str, phone: str, body: dict[str, str]) -> Answer:
        started = time.monotonic()
        response = client.post(f"/sms/{op}", json=body)
        payload = response.get_json(silent=True) or {}
        answer = Answer(
            op,
            phone,
            response.status_code,
            payload.get("error"),
            response.headers.get("Retry-After"),
            started,
            time.monotonic() - started,
        )
        with self._lock:
            self.answers.append(answer)
        return answer

    def _run(self, phone: str) -> None:
        client = self.app.test_client()
        pending: str | None = None
        try:
            while not self._stop.is_set():
                if pending is None:
                    if self._call(client, "send", phone, {"phone": phone}).status == 200:
                        pending = self.sms_server.last_code(phone)
                else:
                    answer = self._call(
                        client,
                        "verify",
                        phone,
                        {"phone": phone, "code": pending, "purpose": "login"},
                    )
                    if answer.status == 200:
                        with self._lock:
                            self.verified.append((phone, pending))
                        pending = None
                    elif answer.status != 503:  # the code was lost or refused: a new one
                        with self._lock:
                            self.lost.append((phone, pending))
                        pending = None
                time.sleep(self.pause_seconds)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)

    # -- what happened -----------------------------------------------------------------------

    def between(self, start: float, end: float = float("inf")) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if start <= a.started < end]

    def tally(self, answers: list[Answer] | None = None) -> Counter[str]:
        """Counts per ``op status error``, e.g. ``verify 503 storage_unavailable``."""
        answers = self.answers if answers is None else answers
        return Counter(f"{a.op} {a.status} {a.error or ''}".strip() for a in answers)

    def unexpected(self) -> list[Answer]:
        """Answers that are neither a success nor the documented 503 with a Retry-After."""
        return [
            a
            for a in self.answers
            if a.status != 200
            and not (
                a.status == 503 and a.error == "storage_unavailable" and a.retry_after is not None
            )
        ]

    def unavailable(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 503]

    def outage_seconds(self) -> float:
        """From the first 503 to the last one (0 when there was none)."""
        outages = self.unavailable()
        if not outages:
            return 0.0
        return max(a.started + a.seconds for a in outages) - min(a.started for a in outages)

    def assert_recovered(self, since: float, slowest: float = 5.0) -> None:
        """Nothing hung, and since ``since`` every phone verified a code and its last three
        answers were successes: work resumed without restarting the app."""
        assert max(a.seconds for a in self.answers) < slowest, self.report()
        after = self.between(since)
        for phone in self.phones:
            tail = [a for a in after if a.phone == phone]
            assert any(a.op == "verify" and a.status == 200 for a in tail), self.report()
            assert tail[-3:] and all(a.status == 200 for a in tail[-3:]), self.report()

    def report(self) -> str:
        slowest = max((a.seconds for a in self.answers), default=0.0)
        return (
            f"{len(self.answers)} requests, {len(self.unavailable())} x 503 over "
            f"{self.outage_seconds():.2f}s, slowest {slowest:.2f}s, "
            f"{len(self.lost)} codes lost; {dict(self.tally())}"
        )


def fresh_round(client: Any, sms_server: DysmsapiServer, phones: list[str]) -> None:
    """One send and one verify per phone, each answering 200."""
    for phone in phones:
        response = client.post("/sms/send", json={"phone": phone})
        assert response.status_code == 200, response.get_data(as_text=True)
        code = sms_server.last_code(phone)
        response = client.post(
            "/sms/verify", json={"phone": phone, "code": code, "purpose": "login"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
