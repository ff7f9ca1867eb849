"""Network rules every vendor's transport shares (vendor-blind).

``is_loopback`` decides where plain HTTP is allowed (``SMSCODE_ALIYUN_PROTOCOL``,
``SMSCODE_TENCENT_PROTOCOL``...): only to this machine, where nothing on the wire can be
overheard — the loopback test servers. One rule, so no vendor can drift from it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(endpoint: str) -> bool:
    """Whether ``host[:port]`` names this machine (where plain HTTP cannot be overheard)."""
    host = urlsplit(f"//{endpoint}").hostname or ""
    return host in LOOPBACK_HOSTS or host.startswith("127.")
