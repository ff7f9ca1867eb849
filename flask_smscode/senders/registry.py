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

from flask_smscode.config import (
    DEFAULT_NAMED_SENDER_KIND,
    SETTINGS,
    get_setting,
    regions_from_config,
)
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.base import Sender, SupportsCreate

ENTRY_POINT_GROUP = "flask_smscode.senders"
# A named sender becomes a metric label and a log field: short, and never a dotted path.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
# Keys an entry may not set: they describe the list, not one sender of it.
_NOT_PER_SENDER = ("SMSCODE_SENDERS_CONFIG", "SMSCODE_SENDER_ROUTES")

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


def sender_specs(
    config: Mapping[str, Any], value: Any = None, *, key: str = "SMSCODE_SENDER"
) -> list[SenderSpec]:
    """The senders ``SMSCODE_SENDER`` names (or ``value``, one route of
    ``SMSCODE_SENDER_ROUTES`` named ``key`` in errors), in order, each with its own config
    view."""
    if value is None:
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
            f"{key} must name at least one sender, with no empty entries; got {value!r}."
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
                    f"{key}: {item!r} is not a registered sender "
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
            f"{key} names {', '.join(map(repr, twice))} more "
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


def route_specs(config: Mapping[str, Any]) -> dict[str, list[SenderSpec]] | None:
    """``SMSCODE_SENDER_ROUTES`` checked, as calling code (or ``"*"``) -> senders in order;
    ``None`` when routing is off. The rules are in :mod:`flask_smscode.senders.routes`:
    ``SMSCODE_SENDER`` (when set) is the ``"*"`` route unless ``"*"`` is given, and every
    allowed region must have a route."""
    from flask_smscode.senders.routes import FALLBACK, is_calling_code, region_calling_code

    key = "SMSCODE_SENDER_ROUTES"
    raw = get_setting(config, key)
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigurationError(
            f"{key} must be a non-empty dict of country calling code (digits, like '86') or "
            "'*' -> sender name or list of names; or None to send everything through "
            "SMSCODE_SENDER."
        )
    routes: dict[str, list[SenderSpec]] = {}
    for code, value in raw.items():
        if not isinstance(code, str) or not (code == FALLBACK or is_calling_code(code)):
            raise ConfigurationError(
                f"{key}: {code!r} is not a country calling code as digits without '+' "
                "(like '86', '852', '1') or '*' for every other number."
            )
        where = f"{key}[{code!r}]"
        if value is None or (isinstance(value, (list, tuple, str)) and not value):
            raise ConfigurationError(f"{where} must name at least one sender; got {value!r}.")
        routes[code] = sender_specs(config, value, key=where)
    _, allowed = regions_from_config(config)
    if FALLBACK not in routes:
        if config.get("SMSCODE_SENDER") is not None:
            routes[FALLBACK] = sender_specs(config)  # SMSCODE_SENDER is the rest's route
        else:
            missing = (
                ["every region (SMSCODE_ALLOWED_REGIONS = ['*'])"]
                if allowed is None
                else [r for r in allowed if region_calling_code(r) not in routes]
            )
            if missing:
                raise ConfigurationError(
                    f"{key} has no route for {', '.join(missing)}: add a '*' route, or set "
                    "SMSCODE_SENDER, which is the route of every number without one."
                )
    seen: dict[str, SenderSpec] = {}
    for specs in routes.values():
        for spec in specs:
            first = seen.setdefault(spec.name, spec)
            if first.kind is not spec.kind and first.kind != spec.kind:
                raise ConfigurationError(
                    f"{key}: the name {spec.name!r} stands for two different senders; give "
                    "each its own name in SMSCODE_SENDERS_CONFIG."
                )
    return routes


def _distinct(routes: Mapping[str, list[SenderSpec]]) -> list[SenderSpec]:
    """Every sender of the routes once, the ``"*"`` route's first (they carry most sends in
    most apps, and the first name is what status shows when the store recorded none)."""
    specs: list[SenderSpec] = []
    for code in sorted(routes, key=lambda code: code != "*"):
        specs.extend(spec for spec in routes[code] if spec.name not in {s.name for s in specs})
    return specs


def configured_specs(config: Mapping[str, Any]) -> list[SenderSpec]:
    """Every sender the app sends through, each once: the routes' when
    ``SMSCODE_SENDER_ROUTES`` is set, else ``SMSCODE_SENDER``'s (``flask smscode doctor``
    checks each of them)."""
    routes = route_specs(config)
    return _distinct(routes) if routes is not None else sender_specs(config)


def build_sender(
    config: Mapping[str, Any], *, show_code: bool, purposes: Sequence[str]
) -> tuple[Sender, tuple[str, ...]]:
    """``SMSCODE_SENDER`` (or ``SMSCODE_SENDER_ROUTES``) as a ready sender and the names of
    its senders, in order, each once (log, metric and status labels); fails at start-up
    naming the key.

    Several names give a :class:`~flask_smscode.senders.chain.FailoverSender` that moves
    on only after a definite failure of the provider; routes give a
    :class:`~flask_smscode.senders.routes.RoutingSender` whose senders are each built once,
    however many routes name them.
    """
    from flask_smscode.senders.chain import FailoverSender
    from flask_smscode.senders.routes import FALLBACK, RoutingSender

    routes = route_specs(config)
    specs = _distinct(routes) if routes is not None else sender_specs(config)
    built: dict[str, Sender] = {}
    for spec in specs:
        failure: ConfigurationError | None = None
        try:
            built[spec.name] = _build_one(spec, show_code=show_code, purposes=purposes)
        except ConfigurationError as exc:
            if not spec.named:
                raise
            # "SMSCODE_ALIYUN_SIGN_NAME must be set" names the key, this says whose.
            failure = ConfigurationError(f"SMSCODE_SENDERS_CONFIG[{spec.name!r}]: {exc}")
        if failure is not None:
            raise failure
    _check_reach(config, routes if routes is not None else {FALLBACK: specs})
    names = tuple(spec.name for spec in specs)
    if routes is not None:
        table = {
            code: [(spec.name, built[spec.name]) for spec in route]
            for code, route in routes.items()
        }
        return RoutingSender(table), names
    if len(names) == 1:
        return built[names[0]], names
    return FailoverSender([(name, built[name]) for name in names]), names


def _check_reach(config: Mapping[str, Any], routes: Mapping[str, list[SenderSpec]]) -> None:
    """A sender class that serves only some countries says so in ``calling_codes`` (PNVS:
    ``("86",)``); fail at start-up when a route can hand it a number it cannot send to.

    A route keyed by a calling code reaches that code only; the ``"*"`` route (or a plain
    ``SMSCODE_SENDER``) reaches every allowed region without a route of its own — all of
    them when ``SMSCODE_ALLOWED_REGIONS`` is ``["*"]``. So ``{"86": ["pnvs", "aliyun"],
    "*": ["aliyun"]}`` is fine with any regions, and ``SMSCODE_SENDER = "pnvs"`` needs
    ``SMSCODE_ALLOWED_REGIONS = ["CN"]``.
    """
    from flask_smscode.senders.routes import FALLBACK, region_calling_code

    _, allowed = regions_from_config(config)
    for code, specs in routes.items():
        if code != FALLBACK:
            reach: set[str] | None = {code}
        elif allowed is None:
            reach = None  # every calling code
        else:
            reach = {region_calling_code(r) for r in allowed} - set(routes)
        for spec in specs:
            serves = getattr(spec.sender_class(), "calling_codes", None)
            if not serves:
                continue
            if reach is None or reach - set(serves):
                extra = (
                    "every number"
                    if reach is None
                    else ", ".join("+" + c for c in sorted(reach - set(serves)))
                )
                key = (
                    "SMSCODE_SENDER_ROUTES"
                    if get_setting(config, "SMSCODE_SENDER_ROUTES") is not None
                    else "SMSCODE_SENDER"
                )
                raise ConfigurationError(
                    f"{key}: the sender {spec.name!r} sends only to "
                    f"{', '.join('+' + c for c in serves)} numbers, but its route reaches "
                    f"{extra} (SMSCODE_ALLOWED_REGIONS): give it a route of its own, e.g. "
                    f"SMSCODE_SENDER_ROUTES = {{{serves[0]!r}: [{spec.name!r}], '*': [...]}}, "
                    "or narrow SMSCODE_ALLOWED_REGIONS."
                )


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
