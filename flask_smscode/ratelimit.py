"""Who a per-IP limit counts: the client's address, or its /64 for IPv6.

The counting itself happens in the store, folded into the send and verify decisions (one
round trip per request; see :mod:`flask_smscode.stores.redis`), or in the app's
Flask-Limiter when ``SMSCODE_RATELIMIT_BACKEND = "flask-limiter"``.
"""

from __future__ import annotations

import functools
import ipaddress


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
