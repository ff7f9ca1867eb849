"""Stores by URI scheme, the way `limits` files each storage class under its schemes.

``SMSCODE_STORAGE_URI``'s scheme picks the class. Schemes come from the
``flask_smscode.stores`` entry-point group — this package declares its own there
(``memory``, ``redis``, ``rediss``, ``redis+unix``, ``redis+cluster``, ``redis+sentinel`` and
their TLS forms, see ``pyproject.toml``) — or from :func:`register_store` at run time, so a
separate package can add a store without touching this one. A store class builds itself with
``from_uri(uri, key_prefix=..., timeout=..., **options)``; its module is imported only when
its scheme is used (redis-py loads with the first ``redis://`` app).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask_smscode.errors import ConfigurationError
from flask_smscode.stores.base import Store

ENTRY_POINT_GROUP = "flask_smscode.stores"

_registered: dict[str, Any] = {}
_discovered: dict[str, Any] | None = None


class StoreClass(Protocol):
    """What a registered store class offers: one constructor from the URI."""

    @classmethod
    def from_uri(cls, uri: str, *, key_prefix: str, timeout: float, **options: Any) -> Store: ...


def register_store(scheme: str, cls: StoreClass) -> None:
    """Register ``cls`` for URIs of ``scheme`` (overrides an entry point of the same name)."""
    _registered[scheme.lower()] = cls


def _entry_points() -> dict[str, Any]:
    global _discovered
    if _discovered is None:
        _discovered = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _discovered


def store_schemes() -> tuple[str, ...]:
    """Every registered scheme, sorted."""
    return tuple(sorted({*_entry_points(), *_registered}))


def store_class(scheme: str) -> StoreClass:
    """The class registered for ``scheme``; refused naming SMSCODE_STORAGE_URI."""
    scheme = scheme.lower()
    if scheme in _registered:
        cls: StoreClass = _registered[scheme]
        return cls
    point = _entry_points().get(scheme)
    if point is None:
        raise ConfigurationError(
            f"SMSCODE_STORAGE_URI: unsupported scheme {scheme!r}; use one of "
            + ", ".join(f"{s}://" for s in store_schemes())
            + "."
        )
    cls = point.load()
    _registered[scheme] = cls
    return cls


def store_from_uri(
    uri: str, *, key_prefix: str = "smscode", timeout: float = 1.0, **options: Any
) -> Store:
    """Build the store for ``SMSCODE_STORAGE_URI``."""
    cls = store_class(urlsplit(uri).scheme)
    return cls.from_uri(uri, key_prefix=key_prefix, timeout=timeout, **options)
