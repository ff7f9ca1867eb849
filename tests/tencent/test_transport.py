"""The SDK door: loaded only by a Tencent app's first call, its logs silenced."""

from __future__ import annotations

import subprocess
import sys

from flask_smscode.tencent.transport import Transport, silence_sdk_logs


def loaded(code: str) -> bool:
    probe = f"{code}\nimport sys\nprint('tencentcloud' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True
    ).stdout
    return out.strip().splitlines()[-1] == "True"


def test_an_alibaba_app_never_loads_the_tencent_sdk():
    assert not loaded(
        "from flask import Flask\nfrom flask_smscode import sms_bp\n"
        "app = Flask('x'); app.config.update(SECRET_KEY='k', SMSCODE_SENDER='aliyun',\n"
        "  SMSCODE_ALIYUN_ACCESS_KEY_ID='i', SMSCODE_ALIYUN_ACCESS_KEY_SECRET='s',\n"
        "  SMSCODE_ALIYUN_SIGN_NAME='S', SMSCODE_ALIYUN_TEMPLATE_CODE='SMS_1')\n"
        "app.register_blueprint(sms_bp)"
    )


def test_a_tencent_app_loads_it_on_the_first_call_only():
    assert not loaded(
        "from flask import Flask\nfrom flask_smscode import sms_bp\n"
        "app = Flask('x'); app.config.update(SECRET_KEY='k', SMSCODE_SENDER='tencent',\n"
        "  SMSCODE_TENCENT_SECRET_ID='AKIDx', SMSCODE_TENCENT_SECRET_KEY='s',\n"
        "  SMSCODE_TENCENT_SDK_APP_ID='1400000001', SMSCODE_TENCENT_SIGN_NAME='S',\n"
        "  SMSCODE_TENCENT_TEMPLATE_ID='1001')\n"
        "app.register_blueprint(sms_bp)"
    )


def test_the_sdk_logger_drops_everything(caplog, tencent_config, tencent_server):
    import logging

    silence_sdk_logs()
    silence_sdk_logs()  # idempotent
    logger = logging.getLogger("tencentcloud_sdk_common")
    assert len(logger.filters) == 1
    with caplog.at_level(logging.DEBUG):
        logger.debug("SendRequest: 13800138000 123456")
    assert "123456" not in caplog.text


def test_repr_holds_no_credentials(tencent_config):
    from flask_smscode.tencent.settings import TencentSettings

    transport = Transport(TencentSettings.from_config(tencent_config))
    assert tencent_config["SMSCODE_TENCENT_SECRET_KEY"] not in repr(transport)
