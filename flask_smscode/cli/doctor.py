"""``flask smscode doctor``: check the configured senders and store before the first user does.

The provider checks are each sender's own: a registered sender class may offer
``check(config)`` (Alibaba Cloud's are in :mod:`flask_smscode.aliyun.checks`), so this
module names no vendor. With failover (``SMSCODE_SENDER`` naming several senders) they run
once per sender with that sender's own effective settings (its ``SMSCODE_SENDERS_CONFIG``
entry over the app's), each line labelled with the sender's name: the backup account is
the one nobody looks at until the day it is needed. A sender without ``check`` (a dotted
path) gets a SKIP line saying so. Last, the store: reachable; a cluster behind a plain
``redis://`` URI is the store's own start-up refusal, reported here.

The ``doctor`` command at the bottom prints one line per check (or ``--json``).
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import click
from flask import Flask
from flask.cli import with_appcontext

from flask_smscode.cli.output import _t, flask_app, table
from flask_smscode.config import Settings, get_setting
from flask_smscode.errors import ConfigurationError, StorageUnavailable
from flask_smscode.extension import EXTENSION_KEY, get_service
from flask_smscode.senders.base import FAIL, OK, SKIP, WARN, Check, SupportsCheck
from flask_smscode.senders.registry import SenderSpec, configured_specs
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
        specs = configured_specs(app.config)  # SMSCODE_SENDER_ROUTES' senders too
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
    checks += _store_checks(app)
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
def _store_checks(app: Flask) -> list[Check]:
    """The store line, and for Redis the replicas line (built while the store is open)."""
    replicas: list[Check] = []
    return [_store_check(app, replicas), *replicas]


def _replicas_check(store: Any) -> Check | None:
    """Replicas the master has vs SMSCODE_STORAGE_MIN_REPLICAS (stores/redis.py): fewer
    than required means every send and verify answers 503; none required on a set that
    fails over means a failover may lose an acknowledged code. None for a store without
    replication (memory, third-party) and for a lone Redis without replicas."""
    replication = getattr(store, "replication", None)
    if replication is None:
        return None
    try:
        have, need = replication()
    except StorageUnavailable:
        return None  # the store line says it is down
    kind = getattr(store, "kind", "redis")
    if need is None:  # Cluster "auto": per slot, 1 where the master has a replica
        need = 1 if have else 0
    if kind == "redis" and not have and not need:
        return None  # a lone Redis: no replica to count, nothing to fail over to
    params = {"have": have, "need": need}
    if need > have:
        return Check(
            "replicas", FAIL, "cli.doctor.replicas.short", params, "cli.doctor.fix.replicas"
        )
    if need == 0 and kind != "redis":
        return Check(
            "replicas", WARN, "cli.doctor.replicas.unprotected", params, "cli.doctor.fix.replicas"
        )
    return Check("replicas", OK, "cli.doctor.replicas.ok", params)


def _store_check(app: Flask, extra: list[Check]) -> Check:
    """The app's own store when the service is set up; else one built from the settings
    alone, so that a sender misconfiguration does not hide the store's state. Checks that
    need the open store (replicas) go to ``extra``."""
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
                **settings.durability_options(),
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
        replicas = _replicas_check(store)
        if replicas is not None:
            extra.append(replicas)
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


# -- the command --------------------------------------------------------------------------------
_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


def _text(key: str | None, params: dict[str, Any]) -> str:
    """A catalogue sentence, or nothing for a check without one."""
    return _t(key, **params) if key else ""


def _label(check: Check) -> str:
    """The check's name, with the sender's in front when SMSCODE_SENDER names several."""
    name = _t(f"cli.doctor.check.{check.check}", subject=check.subject).strip()
    return _t("cli.doctor.label", sender=check.sender, label=name) if check.sender else name


def _rendered(check: Check) -> dict[str, Any]:
    """The check with its label, detail and fix in the CLI's language (``--json``'s item)."""
    return {
        **check.as_dict(),
        "label": _label(check),
        "detail": _text(check.key, check.params),
        "fix": _text(check.fix_key, {**check.params, **check.fix_params}),
    }


def _row(c: dict[str, Any]) -> tuple[str, str, str]:
    """One table row: mark and status, label, detail (and the fix, unless the check is ok)."""
    fix = "  " + _t("cli.doctor.fix", fix=c["fix"]) if c["fix"] and c["status"] != "ok" else ""
    return (
        f"{_MARKS[c['status']]} {_t('cli.doctor.status.' + c['status'])}",
        c["label"],
        c["detail"] + fix,
    )


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def doctor(as_json: bool) -> None:
    """Check the configured account before users do: endpoint, clock, AccessKey,
    signature, templates (international ones too) and store, one line each, for every
    Alibaba Cloud sender of SMSCODE_SENDER. Exits 1 when any check fails."""
    checks = run_checks(flask_app())
    failures = sum(c.status == FAIL for c in checks)
    warnings = sum(c.status == WARN for c in checks)
    rendered = [_rendered(c) for c in checks]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": failures == 0,
                    "failures": failures,
                    "warnings": warnings,
                    "checks": rendered,
                },
                ensure_ascii=False,
            )
        )
    else:
        for line in table([_row(c) for c in rendered]):
            click.echo(line)
        click.echo(
            _t("cli.doctor.summary.fail", failures=failures, warnings=warnings)
            if failures
            else _t("cli.doctor.summary.ok", warnings=warnings)
        )
    if failures:
        click.get_current_context().exit(1)
