"""The IP allow-list: which address is the client's, and who may post callbacks."""

from __future__ import annotations

import pytest

from receiver.ops.ipallow import check, client_address, is_allowed, parse_networks

from .test_ops_support import c2c_after, config_text, make_app, post

# (peer address, X-Forwarded-For, trusted proxies, client address imhook must use)
CLIENT_ADDRESSES = [
    ("10.0.0.5", None, 0, "10.0.0.5"),
    ("10.0.0.5", "1.2.3.4", 0, "10.0.0.5"),  # 0 proxies: the header is never read
    ("10.0.0.5", "1.2.3.4", 1, "1.2.3.4"),
    ("10.0.0.5", "6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # the client forged the left part
    ("10.0.0.5", "6.6.6.6, 1.2.3.4, 10.0.0.9", 2, "1.2.3.4"),
    ("10.0.0.5", "1.2.3.4", 2, "10.0.0.5"),  # fewer hops than proxies: do not guess
    ("10.0.0.5", "", 1, "10.0.0.5"),
    ("10.0.0.5", " 1.2.3.4 ,  10.0.0.9 ", 2, "1.2.3.4"),
]


@pytest.mark.parametrize("peer, forwarded, proxies, expected", CLIENT_ADDRESSES)
def test_client_address(peer, forwarded, proxies, expected):
    assert client_address(peer, forwarded, proxies) == expected


NETWORKS = ("10.0.0.0/8", "203.0.113.7", "2001:db8::/32")
ALLOWED = [
    ("10.1.2.3", True),
    ("11.0.0.1", False),
    ("203.0.113.7", True),
    ("203.0.113.8", False),
    ("2001:db8::1", True),
    ("::ffff:10.9.9.9", True),  # an IPv4 client on a dual-stack socket
    ("[2001:db8::2]", True),
    ("not-an-ip", False),
    ("", False),
    ("10.1.2.3; drop", False),
]


@pytest.mark.parametrize("address, expected", ALLOWED)
def test_is_allowed(address, expected):
    assert is_allowed(address, parse_networks(NETWORKS)) is expected


def test_an_empty_allow_list_allows_everyone():
    assert check("6.6.6.6", None, allow=(), trusted_proxies=0) is None


def test_check_names_the_refused_address():
    assert check("10.0.0.5", "6.6.6.6", allow=("10.0.0.0/8",), trusted_proxies=1) == "6.6.6.6"


def test_a_bad_cidr_is_a_value_error():
    with pytest.raises(ValueError):
        parse_networks(("10.0.0.0/33",))


ALLOW_CONFIG = """
server:
  allow_ips: ["10.0.0.0/8", "127.0.0.1"]
  trusted_proxies: {proxies}
metrics:
  enabled: false
"""

# (trusted proxies, X-Forwarded-For sent, expected status)
WEB_CASES = [
    (0, None, 200),  # the test client's peer is 127.0.0.1
    (0, "6.6.6.6", 200),  # header ignored
    (1, "10.2.3.4", 200),
    (1, "6.6.6.6", 403),
    (1, "10.2.3.4, 6.6.6.6", 403),  # only the right-most hop is the proxy's word
]


@pytest.mark.parametrize("proxies, forwarded, status", WEB_CASES)
def test_callback_endpoint_applies_the_allow_list(tmp_path, monkeypatch, proxies, forwarded, status):
    app = make_app(tmp_path, config_text(tmp_path, ALLOW_CONFIG.format(proxies=proxies)), monkeypatch)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    response = post(app.test_client(), c2c_after(1), **headers)
    assert response.status_code == status
    assert response.content_type == "application/json"
    body = response.get_json()
    if status == 403:
        assert body["ActionStatus"] == "FAIL" and "not allowed" in body["ErrorInfo"]


def test_health_endpoints_are_not_subject_to_the_allow_list(tmp_path, monkeypatch):
    text = config_text(tmp_path, "server:\n  allow_ips: ['192.0.2.0/24']\n")
    client = make_app(tmp_path, text, monkeypatch).test_client()
    assert post(client, c2c_after(1)).status_code == 403
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_bad_cidr_stops_the_app_with_a_config_error(tmp_path, monkeypatch):
    from receiver.errors import ConfigError

    with pytest.raises(ConfigError, match="allow_ips"):
        make_app(tmp_path, config_text(tmp_path, "server:\n  allow_ips: ['10.0.0.300']\n"), monkeypatch)


def test_a_forged_forwarded_address_is_cut_before_it_is_logged(tmp_path, monkeypatch, caplog):
    from receiver.edge import MAX_LOGGED_VALUE_CHARS

    app = make_app(tmp_path, config_text(tmp_path, ALLOW_CONFIG.format(proxies=1)), monkeypatch)
    forged = "6" * 8000 + "\u0007"
    with caplog.at_level("WARNING", logger="imhook.ops"):
        assert post(app.test_client(), c2c_after(1), **{"X-Forwarded-For": forged}).status_code == 403
    [record] = [r for r in caplog.records if r.getMessage() == "callback refused by server.allow_ips"]
    assert record.client.startswith("6" * 100) and len(record.client) < MAX_LOGGED_VALUE_CHARS + 40
    assert "\u0007" not in record.client
