"""One reading of an app's settings: every typed section, built once at ``init_app``.

Each section validates its own ``SMSCODE_*`` keys and fails naming the key; the service and
everything it builds take sections, not the raw config. A sender reads its own vendor's
keys (``SMSCODE_ALIYUN_*``...) from the config view the sender registry hands it, once, when
it is built at start-up. Nothing reads ``app.config["SMSCODE_…"]`` after that.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask_smscode.config import ReplySettings, ReportSettings, Settings
from flask_smscode.core.guard import GuardSettings
from flask_smscode.core.origins import OriginSettings
from flask_smscode.core.ratelimit import RateLimitSettings
from flask_smscode.errors import ConfigurationError
from flask_smscode.messages import Catalogue, CatalogueError
from flask_smscode.senders.reports import report_channels

MAX_IDEMPOTENCY_WAIT_SECONDS = 60


@dataclass(frozen=True)
class AppSettings:
    """The validated sections of one app's settings."""

    core: Settings
    guard: GuardSettings
    reports: ReportSettings
    # Every delivery-report channel's receiver settings, by channel name (senders/reports.py);
    # validated here, at start-up, whichever sender the app uses.
    channels: Mapping[str, ReportSettings]
    ratelimit: RateLimitSettings
    messages: Catalogue
    idempotency_wait: float | None  # None: twice the senders' longest send
    config: Mapping[str, Any]  # what the sender registry builds the senders from
    # Cross-origin protection and the CORS answer of trusted origins (web/origins.py).
    origins: OriginSettings = field(default_factory=OriginSettings)
    # Replies and the suppression list (core/replies.py, web/replies.py).
    replies: ReplySettings = field(default_factory=ReplySettings)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AppSettings:
        core = Settings.from_config(config)
        for channel in report_channels().values():
            if channel.validate is not None:
                channel.validate(config)
        return cls(
            core=core,
            guard=GuardSettings.from_config(config),
            reports=ReportSettings.from_config(config),
            channels={
                name: ReportSettings.from_config(config, channel.setting_prefix)
                for name, channel in report_channels().items()
            },
            ratelimit=RateLimitSettings.from_config(config, core),
            messages=catalogue_from_config(config),
            idempotency_wait=_idempotency_wait(config),
            config=config,
            origins=OriginSettings.from_config(config),
            replies=ReplySettings.from_config(config),
        )


def catalogue_from_config(config: Mapping[str, Any]) -> Catalogue:
    """The app's message catalogue: built-in texts, ``SMSCODE_LOCALES_DIR``,
    ``SMSCODE_MESSAGES`` and ``SMSCODE_DEFAULT_LANGUAGE``."""
    try:
        return Catalogue.build(
            directory=config.get("SMSCODE_LOCALES_DIR"),
            extra=config.get("SMSCODE_MESSAGES"),
            default_language=config.get("SMSCODE_DEFAULT_LANGUAGE"),
        )
    except CatalogueError as exc:
        raise ConfigurationError(str(exc)) from None


def _idempotency_wait(config: Mapping[str, Any]) -> float | None:
    wait = config.get("SMSCODE_IDEMPOTENCY_WAIT_SECONDS")
    if wait is None:
        return None
    if (
        isinstance(wait, bool)
        or not isinstance(wait, (int, float))
        or not 0 <= wait <= MAX_IDEMPOTENCY_WAIT_SECONDS
    ):
        raise ConfigurationError(
            "SMSCODE_IDEMPOTENCY_WAIT_SECONDS must be a number of seconds "
            f"from 0 to {MAX_IDEMPOTENCY_WAIT_SECONDS}; got {wait!r}."
        )
    return float(wait)


def idempotency_times(
    wait: float | None, send_seconds: float, storage_timeout: float
) -> tuple[float, int]:
    """How long a duplicate waits for its key's first answer (default: twice the senders'
    longest send), and how long that first request's claim holds (ms): longer than the
    provider call and the store calls around it, so a duplicate never sends while it runs."""
    if wait is None:
        wait = 2 * send_seconds
    claim = max(wait, 2 * send_seconds) + 2 * storage_timeout
    return float(wait), int(claim * 1000)
