"""The per-IP limits through the app's own Flask-Limiter (``SMSCODE_RATELIMIT_BACKEND``).

With ``"store"`` (the default) the package counts ``SMSCODE_IP_SEND_LIMITS`` and
``SMSCODE_IP_VERIFY_LIMITS`` itself (:mod:`flask_smscode.core.ratelimit`). With
``"flask-limiter"`` they run through the app's :class:`flask_limiter.Limiter`, so they
appear in its ``X-RateLimit-*`` headers and obey ``RATELIMIT_ENABLED``, its exemptions,
request filters and storage. Flask-Limiter stays optional: it is imported only here, only
when that backend is chosen.

Why the limits are registered as if the view were decorated, rather than counted with
``limiter.limiter.hit(...)``: a raw ``hit`` on the strategy bypasses everything the app
configured on the extension (``RATELIMIT_ENABLED``, ``request_filter``, exemptions, key
prefix, in-memory fallback) and leaves the headers showing only the app's own limits.
Decorating the blueprint views at registration would give all that, but counts in
``before_request``: before the service, and with no way for the Python API to use it.
So the first ``hit`` registers ``limiter.limit(SMSCODE_IP_*_LIMITS, override_defaults=False)``
under the qualified name of the view handling the request (exactly what decorating that
view does), and each ``hit`` runs Flask-Limiter's own check for that view from inside the
service. Its semantics are then those of a decorated route: the app's ``default_limits``
and blueprint limits are evaluated once, in the same check (unless exempted, e.g.
``limiter.exempt(sms_bp)``), the SMS limit is the one reported in the headers, and a
breach raises :class:`~flask_smscode.errors.Throttled` with the wait until the window
resets.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from flask import current_app, g, has_request_context, request

from flask_smscode.config import ceil_seconds
from flask_smscode.core.ratelimit import client_key
from flask_smscode.errors import ConfigurationError, StorageUnavailable, Throttled

_IP_KEY = "_smscode_limiter_ip"  # on flask.g: the client identity of the current hit


class FlaskLimiterAdapter:
    """``hit(endpoint, address)`` like the store's per-IP limits, counted by
    the current app's Flask-Limiter ``Limiter``.

    A no-op outside a request (the Python API or the CLI without a request: Flask-Limiter
    has no request to count) and when ``RATELIMIT_ENABLED`` is false.
    """

    def __init__(self, *, send: str, verify: str) -> None:
        self._limits = {"send": send, "verify": verify}
        # Per Limiter instance: view qualified name -> the registered no-op check.
        self._checks: weakref.WeakKeyDictionary[Any, dict[str, Callable[[], None]]] = (
            weakref.WeakKeyDictionary()
        )

    def hit(self, endpoint: str, address: str | None) -> None:
        """Count one request; raise Throttled (with the wait) or StorageUnavailable."""
        limit = self._limits[endpoint]  # a KeyError here is a bug, not a client fault
        if not limit or not has_request_context():
            return
        limiter = find_limiter()
        if limiter is None:
            return  # RATELIMIT_ENABLED is false: Flask-Limiter did not set itself up
        from flask_limiter import RateLimitExceeded

        view = current_app.view_functions.get(request.endpoint or "")
        if view is None:
            return
        check = self._check_for(limiter, view, limit)
        setattr(g, _IP_KEY, client_key(address))
        try:
            check()
        except RateLimitExceeded:
            raise Throttled(key="throttled.ip", retry_after=limiter_retry_after() or 60) from None
        except Exception as exc:  # storage down and the app did not ask FL to swallow it
            raise StorageUnavailable() from exc

    def _check_for(self, limiter: Any, view: Callable[..., Any], limit: str) -> Callable[[], None]:
        """A no-op function with the view's qualified name, decorated by ``limiter.limit``:
        calling it runs Flask-Limiter's check for that view (see the module docstring)."""
        checks = self._checks.setdefault(limiter, {})
        name = f"{view.__module__}.{view.__name__}.{view.__qualname__}"
        check = checks.get(name)
        if check is None:

            def counted() -> None:
                """Stands in for the view: Flask-Limiter checks, then calls this."""

            counted.__module__, counted.__name__ = view.__module__, view.__name__
            counted.__qualname__ = view.__qualname__
            check = limiter.limit(limit, key_func=_client_identity, override_defaults=False)(
                counted
            )
            checks[name] = check
        return check


def _client_identity() -> str:
    """The key of the SMS limits: the address the service was given, IPv6 by /64 (as the
    store backend counts), not Flask-Limiter's default ``remote_addr``."""
    return str(getattr(g, _IP_KEY, None) or client_key(request.remote_addr))


def find_limiter() -> Any | None:
    """The current app's one Flask-Limiter ``Limiter``; ``None`` when it is disabled."""
    limiters = list(current_app.extensions.get("limiter", ()))
    if len(limiters) == 1:
        return limiters[0]
    if not limiters and current_app.config.get("RATELIMIT_ENABLED") is False:
        return None
    raise ConfigurationError(
        "SMSCODE_RATELIMIT_BACKEND = 'flask-limiter' needs exactly one Flask-Limiter Limiter "
        f"initialised on the app (found {len(limiters)})."
    )


def limiter_retry_after() -> int | None:
    """Seconds until the breached Flask-Limiter limit of this request resets (``None`` if
    no Limiter recorded one). Works on any 429 Flask-Limiter raised, the app's own
    ``default_limits`` included, without importing Flask-Limiter."""
    for limiter in current_app.extensions.get("limiter", ()):
        try:
            current = limiter.current_limit
            if current is not None:
                # window[0] is the reset time itself; reset_at rounds it up by a second.
                return ceil_seconds(current.window[0] - time.time())
        except Exception:  # noqa: S112 - storage trouble reading the window: use the fallback
            continue
    return None
