"""Where Palisade may send a tenant's webhooks: not into its own network (SSRF).

In production an endpoint's URL must be https and its host must resolve only to public
addresses, unless the endpoint allows plain http (``allow_http``) or private, loopback
and link-local targets (``allow_private``). Dev mode allows both by default: the dev
loop and the tests receive on loopback. The URL is checked when it is registered, and
the addresses its host resolves to before every attempt, since DNS may change between.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.domain.webhooks.errors import WebhookUrlNotAllowed

MAX_URL_LENGTH = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class UrlPolicy:
    allow_http: bool
    allow_private: bool

    @classmethod
    def of(cls, *, allow_http: bool, allow_private: bool, dev: bool) -> UrlPolicy:
        return cls(allow_http=allow_http or dev, allow_private=allow_private or dev)


def check_url(url: str, policy: UrlPolicy) -> str:
    """The URL as it will be used, or ``WebhookUrlNotAllowed`` saying why not."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlNotAllowed(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise WebhookUrlNotAllowed("the URL has whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlNotAllowed("the URL cannot be parsed") from None
    if parts.scheme not in ("https", "http"):
        raise WebhookUrlNotAllowed("the URL must be https")
    if parts.scheme == "http" and not policy.allow_http:
        raise WebhookUrlNotAllowed("the URL must be https (or the endpoint must allow_http)")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlNotAllowed("the URL may not carry credentials")
    if parts.fragment:
        raise WebhookUrlNotAllowed("the URL may not have a fragment")
    host = parts.hostname
    if not host:
        raise WebhookUrlNotAllowed("the URL has no host")
    if port == 0:
        raise WebhookUrlNotAllowed("the URL's port is 0")
    if not policy.allow_private:
        literal = _ip(host)
        if literal is not None and not is_public(literal):
            raise WebhookUrlNotAllowed(
                "the URL's host is a private, loopback or link-local address "
                "(the endpoint may allow_private)"
            )
        if host.lower() == "localhost" or host.lower().endswith((".localhost", ".local")):
            raise WebhookUrlNotAllowed("the URL's host is local (the endpoint may allow_private)")
    return url


def is_public(address: IpAddress) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        return is_public(mapped)
    return address.is_global and not address.is_multicast


async def check_resolved(url: str, policy: UrlPolicy) -> str | None:
    """Why the URL's host may not be sent to now (one of its addresses is not public),
    or None. A host that does not resolve is left to the request to fail."""
    if policy.allow_private:
        return None
    host = urlsplit(url).hostname or ""
    literal = _ip(host)
    if literal is not None:
        return None if is_public(literal) else "the host is not a public address"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    for info in infos:
        address = _ip(str(info[4][0]))
        if address is None or not is_public(address):
            return f"the host resolves to a non-public address ({info[4][0]})"
    return None


def _ip(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
