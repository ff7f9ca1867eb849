"""``AliyunSms``: the public Alibaba Cloud SMS client, usable without Flask.

It only assembles the package's jobs — validated settings (:mod:`.settings`), the SDK
transport (:mod:`.transport`), one SendSms call (:mod:`.sendsms`), notifications
(:mod:`.notify`), per-recipient batches (:mod:`.batch`), receipts (:mod:`.receipts`) and
the low-code loaders (:mod:`.loaders`) — behind the API the README documents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flask_smscode.aliyun.batch import BatchNotifications
from flask_smscode.aliyun.loaders import credentials_from_json, element_sms_json
from flask_smscode.aliyun.notify import Notifications, SuppressionCheck
from flask_smscode.aliyun.receipts import ReceiptQueries
from flask_smscode.aliyun.sendsms import SendSmsResponse, send_sms
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.aliyun.transport import Transport


class AliyunSms(Notifications, BatchNotifications, ReceiptQueries):
    """A thread-safe Dysmsapi client: one instance per app or process is enough.

    Credentials fall back to ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` from the
    environment, the convention of Alibaba's own tools.
    """

    def __init__(
        self,
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
        settings: AliyunSettings | None = None,
        suppression: SuppressionCheck | None = None,
    ) -> None:
        self.settings = settings or AliyunSettings.build(
            access_key_id,
            access_key_secret,
            sign_name,
            region=region,
            endpoint=endpoint,
            protocol=protocol,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_concurrency=max_concurrency,
            default_region=default_region,
            allowed_regions=allowed_regions,
        )
        self.transport = Transport(self.settings)
        # The app's suppression list (unsubscribed numbers), which send_message skips.
        self.suppression = suppression

    def __repr__(self) -> str:  # never show the secret
        s = self.settings
        return f"<AliyunSms endpoint={s.endpoint!r} region={s.region!r} sign_name={s.sign_name!r}>"

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: AliyunSettings) -> AliyunSms:
        return cls(settings=settings)

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], *, suppression: SuppressionCheck | None = None
    ) -> AliyunSms:
        """Build from the ``SMSCODE_ALIYUN_*`` keys of a Flask config (or any mapping).

        ``suppression``: which numbers unsubscribed, e.g.
        ``get_service(app).suppression.suppressed``; ``send_message`` skips them."""
        return cls(settings=AliyunSettings.from_config(config), suppression=suppression)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str], **overrides: Any) -> AliyunSms:
        """Build from a low-code ``sms.json``: ``{"accessKey", "accessSecret", "verifySign"}``.

        Keyword arguments (``endpoint``, ``protocol``, ``timeout``...) override the file.
        A missing file or key raises :class:`~flask_smscode.AliyunSmsError` 46001 naming it.
        """
        return cls(*credentials_from_json(path), **overrides)

    @classmethod
    def from_element(cls, folder: str | os.PathLike[str], **overrides: Any) -> AliyunSms:
        """Build from a low-code element folder: ``e.json`` (type ``SMS.Aliyun``) beside
        ``sms.json`` (found under its ``backendBundleEntry``, default ``.``)."""
        return cls.from_json(element_sms_json(folder), **overrides)

    # -- the settings, read-only ---------------------------------------------------------
    @property
    def sign_name(self) -> str | None:
        return self.settings.sign_name

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def protocol(self) -> str:
        return self.settings.protocol

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @property
    def connect_timeout(self) -> float:
        return self.settings.connect_timeout

    @property
    def max_concurrency(self) -> int:
        return self.settings.max_concurrency

    @property
    def default_region(self) -> str:
        return self.settings.default_region

    @property
    def allowed_regions(self) -> tuple[str, ...] | None:
        return self.settings.allowed_regions

    @property
    def _access_key_id(self) -> str:  # doctor shows it masked
        return self.settings.access_key_id

    # -- calls ---------------------------------------------------------------------------
    def call(self, action: str, params: Mapping[str, str | None]) -> dict[str, Any]:
        """Make one Dysmsapi RPC call and return the decoded JSON answer.

        Raises :class:`~flask_smscode.AliyunSmsError` 46002 for an HTTP error answer and
        46003 when the request failed; a ``Code`` other than ``OK`` in a 200 answer is left
        to the caller.
        """
        return self.transport.call(action, params)

    def send_sms(
        self,
        phone_numbers: Sequence[str],
        template_code: str,
        params: Mapping[str, Any] | None = None,
        *,
        out_id: str | None = None,
        sign_name: str | None = None,
        sms_up_extend_code: str | None = None,
    ) -> SendSmsResponse:
        """One SendSms call to at most 1000 numbers, already in the provider's format.

        Parameter values are sent as strings (Alibaba rejects others); ``sms_up_extend_code``
        is the uplink extension code (1-7 digits). Raises
        :class:`~flask_smscode.AliyunSmsError` unless Alibaba Cloud answered ``Code == "OK"``.
        """
        return send_sms(
            self.transport,
            phone_numbers,
            template_code,
            params,
            out_id=out_id,
            sign_name=sign_name,
            sms_up_extend_code=sms_up_extend_code,
        )
