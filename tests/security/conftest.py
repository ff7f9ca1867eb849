"""The secrets watch: over every test of the security suite, no code, AccessKey or unmasked
phone number appears in a log record (DEBUG and up, every logger, stack traces included), an
HTTP answer (body and headers) or an exception text.

It is autouse: whatever a test does (guessing, racing, fuzzing, schemathesis), its traffic
is checked when it ends, against every code that went over the wire to the loopback
Dysmsapi server during the test. A leak fails the test it happened in.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from flask import got_request_exception, request_finished

from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.security.support import PHONES, code_pattern


class SecretsWatch(logging.Handler):
    """Collects log records, answers and exception texts of one test."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.logs: list[str] = []
        self.answers: list[str] = []
        self.exceptions: list[str] = []
        self.extra_codes: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("tests."):  # the loopback servers' own diagnostics
            return
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        fields = getattr(record, "smscode", None)
        if fields is not None:
            text += " " + json.dumps(fields, default=str, ensure_ascii=False)
        self.logs.append(text)

    def answer(self, sender: Any, response: Any, **_: Any) -> None:
        body = "" if response.is_streamed else response.get_data(as_text=True)
        self.answers.append(body + "\n" + str(list(response.headers.items())))

    def crash(self, sender: Any, exception: BaseException, **_: Any) -> None:
        self.exception(exception)

    def exception(self, exc: BaseException) -> None:
        """Record ``exc`` and its whole chain (str and repr)."""
        chain: BaseException | None = exc
        while chain is not None:
            self.exceptions.append(str(chain) + " " + repr(chain))
            chain = chain.__cause__ or chain.__context__

    def check(self, codes: set[str]) -> None:
        secrets = [ACCESS_KEY_ID, ACCESS_KEY_SECRET]
        patterns = [code_pattern(code) for code in codes | self.extra_codes]
        for kind, texts in (
            ("log", self.logs),
            ("answer", self.answers),
            ("exception", self.exceptions),
        ):
            for text in texts:
                # The owner of a phone sees it in the /sms/verify answer that proves it.
                proof = kind == "answer" and '"token"' in text
                for secret in secrets + ([] if proof else list(PHONES)):
                    assert secret not in text, f"{secret!r} leaked in a {kind}: {text[:300]!r}"
                for pattern in patterns:
                    assert not pattern.search(text), f"a code leaked in a {kind}: {text[:300]!r}"


def _codes_sent(sms_server: Any) -> set[str]:
    codes: set[str] = set()
    for recorded in sms_server.requests:
        param = recorded.params.get("TemplateParam")
        if param:
            try:
                codes.update(str(v) for v in json.loads(param).values())
            except ValueError:
                pass
    return codes


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def store_uri(request: pytest.FixtureRequest) -> str:
    """The suite runs on memory:// and one Redis (Cluster and Sentinel are the same scripts;
    tests/stores/test_cluster.py and tests/stores/test_sentinel.py cover what differs), to
    stay fast."""
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture(autouse=True)
def secrets_watch(sms_server: Any) -> Iterator[SecretsWatch]:
    """Watch the whole test; checked before the loopback server forgets its requests."""
    watch = SecretsWatch()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)
    request_finished.connect(watch.answer)
    got_request_exception.connect(watch.crash)
    try:
        yield watch
    finally:
        request_finished.disconnect(watch.answer)
        got_request_exception.disconnect(watch.crash)
        root.removeHandler(watch)
        root.setLevel(old_level)
    watch.check(_codes_sent(sms_server))
    WATCHED.append((len(watch.logs), len(watch.answers), len(watch.exceptions)))


# Totals over the suite, for the report (pytest -s shows them at the end).
WATCHED: list[tuple[int, int, int]] = []


def pytest_sessionfinish(session: pytest.Session) -> None:  # pragma: no cover - reporting
    if WATCHED:
        logs, answers, exceptions = (sum(column) for column in zip(*WATCHED, strict=True))
        print(
            f"\nsecrets watch: {len(WATCHED)} tests, {logs} log records, {answers} answers, "
            f"{exceptions} exception texts checked"
        )
