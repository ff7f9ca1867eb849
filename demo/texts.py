"""The demo pages' own words in Chinese and English (the /sms answers bring their own).

The language is the visitor's choice from the switch on every page (a cookie), else the
best match of ``Accept-Language``, else Chinese, the default for the CN market.
"""

# Chinese sentences take full-width punctuation, which RUF001 would flag.
# ruff: noqa: RUF001

from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "brand": "flask-smscode 演示",
        "login_title": "登录",
        "signup_title": "注册",
        "account_title": "账户",
        "login_lead": "用短信验证码登录。",
        "signup_lead": "验证手机号即可创建账户。",
        "phone": "手机号",
        "code": "验证码",
        "name": "昵称",
        "get_code": "获取验证码",
        "submit_login": "登录",
        "submit_signup": "注册",
        "no_account": "还没有账号？",
        "have_account": "已有账号？",
        "signed_in_as": "已登录：",
        "member_since": "注册时间",
        "logout": "退出登录",
        "signed_out": "已退出登录。",
        "needs_js": "此页面需要 JavaScript。",
        "token_invalid": "验证已失效，请重新获取验证码。",
        "unknown_phone": "该手机号未注册。",
        "known_phone": "该手机号已注册。",
        "name_invalid": "请输入 1 到 {max} 个字符的昵称。",
        "footer": "演示站点：账户保存在 instance/ 下的 SQLite 文件中。",
        "language": "语言",
    },
    "en": {
        "brand": "flask-smscode demo",
        "login_title": "Log in",
        "signup_title": "Sign up",
        "account_title": "Account",
        "login_lead": "Sign in with a code sent to your phone.",
        "signup_lead": "Verify your phone to create an account.",
        "phone": "Phone",
        "code": "Code",
        "name": "Display name",
        "get_code": "Get code",
        "submit_login": "Log in",
        "submit_signup": "Sign up",
        "no_account": "No account yet?",
        "have_account": "Already have an account?",
        "signed_in_as": "Signed in as",
        "member_since": "Member since",
        "logout": "Sign out",
        "signed_out": "You have signed out.",
        "needs_js": "This page needs JavaScript.",
        "token_invalid": "The verification is no longer valid: request a new code.",
        "unknown_phone": "No account for this phone.",
        "known_phone": "This phone already has an account.",
        "name_invalid": "Enter a display name of 1 to {max} characters.",
        "footer": "Demo site: accounts are kept in a SQLite file under instance/.",
        "language": "Language",
    },
}
