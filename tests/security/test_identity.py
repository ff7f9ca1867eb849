"""Client identity: the per-address limits count the socket's peer, not what a client claims;
behind werkzeug's ProxyFix the configured hop is used; IPv6 clients are counted per /64."""

from __future__ import annotations

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from tests.security.support import PHONES, assert_error

LIMITS = {"SMSCODE_IP_SEND_LIMITS": "2/hour", "SMSCODE_PHONE_LIMITS": "1000/hour"}


def _send(client, n: int, headers=None, remote="127.0.0.1"):
    return client.post(
        "/sms/send",
        json={"phone": PHONES[n]},
        headers=headers or {},
        environ_base={"REMOTE_ADDR": remote},
    )


@pytest.mark.parametrize(
    "header",
    [
        "X-Forwarded-For",
        "X-Real-IP",
        "Forwarded",
        "X-Client-IP",
        "True-Client-IP",
        "CF-Connecting-IP",
    ],
)
def test_spoofed_address_headers_are_ignored_without_proxyfix(make_app, sms_server, header):
    client = make_app(**LIMITS).test_client()
    value = "for=203.0.113.{}" if header == "Forwarded" else "203.0.113.{}"
    assert _send(client, 0, {header: value.format(1)}).status_code == 200
    assert _send(client, 1, {header: value.format(2)}).status_code == 200
    assert_error(_send(client, 2, {header: value.format(3)}), 429, "throttled")
    assert len(sms_server.sent) == 2


def test_behind_proxyfix_the_configured_hop_is_counted(make_app, sms_server):
    app = make_app(**LIMITS)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = app.test_client()
    # The proxy appends the real peer; whatever the client put before it is ignored.
    assert _send(client, 0, {"X-Forwarded-For": "198.51.100.7"}).status_code == 200
    assert _send(client, 1, {"X-Forwarded-For": "10.0.0.1, 198.51.100.7"}).status_code == 200
    assert_error(_send(client, 2, {"X-Forwarded-For": "10.0.0.2, 198.51.100.7"}), 429, "throttled")
    # Another real client behind the same proxy has its own budget.
    assert _send(client, 3, {"X-Forwarded-For": "198.51.100.8"}).status_code == 200
    # X-Real-IP is not what ProxyFix(x_for=1) reads: it moves nothing.
    assert_error(
        _send(client, 4, {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "192.0.2.99"}),
        429,
        "throttled",
    )


def test_ipv6_clients_are_counted_per_64(make_app, sms_server):
    client = make_app(**LIMITS).test_client()
    assert _send(client, 0, remote="2001:db8:1:2::1").status_code == 200
    assert _send(client, 1, remote="2001:db8:1:2:ffff:ffff:ffff:fffe").status_code == 200
    # A third address of the same /64 shares the budget...
    assert_error(_send(client, 2, remote="2001:db8:1:2:abcd::9"), 429, "throttled")
    # ...a neighbouring /64 does not.
    assert _send(client, 3, remote="2001:db8:1:3::1").status_code == 200


def test_ipv4_mapped_ipv6_is_the_ipv4_address(make_app, sms_server):
    client = make_app(**LIMITS).test_client()
    assert _send(client, 0, remote="198.51.100.20").status_code == 200
    assert _send(client, 1, remote="::ffff:198.51.100.20").status_code == 200
    assert_error(_send(client, 2, remote="198.51.100.20"), 429, "throttled")
