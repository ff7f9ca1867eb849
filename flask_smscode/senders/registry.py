"""Senders by name: ``SMSCODE_SENDER`` as an ordered list, and the registry of sender kinds.

**The registry.** A sender kind (``"console"``, ``"aliyun"``, ``"tencent"`` ...) is a name
registered for a sender class, the way `limits` files each storage class under its URI
schemes. Kinds come from the ``flask_smscode.senders`` entry-point group — this package
declares its own built-in kinds there (see ``pyproject.toml``), and a separate package adds
one the same way — or from :func:`register_sender` at run time. Generic code names no vendor:
it asks the registry. A registered class builds itself through ``create(config, purposes=,
show_code=)`` when it has one (:class:`~flask_smscode.senders.base.SupportsCreate`), and may
offer ``check(config)`` for ``flask smscode doctor``
(:class:`~flask_smscode.senders.base.SupportsCheck`).

**The list.** ``SMSCODE_SENDER`` is one sender (a registered kind, a dotted path, a class or
an instance), or several in order: a list/tuple, or a comma-separated string
(``"aliyun,backup"``, handy in an environment variable). A name that is no registered kind
and no dotted path is looked up in ``SMSCODE_SENDERS_CONFIG``::

    SMSCODE_SENDERS_CONFIG = {"backup": {
        "SMSCODE_SENDER": "aliyun",                 # the kind; "aliyun" when left out
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": "...",      # any SMSCODE_* key: overrides the
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": "...",  # app's value for this sender only
        "SMSCODE_ALIYUN_SIGN_NAME": "...",
        "SMSCODE_ALIYUN_ENDPOINT": "dysmsapi.ap-southeast-1.aliyuncs.com",
    }}

Each entry is laid over the app's config, so a backup account repeats only what differs.
Every mistake fails at start-up naming the key.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from flask_smscode.config import DEFAULT_NAMED_SENDER_KIND, SETTINGS, get_setting
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.base import Sender, SupportsCreate

ENTRY_POINT_GROUP = "flask_smscode.senders"
# A named sender becomes a metric label and a log field: short, and never a dotted path.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
# Keys an entry may not set: they describe the list, not one sender of it.
_NOT_PER_SENDER = ("SMSCODE_SENDERS_CONFIG",)

_registered: dict[str, Any] = {}  # kind -> class, from register_sender()
_discovered: dict[str, Any] | None = None  # kind -> entry point, read once


def register_sender(kind: str, cls: Any) -> None:
    """Register ``cls`` under ``kind`` (overrides an entry point of the same name)."""
    if not _NAME.fullmatch(kind):
        raise ValueError(f"a sender kind is 1-32 letters, digits, '_' or '-'; got {kind!r}")
    _registered[kind] = cls


def _entry_points() -> dict[str, Any]:
    global _discovered
    if _discovered is None:
        _discovered = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _discovered


def sender_kinds() -> tuple[str, ...]:
    """Every registered kind, sorted (for messages and ``doctor``)."""
    return tuple(sorted({*_entry_points(), *_registered}))


def is_kind(name: str) -> bool:
    return name in _registered or name in _entry_points()


def sender_class(kind: str) -> Any:
    """The class registered for ``kind`` (imported on first use: a vendor's SDK loads only
    when the app uses that vendor)."""
    if kind in _registered:
        return _registered[kind]
    point = _entry_points().get(kind)
    if point is None:
        raise ConfigurationError(
            f"SMSCODE_SENDER: {kind!r} is not a registered sender ({', '.join(sender_kinds())})."
        )
    try:
        cls = point.load()
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"SMSCODE_SENDER: the sender {kind!r} cannot be loaded ({type(exc).__name__}: "
            "is its package installed?)."
        ) from None
    _registered[kind] = cls
    return cls


@dataclass(frozen=True)
class SenderSpec:
    """One sender of the list: its name (logs, metrics, status), what to build (a kind,
    dotted path, class or instance) and the config it is built from."""

    name: str
    kind: Any
    config: Mapping[str, Any]
    named: bool = False  # defined in SMSCODE_SENDERS_CONFIG

    def sender_class(self) -> Any:
        """The class this sender is built from (``None`` for an instance given directly)."""
        if isinstance(self.kind, type):
            return self.kind
        if not isinstance(self.kind, str):
            return None
        if is_kind(self.kind):
            return sender_class(self.kind)
        return _import_dotted(self.kind)


def sender_specs(config: Mapping[str, Any]) -> list[SenderSpec]:
    """The senders ``SMSCODE_SENDER`` names, in order, each with its own config view."""
    value = get_setting(config, "SMSCODE_SENDER")
    entries = _entries(config)
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]  # a class or an instance, as before
    if not items or any(item is None or item == "" for item in items):
        raise ConfigurationError(
            f"SMSCODE_SENDER must name at least one sender, with no empty entries; got {value!r}."
        )
    specs = []
    for item in items:
        if isinstance(item, str) and item in entries:
            entry = entries[item]
            # The entry's keys over the app's: a backup repeats only what differs.
            view: Mapping[str, Any] = ChainMap(
                {k: v for k, v in entry.items() if k != "SMSCODE_SENDER"}, dict(config)
            )
            kind = entry.get("SMSCODE_SENDER") or DEFAULT_NAMED_SENDER_KIND
            specs.append(SenderSpec(item, kind, view, named=True))
        elif isinstance(item, str):
            if not is_kind(item) and "." not in item:
                raise ConfigurationError(
                    f"SMSCODE_SENDER: {item!r} is not a registered sender "
                    f"({', '.join(map(repr, sender_kinds()))}), a dotted path to a sender "
                    "class, or a name defined in SMSCODE_SENDERS_CONFIG."
                )
            specs.append(SenderSpec(item, item, config))
        else:
            label = getattr(item, "name", None)
            if not isinstance(label, str) or not _NAME.fullmatch(label):
                label = item.__name__ if isinstance(item, type) else type(item).__name__
            specs.append(SenderSpec(label, item, config))
    names = [spec.name for spec in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(
            f"SMSCODE_SENDER names {', '.join(map(repr, twice))} more "
            "than once; a second account needs its own name in "
            "SMSCODE_SENDERS_CONFIG."
        )
    return specs


def _entries(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``SMSCODE_SENDERS_CONFIG``, checked: names, keys and kinds."""
    raw = get_setting(config, "SMSCODE_SENDERS_CONFIG")
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            "SMSCODE_SENDERS_CONFIG must be a dict of sender name -> dict of SMSCODE_* overrides."
        )
    entries: dict[str, Mapping[str, Any]] = {}
    for name, entry in raw.items():
        where = f"SMSCODE_SENDERS_CONFIG[{name!r}]"
        if not isinstance(name, str) or not _NAME.fullmatch(name) or is_kind(name):
            raise ConfigurationError(
                f"{where}: a sender name is 1-32 letters, digits, '_' "
                "or '-', starting with a letter, and not a registered sender kind "
                f"({', '.join(map(repr, sender_kinds()))})."
            )
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{where} must be a dict of SMSCODE_* keys.")
        for key in entry:
            if key not in SETTINGS or key in _NOT_PER_SENDER:
                raise ConfigurationError(
                    f"{where}: {key!r} is not a SMSCODE_* setting a sender can override."
                )
        kind = entry.get("SMSCODE_SENDER")
        if kind is not None and not (
            isinstance(kind, type) or (isinstance(kind, str) and (is_kind(kind) or "." in kind))
        ):
            raise ConfigurationError(
                f"{where}['SMSCODE_SENDER'] must be a registered sender "
                f"({', '.join(map(repr, sender_kinds()))}), a dotted path or a class "
                "(one sender)."
            )
        entries[name] = entry
    return entries


def build_sender(
    config: Mapping[str, Any], *, show_code: bool, purposes: Sequence[str]
) -> tuple[Sender, tuple[str, ...]]:
    """``SMSCODE_SENDER`` as a ready sender and the names of its senders, in order (log,
    metric and status labels); fails at start-up naming the key.

    Several names give a :class:`~flask_smscode.senders.chain.FailoverSender` that moves
    on only after a definite failure of the provider.
    """
    from flask_smscode.senders.chain import FailoverSender

    specs = sender_specs(config)
    built: list[tuple[str, Sender]] = []
    for spec in specs:
        failure: ConfigurationError | None = None
        try:
            built.append((spec.name, _build_one(spec, show_code=show_code, purposes=purposes)))
        except ConfigurationError as exc:
            if not spec.named:
                raise
            # "SMSCODE_ALIYUN_SIGN_NAME must be set" names the key, this says whose.
            failure = ConfigurationError(f"SMSCODE_SENDERS_CONFIG[{spec.name!r}]: {exc}")
        if failure is not None:
            raise failure
    names = tuple(spec.name for spec in specs)
    return (built[0][1] if len(built) == 1 else FailoverSender(built)), names


def _build_one(spec: SenderSpec, *, show_code: bool, purposes: Sequence[str]) -> Sender:
    """One sender: a registered kind, a dotted path, a class or an instance."""
    cls = spec.sender_class()
    if cls is None:  # an instance given directly
        sender = spec.kind
    elif isinstance(cls, SupportsCreate):
        sender = cls.create(spec.config, purposes=tuple(purposes), show_code=show_code)
    else:
        sender = cls(spec.config)
    if not callable(getattr(sender, "send", None)):
        raise ConfigurationError(f"SMSCODE_SENDER: {spec.name!r} has no send() method.")
    checked: Sender = sender  # a user's object, checked for the one method just above
    return checked


def _import_dotted(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(
            f"SMSCODE_SENDER: {path!r} is not a registered sender or a dotted path to a "
            "sender class."
        )
    try:
        return getattr(import_module(module_name), attr)
    except (ImportError, AttributeError):
        raise ConfigurationError(f"SMSCODE_SENDER: cannot import {path!r}.") from None
