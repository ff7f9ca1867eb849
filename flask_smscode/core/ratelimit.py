"""Who a per-IP limit counts: the client's address, or its /64 for IPv6.

The counting itself happens in the store, folded into the send and verify decisions (one
round trip per request; see :mod:`flask_smscode.stores.redis`), or in the app's
Flask-Limiter when ``SMSCODE_RATELIMIT_BACKEND = "flask-limiter"``.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask_smscode.config import Limit, Settings, get_setting
from flask_smscode.errors import ConfigurationError


@functools.lru_cache(maxsize=4096)  # every request parses its client's address: most repeat
def client_key(address: str | None) -> str:
    """The identity an IP limit counts: the address itself, or its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64, so counting single addresses would
    let one client rotate through 2**64 of them.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


BACKENDS = ("store", "flask-limiter")


@dataclass(frozen=True)
class RateLimitSettings:
    """The per-IP limits of one app: who counts them (``SMSCODE_RATELIMIT_BACKEND``) and the
    limits of each endpoint, parsed (for the store) and as written (for Flask-Limiter)."""

    backend: str
    send: tuple[Limit, ...]
    verify: tuple[Limit, ...]
    send_text: str
    verify_text: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any], settings: Settings) -> RateLimitSettings:
        backend = get_setting(config, "SMSCODE_RATELIMIT_BACKEND")
        if backend not in BACKENDS:
            raise ConfigurationError(
                f"SMSCODE_RATELIMIT_BACKEND must be one of "
                f"{', '.join(map(repr, BACKENDS))}; got {backend!r}."
            )
        if backend == "flask-limiter":  # checked at start-up, not on the first request
            try:
                import flask_limiter  # noqa: F401
            except ImportError:
                raise ConfigurationError(
                    "SMSCODE_RATELIMIT_BACKEND = 'flask-limiter' needs "
                    "Flask-Limiter installed (pip install flask-limiter)."
                ) from None

        return cls(
            backend=str(backend),
            send=tuple(Limit.from_item(i) for i in settings.ip_send_limits),
            verify=tuple(Limit.from_item(i) for i in settings.ip_verify_limits),
            # As written: Flask-Limiter parses (and labels) them itself.
            send_text=str(get_setting(config, "SMSCODE_IP_SEND_LIMITS") or ""),
            verify_text=str(get_setting(config, "SMSCODE_IP_VERIFY_LIMITS") or ""),
        )

    def limits(self, endpoint: str) -> tuple[Limit, ...]:
        return self.send if endpoint == "send" else self.verify
