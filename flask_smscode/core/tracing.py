"""Optional OpenTelemetry spans: ``smscode.send``, ``smscode.verify`` and
``smscode.provider`` (the sender call inside a send).

**Off unless installed.** :func:`tracer` looks for ``opentelemetry`` once, when the service
is built, without importing it; when it is missing every span is one shared no-op object
(no import, no allocation per request). When it is installed the spans go to whatever
tracer provider the app configured (``trace.set_tracer_provider``, possibly after
``init_app``: the API's proxy tracer follows it); with none configured OpenTelemetry's own
non-recording spans cost next to nothing, and no attribute is computed for them.

**Attributes** come from the :class:`~flask_smscode.events.Outcome` the request ends with
(the value that is logged, counted and signalled): ``smscode.outcome`` (``sent``,
``verified`` or the error code), ``smscode.purpose``, ``smscode.phone`` (masked by
:func:`~flask_smscode.phones.mask_phone`), ``smscode.sender``, ``smscode.guard``,
``smscode.provider_code``, ``smscode.replayed``. Never the code, never the full phone: the
Outcome carries no code, and the phone goes through the mask like a log line's.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask_smscode.errors import DeliveryUnconfirmed
from flask_smscode.events import Outcome
from flask_smscode.phones import mask_phone

TRACER_NAME = "flask_smscode"


class _NoSpan:
    """The span of an app without OpenTelemetry: does nothing, shared by every request."""

    def ended(self, outcome: Outcome) -> Outcome:
        return outcome

    def sent(self, sender: str | None) -> None:
        return None

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


NO_SPAN = _NoSpan()


class _Span:
    """One recording span; ``ended`` copies the request's outcome onto it."""

    def __init__(self, span: Any) -> None:
        self.span = span

    def ended(self, outcome: Outcome) -> Outcome:
        if self.span.is_recording():
            self.span.set_attributes(outcome_attributes(outcome))
        return outcome

    def sent(self, sender: str | None) -> None:
        """The provider accepted the send (``sender``: the name of the one that carried it)."""
        if self.span.is_recording():
            self.span.set_attributes(
                {"smscode.outcome": "sent", **({"smscode.sender": sender} if sender else {})}
            )


def outcome_attributes(outcome: Outcome) -> dict[str, str | bool]:
    """The span attributes of an outcome: bounded values, the phone masked."""
    values: dict[str, str | bool | None] = {
        "smscode.outcome": outcome.outcome,
        "smscode.purpose": outcome.purpose,
        "smscode.phone": mask_phone(outcome.phone) if outcome.phone else None,
        "smscode.sender": outcome.sender,
        "smscode.sender_outcome": outcome.sender_outcome,
        "smscode.guard": outcome.guard,
        "smscode.provider_code": outcome.provider_code,
        "smscode.replayed": outcome.replayed,
    }
    return {k: v for k, v in values.items() if v is not None}


class Tracing:
    """The service's spans; ``tracer`` None (OpenTelemetry not installed) makes them no-ops."""

    def __init__(self, tracer: Any | None, configured: Any = None) -> None:
        self.tracer = tracer
        # Whether the app has set a tracer provider yet (it may, after init_app): until it
        # does, a request opens no span at all — OpenTelemetry's proxy would make a
        # non-recording one and attach a context (~10 µs a request) for nothing, and many
        # apps have opentelemetry-api installed by another package without using it.
        self._configured = configured

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def span(self, name: str) -> Any:
        """A context manager giving an object with ``ended(outcome) -> outcome``."""
        if self.tracer is None or not self._configured():
            return NO_SPAN
        return self._span(name)

    @contextmanager
    def _span(self, name: str) -> Iterator[_Span]:
        # An exception (an SmsCodeError refusal included) is recorded by OpenTelemetry;
        # its text never holds the code (errors render from the catalogue).
        assert self.tracer is not None
        with self.tracer.start_as_current_span(name) as span:
            yield _Span(span)

    def provider(self, phone: str, purpose: str) -> Any:
        """The sender call's span: purpose and masked phone up front, the sender's name and
        outcome (``sent``, ``unconfirmed`` or the error code) when it returns or raises."""
        if self.tracer is None or not self._configured():
            return NO_SPAN
        return self._provider(phone, purpose)

    @contextmanager
    def _provider(self, phone: str, purpose: str) -> Iterator[_Span]:
        assert self.tracer is not None
        with self.tracer.start_as_current_span(
            "smscode.provider",
            attributes={"smscode.purpose": purpose, "smscode.phone": mask_phone(phone)},
        ) as span:
            try:
                yield _Span(span)
            except Exception as exc:
                unconfirmed = isinstance(exc, DeliveryUnconfirmed)
                attributes = {
                    "smscode.outcome": "unconfirmed"
                    if unconfirmed
                    else str(getattr(exc, "code", None) or type(exc).__name__),
                    "smscode.sender": getattr(exc, "sender", None),
                    "smscode.provider_code": getattr(exc, "provider_code", None),
                }
                span.set_attributes({k: v for k, v in attributes.items() if v})
                raise


def tracer() -> Tracing:
    """OpenTelemetry's tracer when ``opentelemetry-api`` is installed, else no-op spans.
    Looked up once per service (``find_spec`` does not import the package)."""
    try:
        found = importlib.util.find_spec("opentelemetry.trace") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return Tracing(None)
    from opentelemetry import trace

    def configured() -> bool:
        # The API hands out its proxy provider until set_tracer_provider() is called.
        return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    return Tracing(trace.get_tracer(TRACER_NAME), configured)
