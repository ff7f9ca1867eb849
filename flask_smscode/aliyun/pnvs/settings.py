"""The ``SMSCODE_PNVS_*`` settings, validated once into :class:`PnvsSettings`.

PNVS (号码认证服务, product Dypnsapi) is an Alibaba Cloud product: it takes the same
AccessKey as Dysmsapi, so the credentials are read exactly as the ``aliyun`` sender reads
them (``SMSCODE_ALIYUN_ACCESS_KEY_ID`` / ``_SECRET``, else ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
``_SECRET``), by :meth:`AliyunSettings.build`. Everything else PNVS has of its own: its
endpoint, protocol and timeout (another product, another host), its system-provided
signature and template (赠送签名 / 赠送模板), and an optional scheme name (方案名称).

Rules written here and nowhere else; every error names the key to fix:

- the protocol is https; http only for a loopback endpoint (the rule of
  ``SMSCODE_ALIYUN_PROTOCOL``, from :func:`~flask_smscode.aliyun.settings.is_loopback`);
- PNVS sends to mainland numbers only ("目前也仅支持国内号码发送", SendSmsVerifyCode's
  ``CountryCode``): ``PnvsSender.calling_codes`` says so, and the sender registry refuses
  at start-up a route that reaches other numbers (``SMSCODE_ALLOWED_REGIONS = ["CN"]``, or
  ``SMSCODE_SENDER_ROUTES = {"86": ["pnvs"], "*": [...]}``);
- a purpose -> template dict must cover every purpose, as ``SMSCODE_ALIYUN_TEMPLATE_CODE``;
- the scheme name is at most 20 characters (Alibaba's limit).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_smscode.aliyun.settings import MAX_TIMEOUT_SECONDS, AliyunSettings, is_loopback
from flask_smscode.config import get_setting, regions_from_config
from flask_smscode.errors import ConfigurationError

DEFAULT_ENDPOINT = "dypnsapi.aliyuncs.com"
MAX_SCHEME_NAME = 20  # SendSmsVerifyCode: "最多不超过 20 个字符"


@dataclass(frozen=True)
class PnvsSettings:
    """Validated PNVS settings; ``transport`` is what :class:`~.transport.Transport` takes
    (the shared AccessKey with PNVS's endpoint, protocol and timeout)."""

    transport: AliyunSettings = field(repr=False)
    sign_name: str | None = None
    template_code: str | Mapping[str, str] | None = None
    scheme_name: str | None = None
    code_ttl_seconds: int = 300  # SMSCODE_CODE_TTL_SECONDS: ValidTime and ${min}
    resend_interval_seconds: int = 60  # SMSCODE_RESEND_INTERVAL_SECONDS: Interval

    @property
    def endpoint(self) -> str:
        return self.transport.endpoint

    @property
    def protocol(self) -> str:
        return self.transport.protocol

    @property
    def timeout(self) -> float:
        return self.transport.timeout

    @property
    def valid_minutes(self) -> int:
        """The template's ``${min}``: the code's lifetime in whole minutes, rounded up."""
        return max(1, math.ceil(self.code_ttl_seconds / 60))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PnvsSettings:
        """Validate the ``SMSCODE_PNVS_*`` keys (and the credentials and regions they share
        with the ``aliyun`` sender) of a Flask config or any mapping."""

        def get(key: str) -> Any:
            return get_setting(config, key)

        endpoint = get("SMSCODE_PNVS_ENDPOINT")
        if not isinstance(endpoint, str) or not endpoint.strip():
            raise ConfigurationError("SMSCODE_PNVS_ENDPOINT must be a host[:port].")
        protocol = str(get("SMSCODE_PNVS_PROTOCOL")).lower()
        if protocol not in ("https", "http"):
            raise ConfigurationError("SMSCODE_PNVS_PROTOCOL must be 'https' or 'http'.")
        if protocol == "http" and not is_loopback(endpoint):
            raise ConfigurationError(
                "SMSCODE_PNVS_PROTOCOL 'http' is only allowed for a loopback "
                "SMSCODE_PNVS_ENDPOINT: plain HTTP puts the AccessKeyId and the code on "
                "the wire in clear."
            )
        timeout = get("SMSCODE_PNVS_TIMEOUT_SECONDS")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            raise ConfigurationError("SMSCODE_PNVS_TIMEOUT_SECONDS must be in (0, 60].")
        sign_name = get("SMSCODE_PNVS_SIGN_NAME")
        if sign_name is not None and not isinstance(sign_name, str):
            raise ConfigurationError("SMSCODE_PNVS_SIGN_NAME must be a text (the 赠送签名).")
        template = get("SMSCODE_PNVS_TEMPLATE_CODE")
        if template is not None and not isinstance(template, (str, Mapping)):
            raise ConfigurationError(
                "SMSCODE_PNVS_TEMPLATE_CODE must be a template code or a dict purpose -> code."
            )
        if isinstance(template, Mapping):
            template = {str(k): str(v) for k, v in template.items()}
        scheme = get("SMSCODE_PNVS_SCHEME_NAME")
        if scheme is not None and (not isinstance(scheme, str) or len(scheme) > MAX_SCHEME_NAME):
            raise ConfigurationError(
                f"SMSCODE_PNVS_SCHEME_NAME must be a text of at most {MAX_SCHEME_NAME} "
                "characters (the 方案名称 of the PNVS console), or None for the default scheme."
            )
        # Mainland only: the sender class says so (PnvsSender.calling_codes) and the
        # sender registry refuses, at start-up, a route that reaches other numbers.
        default_region, regions = regions_from_config(config)
        transport = AliyunSettings.build(
            get("SMSCODE_ALIYUN_ACCESS_KEY_ID"),
            get("SMSCODE_ALIYUN_ACCESS_KEY_SECRET"),
            sign_name or None,
            region=get("SMSCODE_ALIYUN_REGION"),
            endpoint=endpoint.strip(),
            protocol=protocol,
            timeout=float(timeout),
            default_region=default_region,
            allowed_regions=regions,
        )
        return cls(
            transport=transport,
            sign_name=sign_name or None,
            template_code=template or None,
            scheme_name=scheme or None,
            code_ttl_seconds=int(get("SMSCODE_CODE_TTL_SECONDS")),
            resend_interval_seconds=int(get("SMSCODE_RESEND_INTERVAL_SECONDS")),
        )

    def sender_templates(self, purposes: Sequence[str]) -> tuple[str, dict[str, str], str | None]:
        """What the sender needs beyond the transport: the signature, and a template for
        every purpose. Returns (sign, purpose -> template, the one template for all or None)."""
        if not self.sign_name:
            raise ConfigurationError(
                "SMSCODE_PNVS_SIGN_NAME must be set for the pnvs sender (a 赠送签名 chosen "
                "on the PNVS console's 赠送签名配置 page)."
            )
        templates = self.template_code
        if not templates:
            raise ConfigurationError(
                "SMSCODE_PNVS_TEMPLATE_CODE must be set for the pnvs sender (a 赠送模板 "
                "code such as 100001, or a dict purpose -> code)."
            )
        if isinstance(templates, Mapping):
            missing = [p for p in purposes if not templates.get(p)]
            if missing:
                raise ConfigurationError(
                    "SMSCODE_PNVS_TEMPLATE_CODE has no template for purpose(s): "
                    + ", ".join(missing)
                )
            return self.sign_name, dict(templates), None
        return self.sign_name, {}, str(templates)
