"""Cross-origin protection of the state-changing endpoints (``POST /sms/send``,
``POST /sms/verify``): which browser requests come from another site, and which origins
the app trusts (with their CORS answer).

Why: a plain HTML form on any site can post ``phone=…`` (urlencoded or multipart, no custom
header, so no CORS preflight) to ``/sms/send``; each visitor's browser then sends a real SMS
from a new address, so per-IP limits never bind. Browsers say where such a request comes
from, in headers a page cannot set (``Sec-Fetch-Site``, ``Origin``), so the server refuses
it without tokens or cookies.

The decision is Go 1.25's ``net/http.CrossOriginProtection`` (the algorithm of Filippo
Valsorda's "CSRF" write-up, also Django's origin check), step by step:

1. safe methods (GET, HEAD, OPTIONS) pass: they change nothing here;
2. ``Sec-Fetch-Site: same-origin`` or ``none`` (typed in the address bar, a bookmark)
   passes; any other value (``cross-site``, ``same-site``, anything unknown) is refused
   unless the ``Origin`` is trusted;
3. without ``Sec-Fetch-Site`` (browsers before 2023, some proxies strip it): an ``Origin``
   whose host (with port) equals the request's ``Host`` passes, any other ``Origin``
   (``null`` included) is refused unless trusted;
4. neither header: not a browser (curl, a REST or mobile client, a server): passes. Such
   a client sends what its owner wants anyway; CSRF is about a *visitor's* browser being
   made to post.

Trusted origins (``SMSCODE_TRUSTED_ORIGINS``) are exact ``scheme://host[:port]`` strings,
compared with the browser's ``Origin`` after the same normalisation (lowercase, default port
dropped), never by suffix or pattern. The delivery-report receiver is not checked: Alibaba
posts server to server with neither header, so it would pass anyway, and its own defences
are the path secret and the source allowlist.

This module decides; :mod:`flask_smscode.web.origins` reads the headers and answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask_smscode.config import get_setting
from flask_smscode.errors import ConfigurationError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a preflight may ask for, and what the answer allows: the JSON body's content type,
# the Idempotency-Key of a send, the language of the answer, the header some AJAX libraries
# add, and Flask-WTF's CSRF token header (for apps that keep CSRFProtect on the blueprint).
ALLOWED_HEADERS = (
    "Content-Type",
    "Idempotency-Key",
    "Accept-Language",
    "X-Requested-With",
    "X-CSRFToken",
)
# Headers of an answer a page on a trusted origin may read (CORS hides all but a few).
EXPOSED_HEADERS = ("Retry-After", "Idempotent-Replayed", "Content-Language")
# How long a browser may reuse a preflight's answer: 10 minutes (Chromium caps at 2 hours).
PREFLIGHT_MAX_AGE_SECONDS = 600
MAX_LOGGED_ORIGIN_CHARS = 100
_DEFAULT_PORTS = {"http": 80, "https": 443}
# scheme://host[:port]: what a browser writes in Origin (RFC 6454), nothing after it.
# Hosts are ASCII in an Origin (IDNs in punycode): a name or a bracketed IPv6 address.
_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>(?:\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::[0-9]*)?)"
)
_LOGGABLE = re.compile(r"[a-z0-9_.:\[\]/-]+")


def normalize_origin(value: str) -> str | None:
    """``HTTPS://App.Example.com:443`` → ``https://app.example.com``; ``None`` if ``value``
    is not a bare ``scheme://host[:port]`` (a path, query, user info or ``null``)."""
    text = value.strip().lower()
    match = _ORIGIN.fullmatch(text)
    if match is None:
        return None
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    scheme = match.group("scheme")
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}"


def loggable_origin(value: str | None) -> str | None:
    """What a log line may show of a request's ``Origin``: the normalised origin, cut to
    :data:`MAX_LOGGED_ORIGIN_CHARS`, or ``invalid`` (never raw header text)."""
    if value is None:
        return None
    if len(value) > 300:  # no real origin is longer (a host is at most 253 characters)
        return "invalid"
    origin = normalize_origin(value)
    if origin is None or not _LOGGABLE.fullmatch(origin):
        return "invalid"
    return origin[:MAX_LOGGED_ORIGIN_CHARS]


@dataclass(frozen=True)
class OriginSettings:
    """``SMSCODE_CROSS_ORIGIN_PROTECTION``, ``SMSCODE_TRUSTED_ORIGINS`` and
    ``SMSCODE_CORS_CREDENTIALS``, validated once at start-up."""

    protect: bool = True
    trusted: frozenset[str] = frozenset()
    credentials: bool = False

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OriginSettings:
        protect = get_setting(config, "SMSCODE_CROSS_ORIGIN_PROTECTION")
        credentials = get_setting(config, "SMSCODE_CORS_CREDENTIALS")
        for key, value in (
            ("SMSCODE_CROSS_ORIGIN_PROTECTION", protect),
            ("SMSCODE_CORS_CREDENTIALS", credentials),
        ):
            if not isinstance(value, bool):
                raise ConfigurationError(f"{key} must be true or false; got {value!r}.")
        raw = get_setting(config, "SMSCODE_TRUSTED_ORIGINS")
        if isinstance(raw, str):
            raw = [raw] if raw else []
        if not isinstance(raw, (list, tuple, set, frozenset)):
            raise ConfigurationError(
                "SMSCODE_TRUSTED_ORIGINS must be a list of origins "
                "(e.g. ['https://app.example.com'])."
            )
        trusted = set()
        for item in raw:
            origin = normalize_origin(item) if isinstance(item, str) else None
            if origin is None or not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"SMSCODE_TRUSTED_ORIGINS: {item!r} is not an origin; write "
                    "scheme://host[:port] with no path, e.g. 'https://app.example.com' "
                    "(no wildcards: each origin is listed exactly)."
                )
            trusted.add(origin)
        return cls(protect, frozenset(trusted), credentials)

    def trusts(self, origin: str | None) -> bool:
        """Whether ``origin`` (the request's ``Origin`` header) is listed."""
        if not origin or not self.trusted:
            return False
        normalized = normalize_origin(origin)
        return normalized is not None and normalized in self.trusted

    def refuses(
        self, method: str, fetch_site: str | None, origin: str | None, host: str | None
    ) -> bool:
        """Whether a request is a cross-origin one to refuse (the steps in the module
        docstring); ``host`` is the request's ``Host`` (as the app sees it)."""
        if not self.protect or method.upper() in SAFE_METHODS:
            return False
        if fetch_site:
            if fetch_site.strip().lower() in ("same-origin", "none"):
                return False
            return not self.trusts(origin)
        if not origin:
            return False
        if _host_of(origin) == (host or "").lower():
            return False
        return not self.trusts(origin)


def _host_of(origin: str) -> str | None:
    """The ``host[:port]`` of an ``Origin`` value as a browser sends it, else ``None``."""
    match = _ORIGIN.fullmatch(origin.strip().lower())
    return match.group("host") if match is not None else None
