"""OpenTelemetry spans (core/tracing.py): ``smscode.send``, ``smscode.verify`` and
``smscode.provider`` with the outcome as attributes, recorded by the SDK's in-memory
exporter; never the code or the full phone; nothing imported when OpenTelemetry is absent.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flask_smscode.core.tracing import NO_SPAN, Tracing, tracer
from tests.helpers import E164, PHONE, send, verify, wrong

memory_only = pytest.mark.parametrize("store_uri", ["memory"], indirect=True)
EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once: OpenTelemetry allows one), emptied."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def no_secret(exporter: InMemorySpanExporter, code: str) -> None:
    for span in exporter.get_finished_spans():
        texts = [str(v) for v in span.attributes.values()]
        texts += [str(v) for e in span.events for v in (e.attributes or {}).values()]
        for text in texts:
            assert code not in text, (span.name, text)
            assert PHONE not in text and E164 not in text, (span.name, text)


@memory_only
def test_send_and_verify_spans_carry_the_outcome(make_app, sms_server, spans):
    client = make_app().test_client()
    assert send(client).status_code == 200
    code = sms_server.last_code(PHONE)
    assert verify(client, wrong(code)).status_code == 400
    assert verify(client, code).status_code == 200
    found = by_name(spans)
    (sent,) = found["smscode.send"]
    assert sent.attributes["smscode.outcome"] == "sent"
    assert sent.attributes["smscode.purpose"] == "login"
    assert sent.attributes["smscode.sender"] == "aliyun"
    assert sent.attributes["smscode.phone"] not in (PHONE, E164)
    assert sent.attributes["smscode.phone"].endswith(PHONE[-4:])  # masked, as in logs
    (provider,) = found["smscode.provider"]
    assert provider.parent is not None and provider.parent.span_id == sent.context.span_id
    assert provider.attributes["smscode.outcome"] == "sent"
    assert provider.attributes["smscode.sender"] == "aliyun"
    failed, verified = found["smscode.verify"]
    assert failed.attributes["smscode.outcome"] == "invalid_code"
    assert verified.attributes["smscode.outcome"] == "verified"
    no_secret(spans, code)


@memory_only
def test_a_refused_send_and_a_failing_provider(make_app, sms_server, spans):
    client = make_app().test_client()
    assert send(client).status_code == 200
    assert send(client).status_code == 429  # cooldown: refused before the provider
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    assert send(client, "13900139000").status_code >= 400
    found = by_name(spans)
    sent, refused, failed = found["smscode.send"]
    assert sent.attributes["smscode.outcome"] == "sent"
    assert refused.attributes["smscode.outcome"] == "throttled"
    assert len(found["smscode.provider"]) == 2  # the refused send never called it
    provider_failed = found["smscode.provider"][1]
    assert provider_failed.attributes["smscode.outcome"] == failed.attributes["smscode.outcome"]
    assert provider_failed.attributes["smscode.provider_code"] == "isv.BUSINESS_LIMIT_CONTROL"
    no_secret(spans, sms_server.last_code(PHONE))


def test_without_opentelemetry_nothing_is_imported_and_spans_are_no_ops():
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        from flask_smscode.core.tracing import NO_SPAN, tracer
        t = tracer()
        assert not t.enabled and t.span("smscode.send") is NO_SPAN
        assert t.provider("+8613800138000", "login") is NO_SPAN
        assert sys.modules["opentelemetry"] is None
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
    assert Tracing(None).span("x") is NO_SPAN
    assert tracer().enabled  # installed here (the test extra)


def test_installed_but_not_configured_opens_no_span_until_a_provider_is_set():
    """opentelemetry-api often comes with another package: until the app sets a tracer
    provider (possibly after init_app), a request opens no span; once set, spans record."""
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from flask_smscode.core.tracing import NO_SPAN, tracer
        t = tracer()
        assert t.enabled and t.span("smscode.send") is NO_SPAN
        assert t.provider("+8613800138000", "login") is NO_SPAN
        trace.set_tracer_provider(TracerProvider())
        with t.span("smscode.send") as span:
            assert span is not NO_SPAN and span.span.is_recording()
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr
