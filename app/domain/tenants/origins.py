"""The browser origins a tenant lists for CORS, checked and written as browsers send them.

An origin is ``scheme://host[:port]``, matched exactly against the ``Origin`` header.
It is stored in the form browsers send: scheme and host in lower case, no default port.
No wildcard is accepted: each origin that may call with the tenant's keys is listed, so a
key read out of a page cannot be used from a look-alike subdomain. ``http`` is accepted
for loopback hosts only (local development): a page served over plain http elsewhere can
be rewritten on its way to the browser, key and all.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import urlsplit

from pydantic_core import PydanticCustomError

INVALID_ORIGIN: Final = "invalid_origin"
MAX_ORIGINS: Final = 50
MAX_ORIGIN_LENGTH: Final = 300
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LABEL: Final = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _refuse(reason: str) -> PydanticCustomError:
    return PydanticCustomError(INVALID_ORIGIN, "not an origin: {reason}", {"reason": reason})


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_host(host: str) -> None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise _refuse("the IPv6 address is not valid") from None
        return
    if "*" in host:
        raise _refuse("wildcards are not accepted; list each origin")
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise _refuse("the host must be a DNS name (IDNs in xn-- form) or an IP address")


def normalise_origin(value: str) -> str:
    """``value`` as browsers send it in ``Origin``, or a ``PydanticCustomError``
    (``invalid_origin``) saying what is wrong."""
    if value == "*" or value == "null":
        raise _refuse(f"{value!r} is not accepted; list each origin")
    if len(value) > MAX_ORIGIN_LENGTH:
        raise _refuse(f"longer than {MAX_ORIGIN_LENGTH} characters")
    if not value.isascii() or any(c.isspace() for c in value):
        raise _refuse("write it in ASCII (IDNs in xn-- form), without spaces")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _refuse("it is not a URL (an IPv6 address goes in brackets)") from None
    try:
        port = parts.port
    except ValueError:
        raise _refuse("the port is not valid") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not value.lower().startswith(f"{scheme}://"):
        raise _refuse("it must start with https:// (or http:// for a loopback host)")
    if parts.username is not None or parts.password is not None:
        raise _refuse("it must not carry a user name or password")
    if parts.path or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise _refuse("an origin has no path, query or fragment, not even a trailing /")
    netloc = parts.netloc.lower()
    host = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    if not host:
        raise _refuse("it has no host")
    _check_host(host)
    if scheme == "http" and not _is_loopback(host):
        raise _refuse("http:// is accepted for loopback hosts only; use https://")
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    if port == 0:
        raise _refuse("the port is not valid")
    return f"{scheme}://{host}:{port}"


def normalise_origins(values: list[str]) -> list[str]:
    """Each origin checked and normalised, once each, sorted (stored and compared so)."""
    return sorted({normalise_origin(value) for value in values})
