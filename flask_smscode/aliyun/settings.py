"""The ``SMSCODE_ALIYUN_*`` settings, validated once into :class:`AliyunSettings`.

The transport, the code sender and the notifier are all built from this one value, so a
rule about a key (which protocols, which timeouts, where credentials come from) is written
here and nowhere else. Errors name the key to fix, as every start-up error does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_smscode.config import allowed_regions as parse_allowed_regions
from flask_smscode.config import get_setting, region_code, regions_from_config
from flask_smscode.errors import ConfigurationError
from flask_smscode.senders.network import is_loopback as is_loopback  # one rule, re-exported

MAX_TIMEOUT_SECONDS = 60.0
MAX_CONNECT_TIMEOUT_SECONDS = 3.0  # a connection takes milliseconds; waiting longer only hangs


@dataclass(frozen=True)
class AliyunSettings:
    """Validated Alibaba Cloud SMS settings; build with :meth:`from_config` or :meth:`build`."""

    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    sign_name: str | None = None
    region: str = "cn-hangzhou"
    endpoint: str = "dysmsapi.aliyuncs.com"
    protocol: str = "https"  # "https" or "http" (loopback only)
    timeout: float = 5.0  # seconds, read timeout of one call
    connect_timeout: float = 3.0  # seconds
    max_concurrency: int = 4  # SendSms calls in flight for one notification
    default_region: str = "CN"
    allowed_regions: tuple[str, ...] | None = ("CN",)  # None: every region
    template_code: str | Mapping[str, str] | None = None  # one code, or purpose -> code
    template_param: str = "code"
    # International (TemplateType 3) template(s) for numbers outside the mainland, HK/MO/TW
    # included: Alibaba refuses a domestic template for them and the reverse.
    intl_template_code: str | Mapping[str, str] | None = None

    @classmethod
    def build(
        cls,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        sign_name: str | None = None,
        *,
        region: str = "cn-hangzhou",
        endpoint: str = "dysmsapi.aliyuncs.com",
        protocol: str = "https",
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        max_concurrency: int = 4,
        default_region: str = "CN",
        allowed_regions: Iterable[str] | None = ("CN",),
        template_code: str | Mapping[str, str] | None = None,
        template_param: str = "code",
        intl_template_code: str | Mapping[str, str] | None = None,
    ) -> AliyunSettings:
        """Validate and normalise; the credentials fall back to the environment variables
        of Alibaba's own tools (``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET``)."""
        access_key_id = access_key_id or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
        access_key_secret = access_key_secret or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        if not access_key_id:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_ACCESS_KEY_ID (or the environment "
                "variable ALIBABA_CLOUD_ACCESS_KEY_ID) is not set."
            )
        if not access_key_secret:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_ACCESS_KEY_SECRET (or the environment "
                "variable ALIBABA_CLOUD_ACCESS_KEY_SECRET) is not set."
            )
        protocol = str(protocol).lower()
        if protocol not in ("https", "http"):
            raise ConfigurationError("SMSCODE_ALIYUN_PROTOCOL must be 'https' or 'http'.")
        endpoint = str(endpoint)
        if protocol == "http" and not is_loopback(endpoint):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_PROTOCOL 'http' is only allowed for a loopback "
                "SMSCODE_ALIYUN_ENDPOINT: plain HTTP puts the AccessKeyId and the code on "
                "the wire in clear."
            )
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            raise ConfigurationError("SMSCODE_ALIYUN_TIMEOUT_SECONDS must be in (0, 60].")
        if template_code is not None and not isinstance(template_code, (str, Mapping)):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_TEMPLATE_CODE must be a template code or a dict purpose -> code."
            )
        if intl_template_code is not None and not isinstance(intl_template_code, (str, Mapping)):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE must be a template "
                "code or a dict purpose -> code."
            )
        regions = None if allowed_regions is None else parse_allowed_regions(tuple(allowed_regions))
        return cls(
            access_key_id=str(access_key_id),
            access_key_secret=str(access_key_secret),
            sign_name=sign_name or None,
            region=str(region),
            endpoint=endpoint,
            protocol=protocol,
            timeout=float(timeout),
            connect_timeout=float(connect_timeout or min(timeout, MAX_CONNECT_TIMEOUT_SECONDS)),
            max_concurrency=max(1, int(max_concurrency)),
            default_region=region_code(default_region, "SMSCODE_DEFAULT_REGION"),
            allowed_regions=regions,
            template_code=(
                {str(k): str(v) for k, v in template_code.items()}
                if isinstance(template_code, Mapping)
                else template_code
            ),
            template_param=str(template_param),
            intl_template_code=(
                {str(k): str(v) for k, v in intl_template_code.items()}
                if isinstance(intl_template_code, Mapping)
                else intl_template_code or None
            ),
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> AliyunSettings:
        """The ``SMSCODE_ALIYUN_*`` keys (and the two region keys) of a Flask config."""

        def get(key: str) -> Any:
            return get_setting(config, key)

        default_region, regions = regions_from_config(config)
        values: dict[str, Any] = {
            "access_key_id": get("SMSCODE_ALIYUN_ACCESS_KEY_ID"),
            "access_key_secret": get("SMSCODE_ALIYUN_ACCESS_KEY_SECRET"),
            "sign_name": get("SMSCODE_ALIYUN_SIGN_NAME"),
            "region": get("SMSCODE_ALIYUN_REGION"),
            "endpoint": get("SMSCODE_ALIYUN_ENDPOINT"),
            "protocol": get("SMSCODE_ALIYUN_PROTOCOL"),
            "timeout": get("SMSCODE_ALIYUN_TIMEOUT_SECONDS"),
            "default_region": default_region,
            "allowed_regions": regions,
            "template_code": get("SMSCODE_ALIYUN_TEMPLATE_CODE"),
            "template_param": get("SMSCODE_ALIYUN_TEMPLATE_PARAM"),
            "intl_template_code": get("SMSCODE_ALIYUN_INTL_TEMPLATE_CODE"),
        }
        values.update(overrides)
        return cls.build(**values)

    def sender_templates(self, purposes: Sequence[str]) -> tuple[dict[str, str], str | None]:
        """What the code sender needs beyond the client: a signature, and a template for
        every purpose. Returns (purpose -> template, the one template for all or None)."""
        if not self.sign_name:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_SIGN_NAME must be set for the aliyun "
                "sender (the 签名 approved in the SMS console)."
            )
        templates = self.template_code
        if not templates:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_TEMPLATE_CODE must be set for the aliyun "
                "sender (one template code, or a dict purpose -> code)."
            )
        if isinstance(templates, Mapping):
            missing = [p for p in purposes if not templates.get(p)]
            if missing:
                raise ConfigurationError(
                    "SMSCODE_ALIYUN_TEMPLATE_CODE has no template for "
                    "purpose(s): " + ", ".join(missing)
                )
            return dict(templates), None
        return {}, str(templates)

    @property
    def allows_international(self) -> bool:
        """Whether ``SMSCODE_ALLOWED_REGIONS`` admits numbers outside the mainland (``*`` or
        any region but CN; Alibaba counts Hong Kong, Macao and Taiwan as international)."""
        return self.allowed_regions is None or any(r != "CN" for r in self.allowed_regions)

    def sender_intl_templates(
        self,
        purposes: Sequence[str],
    ) -> tuple[dict[str, str], str | None]:
        """The international template per purpose (or one for all), required when the
        allowed regions reach beyond the mainland; ``({}, None)`` when they do not."""
        templates = self.intl_template_code
        if not templates and not self.allows_international:
            return {}, None  # mainland only: codes never need an international template
        if not templates:
            raise ConfigurationError(
                "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE must be set for the aliyun sender when "
                "SMSCODE_ALLOWED_REGIONS admits numbers outside the mainland: Alibaba Cloud "
                "sends to them (Hong Kong, Macao and Taiwan included) only with an "
                "international template (one code, or a dict purpose -> code)."
            )
        if isinstance(templates, Mapping):
            missing = [p for p in purposes if not templates.get(p)]
            if missing:
                raise ConfigurationError(
                    "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE has no template "
                    "for purpose(s): " + ", ".join(missing)
                )
            return dict(templates), None
        return {}, str(templates)
