"""The ``SMSCODE_TENCENT_*`` settings, validated once into :class:`TencentSettings`.

Every rule about a key (where credentials come from, which protocols, which timeouts, what a
template setting may be) is written here; errors name the key to fix, as every start-up
error does. The plain-HTTP rule is every vendor's (``http`` only for a loopback endpoint,
where nothing can be overheard): :func:`flask_smscode.senders.network.is_loopback`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_smscode.config import get_setting, regions_from_config
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.network import is_loopback

MAX_TIMEOUT_SECONDS = 60.0
MAX_CONNECT_TIMEOUT_SECONDS = 3.0  # a connection takes milliseconds; waiting longer only hangs

Templates = str | Mapping[str, str] | None


@dataclass(frozen=True)
class TencentSettings:
    """Validated Tencent Cloud SMS settings; build with :meth:`from_config`. The SecretKey is
    kept out of ``repr`` (and the SecretId too: it names the account)."""

    secret_id: str = field(repr=False)
    secret_key: str = field(repr=False)
    sdk_app_id: str | None = None
    sign_name: str | None = None
    template_id: Templates = None  # one id, or purpose -> id
    intl_template_id: Templates = None  # for numbers outside the mainland
    template_minutes: bool = False  # {2} = the code's lifetime in minutes
    code_minutes: int = 5
    region: str = "ap-guangzhou"
    endpoint: str = "sms.tencentcloudapi.com"
    protocol: str = "https"
    timeout: float = 5.0
    connect_timeout: float = 3.0
    allowed_regions: tuple[str, ...] | None = ("CN",)  # None: every region

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TencentSettings:
        """The ``SMSCODE_TENCENT_*`` keys of a Flask config; the credentials fall back to
        the environment variables of Tencent's own tools (``TENCENTCLOUD_SECRET_ID`` /
        ``TENCENTCLOUD_SECRET_KEY``)."""

        def get(key: str) -> Any:
            return get_setting(config, key)

        secret_id = get("SMSCODE_TENCENT_SECRET_ID") or os.environ.get("TENCENTCLOUD_SECRET_ID")
        secret_key = get("SMSCODE_TENCENT_SECRET_KEY") or os.environ.get("TENCENTCLOUD_SECRET_KEY")
        if not secret_id or not isinstance(secret_id, str):
            raise ConfigurationError(
                "SMSCODE_TENCENT_SECRET_ID (or the environment variable "
                "TENCENTCLOUD_SECRET_ID) is not set."
            )
        if secret_id.strip() != secret_id:
            raise ConfigurationError("SMSCODE_TENCENT_SECRET_ID must not contain spaces.")
        if not secret_key or not isinstance(secret_key, str):
            raise ConfigurationError(
                "SMSCODE_TENCENT_SECRET_KEY (or the environment variable "
                "TENCENTCLOUD_SECRET_KEY) is not set."
            )
        app_id = get("SMSCODE_TENCENT_SDK_APP_ID")
        if app_id is not None and not str(app_id).isdigit():
            raise ConfigurationError(
                "SMSCODE_TENCENT_SDK_APP_ID must be the SdkAppId (digits, e.g. 1400006666)."
            )
        protocol = str(get("SMSCODE_TENCENT_PROTOCOL")).lower()
        if protocol not in ("https", "http"):
            raise ConfigurationError("SMSCODE_TENCENT_PROTOCOL must be 'https' or 'http'.")
        endpoint = str(get("SMSCODE_TENCENT_ENDPOINT"))
        if protocol == "http" and not is_loopback(endpoint):
            raise ConfigurationError(
                "SMSCODE_TENCENT_PROTOCOL 'http' is only allowed for a loopback "
                "SMSCODE_TENCENT_ENDPOINT: plain HTTP puts the phone numbers and the code on "
                "the wire in clear."
            )
        timeout = get("SMSCODE_TENCENT_TIMEOUT_SECONDS")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            raise ConfigurationError("SMSCODE_TENCENT_TIMEOUT_SECONDS must be in (0, 60].")
        minutes = get("SMSCODE_TENCENT_TEMPLATE_MINUTES")
        if not isinstance(minutes, bool):
            raise ConfigurationError("SMSCODE_TENCENT_TEMPLATE_MINUTES must be True or False.")
        ttl = get("SMSCODE_CODE_TTL_SECONDS")
        code_minutes = max(1, math.ceil(ttl / 60)) if isinstance(ttl, (int, float)) else 5
        _, regions = regions_from_config(config)
        return cls(
            secret_id=secret_id,
            secret_key=secret_key,
            sdk_app_id=str(app_id) if app_id is not None else None,
            sign_name=get("SMSCODE_TENCENT_SIGN_NAME") or None,
            template_id=_templates(
                get("SMSCODE_TENCENT_TEMPLATE_ID"), "SMSCODE_TENCENT_TEMPLATE_ID"
            ),
            intl_template_id=_templates(
                get("SMSCODE_TENCENT_INTL_TEMPLATE_ID"), "SMSCODE_TENCENT_INTL_TEMPLATE_ID"
            ),
            template_minutes=minutes,
            code_minutes=int(code_minutes),
            region=str(get("SMSCODE_TENCENT_REGION")),
            endpoint=endpoint,
            protocol=protocol,
            timeout=float(timeout),
            connect_timeout=min(float(timeout), MAX_CONNECT_TIMEOUT_SECONDS),
            allowed_regions=regions,
        )

    @property
    def allows_international(self) -> bool:
        """Whether ``SMSCODE_ALLOWED_REGIONS`` admits numbers outside the mainland (Tencent,
        like Alibaba, counts Hong Kong, Macao and Taiwan as international)."""
        return self.allowed_regions is None or any(r != "CN" for r in self.allowed_regions)

    def sender_templates(
        self, purposes: Sequence[str]
    ) -> tuple[dict[str, str], str | None, dict[str, str], str | None]:
        """What the code sender needs beyond the client, checked: SdkAppId, signature, a
        template for every purpose, and an international one when the allowed regions reach
        beyond the mainland. Returns (purpose -> id, the one id for all, and the same two
        for international numbers)."""
        if not self.sdk_app_id:
            raise ConfigurationError(
                "SMSCODE_TENCENT_SDK_APP_ID must be set for the tencent sender "
                "(短信 > 应用管理 > 应用列表: SDKAppID)."
            )
        if not self.sign_name:
            raise ConfigurationError(
                "SMSCODE_TENCENT_SIGN_NAME must be set for the tencent sender "
                "(the 签名 approved in the SMS console)."
            )
        if not self.template_id:
            raise ConfigurationError(
                "SMSCODE_TENCENT_TEMPLATE_ID must be set for the tencent sender "
                "(one template id, or a dict purpose -> id)."
            )
        domestic = _per_purpose(self.template_id, purposes, "SMSCODE_TENCENT_TEMPLATE_ID")
        if not self.intl_template_id:
            if self.allows_international:
                raise ConfigurationError(
                    "SMSCODE_TENCENT_INTL_TEMPLATE_ID must be set: SMSCODE_ALLOWED_REGIONS "
                    "admits numbers outside the mainland, which Tencent only sends with an "
                    "international (国际/港澳台) template."
                )
            return (*domestic, {}, None)
        intl = _per_purpose(self.intl_template_id, purposes, "SMSCODE_TENCENT_INTL_TEMPLATE_ID")
        return (*domestic, *intl)


def _templates(value: Any, key: str) -> Templates:
    """One template id (digits, as str or int) or a dict purpose -> id; ``None`` when unset."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        ids = {str(k): str(v) for k, v in value.items()}
        if not ids or not all(v.isdigit() for v in ids.values()):
            raise ConfigurationError(f"{key} must map each purpose to a template id (digits).")
        return ids
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).isdigit():
        raise ConfigurationError(
            f"{key} must be a template id (digits, e.g. 1110) or a dict purpose -> id."
        )
    return str(value)


def _per_purpose(
    templates: str | Mapping[str, str], purposes: Sequence[str], key: str
) -> tuple[dict[str, str], str | None]:
    if isinstance(templates, Mapping):
        missing = [p for p in purposes if not templates.get(p)]
        if missing:
            raise ConfigurationError(f"{key} has no template for purpose(s): " + ", ".join(missing))
        return dict(templates), None
    return {}, str(templates)
