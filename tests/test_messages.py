"""The message catalogue: every answer readable in Chinese and English, chosen per request.

The machine ``error`` code never changes with the language; only ``message`` and the
``Content-Language`` header do. A third language is a file, not a code change.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_babel import Babel

from flask_smscode import errors, sms_bp
from flask_smscode.cli import smscode
from flask_smscode.errors import (
    ConfigurationError,
    InvalidCode,
    InvalidPhone,
    InvalidRequest,
    SmsCodeError,
    Throttled,
)
from flask_smscode.messages import (
    BUILTIN,
    LOCALES_DIR,
    Catalogue,
    default_catalogue,
    environment_language,
    load_directory,
)
from flask_smscode.web.blueprint import _HTTP_ERROR_CODES

PHONE = "13800138000"
TEST_CODE = "246810"


def error_codes() -> set[str]:
    """Every ``error`` value an answer can carry."""

    def subclasses(cls: type) -> list[type]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    codes = {cls.code for cls in subclasses(SmsCodeError)}
    return codes | set(_HTTP_ERROR_CODES.values()) | {"http_error", "internal_error"}


def make_app(**config: Any) -> Flask:
    app = Flask(f"messages_{id(config)}")
    app.config.update(
        SECRET_KEY="messages-secret",
        TESTING=True,
        SMSCODE_SENDER="console",
        SMSCODE_TEST_NUMBERS={PHONE: TEST_CODE},
    )
    app.config.update(config)
    app.register_blueprint(sms_bp)
    return app


def bad_phone(app: Flask, **headers: str) -> Any:
    return app.test_client().post("/sms/send", json={"phone": "12345"}, headers=headers)


# -- the catalogue --------------------------------------------------------------------------
def test_every_error_code_has_chinese_and_english_text() -> None:
    assert {"en", "zh"} <= set(BUILTIN)
    for code in error_codes():
        for language in ("en", "zh"):
            assert BUILTIN[language].get(code), f"{language}.json has no {code!r}"


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def literal(text: str) -> str:
    """The words of a template, without its {fields}."""
    return "".join(part for part, _, _, _ in string.Formatter().parse(text))


def test_chinese_has_every_english_key_with_the_same_placeholders() -> None:

    assert set(BUILTIN["zh"]) == set(BUILTIN["en"])
    for key, text in BUILTIN["en"].items():
        assert fields(BUILTIN["zh"][key]) == fields(text), key
        chinese = BUILTIN["zh"][key]
        # Chinese, or a line with no words at all ("{used} / {limit}").
        assert re.search(r"[\u4e00-\u9fff]", chinese) or not re.search(
            r"[A-Za-z]", literal(chinese)
        ), f"zh {key} is not Chinese"


def test_every_message_key_used_in_the_package_is_in_the_catalogue() -> None:
    source = "\n".join(p.read_text() for p in Path(errors.__file__).parent.rglob("*.py"))
    used = set(re.findall(r'key="([a-z_.]+)"', source))
    used |= set(re.findall(r'_t\("([a-z_.]+)"', source))
    assert used, "no keys found: the pattern is out of date"
    assert used <= set(BUILTIN["en"]), used - set(BUILTIN["en"])


def test_no_message_holds_a_code_or_a_full_phone() -> None:
    params = {
        "attempts_left": 3,
        "retry_after": 60,
        "length": 6,
        "field": "phone",
        "purposes": "login, signup",
        "phone": "138****8000",
        "masked": "138****8000",
        "purpose": "login",
        "delivery": "sent",
        "expires_in": 300,
        "resend_in": 60,
        "seconds": 42,
        "left": 4,
        "max": 5,
        "used": 1,
        "limit": "5 per 1 hour",
        "sends": "1 of 5 per 1 hour",
        "removed": 3,
        "scope": "",
        "message": "m",
        "out_id": "abc",
    }
    catalogue = default_catalogue()
    for language in catalogue.languages:
        for key in catalogue.keys(language):
            if key in ("cli.code", "cli.status.phone"):  # operator-only lines, by design
                continue
            template = catalogue.text(key, language)
            assert not re.search(r"\d{4,}", literal(template)), (language, key, template)
            values = {**dict.fromkeys(fields(template), "x"), **params}
            text = catalogue.text(key, language, values)
            assert PHONE not in text and "{" not in text, (language, key, text)


def test_exception_message_stays_english_for_python_callers() -> None:
    error = InvalidCode(attempts_left=2)
    assert error.message == "The code is not correct; 2 attempt(s) left."
    assert str(error) == error.message
    assert error.render("zh") == "验证码不正确，还可尝试 2 次。"
    assert InvalidCode(attempts_left=0).key == "invalid_code.last"
    assert InvalidPhone("Custom text").render("zh") == "Custom text"  # literal, as given


def test_missing_translation_falls_back_to_base_then_english() -> None:
    catalogue = Catalogue({**BUILTIN, "ja": {"throttled": "しばらくしてから再試行してください。"}})
    assert catalogue.text("throttled.ip", "ja") == "しばらくしてから再試行してください。"
    assert catalogue.text("code_expired", "ja") == BUILTIN["en"]["code_expired"]


def test_a_broken_translation_does_not_break_the_answer() -> None:
    catalogue = Catalogue({**BUILTIN, "xx": {"throttled": "wait {retry_after s"}})
    assert catalogue.text("throttled", "xx", {"retry_after": 3}) == "wait {retry_after s"


# -- language per request -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN", "zh"),
        ("zh-TW", "zh"),
        ("zh-Hans-CN,zh;q=0.9", "zh"),
        ("fr", "zh"),  # nothing offered we have: the default
        ("fr;q=1, en;q=0.8, zh;q=0.5", "en"),  # the best we have by q-value
        ("zh;q=0.3, en;q=0.7", "en"),
        ("en;q=0.2, zh-CN;q=0.9", "zh"),
        ("*", "zh"),
        (None, "zh"),
    ],
)
def test_accept_language_picks_the_message(header: str | None, language: str) -> None:
    app = make_app()
    response = bad_phone(app, **({"Accept-Language": header} if header else {}))
    body = response.get_json()
    assert response.status_code == 400
    assert body["error"] == "invalid_phone"  # never translated
    assert body["message"] == BUILTIN[language]["invalid_phone"]
    assert response.headers["Content-Language"] == language


def test_default_language_setting() -> None:
    app = make_app(SMSCODE_DEFAULT_LANGUAGE="en")
    assert bad_phone(app).get_json()["message"] == BUILTIN["en"]["invalid_phone"]
    assert bad_phone(app, **{"Accept-Language": "zh-CN"}).headers["Content-Language"] == "zh"
    with pytest.raises(ConfigurationError, match="SMSCODE_DEFAULT_LANGUAGE"):
        make_app(SMSCODE_DEFAULT_LANGUAGE="fr")


def test_variants_and_placeholders_in_both_languages() -> None:
    app = make_app(SMSCODE_MAX_ATTEMPTS=2)
    client = app.test_client()
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 200
    wrong = f"{(int(TEST_CODE) + 1) % 10**6:06d}"
    first = client.post(
        "/sms/verify", json={"phone": PHONE, "code": wrong}, headers={"Accept-Language": "zh-CN"}
    )
    assert first.get_json()["message"] == "验证码不正确，还可尝试 1 次。"
    last = client.post(
        "/sms/verify", json={"phone": PHONE, "code": wrong}, headers={"Accept-Language": "en"}
    )
    body = last.get_json()
    assert body["error"] == "invalid_code" and body["attempts_left"] == 0
    assert body["message"] == BUILTIN["en"]["invalid_code.last"]
    for answer in (first, last):
        text = answer.get_data(as_text=True)
        assert wrong not in text and TEST_CODE not in text and PHONE not in text
    short = client.post(
        "/sms/verify", json={"phone": PHONE, "code": "12"}, headers={"Accept-Language": "zh"}
    ).get_json()
    assert short["error"] == "invalid_request" and short["field"] == "code"
    assert short["message"] == "验证码应为 6 位数字。"
    again = client.post("/sms/send", json={"phone": PHONE}, headers={"Accept-Language": "en"})
    assert again.status_code == 429 and again.get_json()["error"] == "throttled"
    assert again.get_json()["message"] == BUILTIN["en"]["throttled.cooldown"]


def test_http_errors_and_method_refusals_are_translated() -> None:
    app = make_app()
    client = app.test_client()
    response = client.get("/sms/send", headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 405 and response.get_json()["error"] == "method_not_allowed"
    assert response.get_json()["message"] == BUILTIN["zh"]["method_not_allowed"]
    response = client.post(
        "/sms/send", data="[1]", content_type="application/json", headers={"Accept-Language": "en"}
    )
    assert response.get_json() == {
        "ok": False,
        "error": "invalid_request",
        "message": BUILTIN["en"]["invalid_request.body"],
    }


def test_flask_babel_locale_wins_over_accept_language() -> None:
    app = make_app()
    chosen = {"locale": "en"}
    Babel(app, locale_selector=lambda: chosen["locale"])
    response = bad_phone(app, **{"Accept-Language": "zh-CN"})
    assert response.get_json()["message"] == BUILTIN["en"]["invalid_phone"]
    assert response.headers["Content-Language"] == "en"
    chosen["locale"] = "zh_Hans_CN"
    response = bad_phone(app, **{"Accept-Language": "en"})
    assert response.get_json()["message"] == BUILTIN["zh"]["invalid_phone"]
    chosen["locale"] = "fr"  # a locale we have no messages in: negotiate as without Babel
    response = bad_phone(app, **{"Accept-Language": "en"})
    assert response.headers["Content-Language"] == "en"


def test_flask_babel_default_locale_applies() -> None:
    app = make_app(BABEL_DEFAULT_LOCALE="en")
    Babel(app)
    assert bad_phone(app, **{"Accept-Language": "zh-CN"}).headers["Content-Language"] == "en"


# -- a third language without code changes -------------------------------------------------
JA = {
    "invalid_phone": "有効な携帯電話番号ではありません。",
    "throttled": "リクエストが多すぎます。しばらくしてから再試行してください。",
}


def test_a_third_language_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "ja.json").write_text(json.dumps(JA, ensure_ascii=False), encoding="utf-8")
    assert load_directory(tmp_path) == {"ja": JA}  # the loader the built-in files use
    app = make_app(SMSCODE_LOCALES_DIR=str(tmp_path))
    response = bad_phone(app, **{"Accept-Language": "ja-JP,en;q=0.5"})
    assert response.get_json()["message"] == JA["invalid_phone"]
    assert response.headers["Content-Language"] == "ja"
    client = app.test_client()
    client.post("/sms/send", json={"phone": PHONE})
    again = client.post("/sms/send", json={"phone": PHONE}, headers={"Accept-Language": "ja"})
    # throttled.cooldown is not in ja.json: the base key "throttled" in Japanese answers.
    assert again.get_json()["message"].startswith("リクエストが多すぎます。")
    assert bad_phone(app, **{"Accept-Language": "zh"}).headers["Content-Language"] == "zh"


def test_app_messages_override_single_keys() -> None:
    app = make_app(
        SMSCODE_MESSAGES={
            "zh": {"invalid_phone": "请输入 11 位手机号。"},
            "en": {"invalid_phone": "Enter your mobile number."},
        }
    )
    assert bad_phone(app).get_json()["message"] == "请输入 11 位手机号。"
    assert (
        bad_phone(app, **{"Accept-Language": "en"}).get_json()["message"]
        == "Enter your mobile number."
    )
    # Other keys keep the built-in text.
    assert (
        make_app(SMSCODE_MESSAGES={"zh": {}})
        .extensions["smscode"]
        .messages.text("code_expired", "zh")
        == BUILTIN["zh"]["code_expired"]
    )


def test_bad_translation_settings_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="SMSCODE_MESSAGES"):
        make_app(SMSCODE_MESSAGES={"ja": {"invalid_phone": 3}})
    with pytest.raises(ConfigurationError, match="SMSCODE_LOCALES_DIR"):
        make_app(SMSCODE_LOCALES_DIR=str(tmp_path / "missing"))
    (tmp_path / "ja.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"ja\.json"):
        make_app(SMSCODE_LOCALES_DIR=str(tmp_path))


def test_locale_files_ship_with_the_package() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"locales/*.json"' in pyproject
    assert {p.name for p in LOCALES_DIR.glob("*.json")} >= {"en.json", "zh.json"}


# -- the CLI -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({"LANGUAGE": "fr:en", "LANG": "zh_CN.UTF-8"}, "en"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ({"LANG": "fr_FR.UTF-8"}, "zh"),
        ({}, "zh"),
    ],
)
def test_cli_language_from_the_environment(environ: dict[str, str], language: str) -> None:
    assert environment_language(default_catalogue(), environ) == language


def test_cli_follows_the_catalogue() -> None:
    app = make_app()
    runner = app.test_cli_runner()
    zh = runner.invoke(smscode, ["--lang", "zh", "send", PHONE])
    assert zh.exit_code == 0, zh.output
    assert zh.output.startswith("验证码已发送至 138****8000")
    again = runner.invoke(smscode, ["--lang", "zh", "send", PHONE])
    assert again.exit_code == 1
    assert re.search(
        r"Error: throttled: 验证码已发送，请稍后再重新获取。（(59|60) 秒后可重试）", again.output
    ), again.output
    en = runner.invoke(
        smscode,
        ["send", PHONE],
        env={"LANG": "en_US.UTF-8", "LC_ALL": "", "LANGUAGE": "", "LC_MESSAGES": ""},
    )
    assert "asking for another. (retry in" in en.output
    status = runner.invoke(
        smscode,
        ["status", PHONE],
        env={"LANG": "zh_CN.UTF-8", "LC_ALL": "", "LANGUAGE": "", "LC_MESSAGES": ""},
    )
    assert "剩余尝试次数：5 / 5" in status.output
    unknown = runner.invoke(smscode, ["--lang", "xx", "send", PHONE])
    assert unknown.exit_code == 2 and "--lang" in unknown.output


def test_throttled_without_a_key_uses_the_generic_text() -> None:
    assert Throttled(retry_after=7).render("zh") == "操作过于频繁，请稍后再试。"
    # A translation may show the wait; the built-in ones do not, since a form's countdown
    # (from retry_after) would leave a fixed number in the text stale.
    custom = Catalogue({**BUILTIN, "zh": {"throttled": "请 {retry_after} 秒后再试。"}})
    assert Throttled(retry_after=7).render("zh", custom) == "请 7 秒后再试。"
    assert (
        InvalidRequest(key="invalid_request.required", field="phone").render("en")
        == "The field 'phone' is required."
    )


CHINESE = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_WORDS = re.compile(
    r"\b(?:Sent|number|request|Invalid|skipped|Duplicates|Phone|Status|"
    r"Template|Received|record|DELIVERED|FAILED|line|entry)\b"
)


def columns(text: str) -> int:
    """Terminal columns of ``text``: a CJK character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def test_cli_notify_and_delivery_speak_chinese(
    aliyun_config: dict[str, Any], sms_server: Any, tmp_path: Path
) -> None:
    """Every line an operator reads from notify and delivery follows --lang, like send."""
    app = Flask("messages_cli_notify")
    app.config.update(SECRET_KEY="messages-secret", TESTING=True, **aliyun_config)
    runner = app.test_cli_runner()
    english = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}  # --lang wins over the environment
    params = '{"name":"Zhang San","time":"22:00"}'

    notify = runner.invoke(
        smscode,
        [
            "--lang",
            "zh",
            "notify",
            "--template",
            "SMS_NOTIFY",
            "--params",
            params,
            "--phones",
            f"{PHONE} 12345 {PHONE}",
        ],
        env=english,
    )
    assert notify.exit_code == 1, notify.output  # one invalid number: scripts notice
    [sms] = sms_server.sent
    assert "已发送：1 个号码，共 1 次请求" in notify.output
    assert f"  1 个号码：BizId {sms.biz_id}，RequestId {sms.request_id}" in notify.output
    assert "已跳过重复号码：1 个" in notify.output
    assert "已跳过无效号码：1 个\n  第 2 项：***45" in notify.output
    assert "发送中" in notify.stderr
    assert not ENGLISH_WORDS.search(notify.output), notify.output

    path = tmp_path / "bad.txt"
    path.write_text("999\n", encoding="utf-8")
    refused = runner.invoke(
        smscode,
        [
            "--lang",
            "zh",
            "notify",
            "--template",
            "SMS_NOTIFY",
            "--params",
            params,
            "--file",
            str(path),
        ],
        env=english,
    )
    assert refused.exit_code == 1
    assert "  第 1 行：***99" in refused.output
    assert "Error: bad.txt 中没有有效的手机号，未发送任何短信。" in refused.output
    usage = runner.invoke(
        smscode,
        ["--lang", "zh", "notify", "--template", "SMS_NOTIFY", "--params", "[1]"],
        env=english,
    )
    assert usage.exit_code == 2 and "必须是 JSON 对象" in usage.output

    sms_server.set_delivery_status(sms.biz_id, 2, "MOBILE_NOT_ON_SERVICE")
    delivery = runner.invoke(smscode, ["--lang", "zh", "delivery", PHONE], env=english)
    assert delivery.exit_code == 0, delivery.output
    header, row, summary = delivery.output.splitlines()
    assert header.split() == [
        "手机号",
        "状态",
        "错误码",
        "模板",
        "发送时间",
        "送达时间",
        "外部流水号",
    ]
    assert row.split()[:3] == ["138****8000", "失败", "MOBILE_NOT_ON_SERVICE"]
    # Columns line up on a terminal, where each Chinese character is two columns wide.
    assert columns(header[: header.index("状态")]) == columns(row[: row.index("失败")])
    assert columns(header[: header.index("错误码")]) == columns(row[: row.index("MOBILE")])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} 共 1 条记录，本页显示 1 条", summary), summary
    assert not ENGLISH_WORDS.search(delivery.output), delivery.output
    bad_date = runner.invoke(
        smscode, ["--lang", "zh", "delivery", PHONE, "--date", "x"], env=english
    )
    assert bad_date.exit_code == 2 and "请使用 YYYY-MM-DD 或 YYYYMMDD 格式。" in bad_date.output

    same = runner.invoke(
        smscode,
        ["notify", "--template", "SMS_NOTIFY", "--params", params, "--phones", PHONE],
        env=english,
    )
    assert "Sent: 1 number(s) in 1 request(s)" in same.output
    assert CHINESE.search(same.output) is None
