"""``flask smscode doctor``: check the configured senders and store before the first user does.

The provider checks are each sender's own: a registered sender class may offer
``check(config)`` (Alibaba Cloud's are in :mod:`flask_smscode.aliyun.checks`), so this
module names no vendor. With failover (``SMSCODE_SENDER`` naming several senders) they run
once per sender with that sender's own effective settings (its ``SMSCODE_SENDERS_CONFIG``
entry over the app's), each line labelled with the sender's name: the backup account is
the one nobody looks at until the day it is needed. A sender without ``check`` (a dotted
path) gets a SKIP line saying so. Last, the store: reachable; a cluster behind a plain
``redis://`` URI is the store's own start-up refusal, reported here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from flask_smscode.config import Settings, get_setting
from flask_smscode.errors import ConfigurationError, StorageUnavailable
from flask_smscode.extension import EXTENSION_KEY, get_service
from flask_smscode.senders.base import FAIL, OK, SKIP, WARN, Check, SupportsCheck
from flask_smscode.senders.registry import SenderSpec, sender_specs
from flask_smscode.stores import store_from_uri


def mask_uri(uri: str) -> str:
    """A storage URI without its user name and password."""
    parts = urlsplit(uri)
    host = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{host}{parts.path}"


def run_checks(app: Flask) -> list[Check]:
    """Every check against ``app``'s configuration, in order."""
    checks: list[Check] = []
    try:
        specs = sender_specs(app.config)
    except ConfigurationError as exc:
        checks.append(Check("provider", FAIL, "cli.doctor.config", {"reason": str(exc)}))
    else:
        # One plain "aliyun" keeps its unlabelled lines; otherwise say whose line it is.
        labelled = len(specs) > 1 or any(spec.named for spec in specs)
        for spec in specs:
            checks += [
                replace(check, sender=spec.name if labelled else "")
                for check in _sender_checks(spec)
            ]
    checks.append(_store_check(app))
    return checks


def _sender_checks(spec: SenderSpec) -> list[Check]:
    """The provider checks of one sender of ``SMSCODE_SENDER``, from its own config view:
    the sender class's ``check(config)`` when it offers one (the registry's contract)."""
    try:
        cls = spec.sender_class()
    except ConfigurationError as exc:
        return [Check("provider", FAIL, "cli.doctor.config", {"reason": str(exc)})]
    if isinstance(cls, SupportsCheck):
        return cls.check(spec.config)
    kind = (
        spec.kind
        if isinstance(spec.kind, str)
        else getattr(spec.kind, "__qualname__", type(spec.kind).__qualname__)
    )
    return [Check("provider", SKIP, "cli.doctor.provider.custom", {"kind": kind})]


# -- the store ----------------------------------------------------------------------------------
def _store_check(app: Flask) -> Check:
    """The app's own store when the service is set up; else one built from the settings
    alone, so that a sender misconfiguration does not hide the store's state."""
    uri = str(get_setting(app.config, "SMSCODE_STORAGE_URI"))
    params: dict[str, Any] = {"uri": mask_uri(uri)}
    built = None
    try:
        if EXTENSION_KEY in app.extensions:
            store = get_service(app).store
        else:
            settings = Settings.from_config(app.config)
            store = built = store_from_uri(
                settings.storage_uri,
                key_prefix=settings.key_prefix,
                timeout=settings.storage_timeout,
                **settings.storage_options,
            )
    except ConfigurationError as exc:
        return Check(
            "store",
            FAIL,
            "cli.doctor.store.config",
            {**params, "reason": str(exc)},
            "cli.doctor.fix.store_config",
        )
    try:
        store.ping()
    except StorageUnavailable:
        return Check("store", FAIL, "cli.doctor.store.down", params, "cli.doctor.fix.store_down")
    finally:
        if built is not None:
            built.close()
    params["kind"] = getattr(store, "kind", "memory")
    if uri.startswith("memory"):
        return Check(
            "store", WARN, "cli.doctor.store.memory", params, "cli.doctor.fix.store_memory"
        )
    return Check("store", OK, "cli.doctor.store.ok", params)
