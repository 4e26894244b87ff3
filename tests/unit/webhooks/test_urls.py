"""Where a tenant's webhooks may go (docs/webhooks.md, SSRF)."""

from __future__ import annotations

import ipaddress

import pytest

from app.domain.webhooks.errors import WebhookUrlNotAllowed
from app.domain.webhooks.urls import UrlPolicy, check_resolved, check_url, is_public

PRODUCTION = UrlPolicy(allow_http=False, allow_private=False)


class TestCheckUrl:
    def test_a_public_https_url_passes_unchanged(self) -> None:
        url = "https://hooks.example.com:8443/palisade?tenant=acme"
        assert check_url(url, PRODUCTION) == url

    @pytest.mark.parametrize(
        "url",
        [
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[fe80::1%25eth0]/",
            "https://LOCALHOST/",
            "https://api.localhost/",
        ],
    )
    def test_private_targets_need_allow_private(self, url: str) -> None:
        with pytest.raises(WebhookUrlNotAllowed):
            check_url(url, PRODUCTION)
        assert check_url(url, UrlPolicy(allow_http=False, allow_private=True)) == url

    def test_dev_mode_allows_http_to_loopback(self) -> None:
        policy = UrlPolicy.of(allow_http=False, allow_private=False, dev=True)
        assert check_url("http://127.0.0.1:9000/hook", policy)


class TestIsPublic:
    @pytest.mark.parametrize(
        ("address", "public"),
        [
            ("93.184.216.34", True),
            ("2606:2800:220:1:248:1893:25c8:1946", True),
            ("127.0.0.1", False),
            ("169.254.169.254", False),
            ("224.0.0.1", False),
            ("::ffff:127.0.0.1", False),
            ("0.0.0.0", False),
        ],
    )
    def test_only_global_unicast_is_public(self, address: str, public: bool) -> None:
        assert is_public(ipaddress.ip_address(address)) is public


async def test_a_host_resolving_to_loopback_is_refused_at_send_time() -> None:
    assert await check_resolved("https://localhost/hook", PRODUCTION) is not None
    allowed = UrlPolicy(allow_http=False, allow_private=True)
    assert await check_resolved("https://localhost/hook", allowed) is None
