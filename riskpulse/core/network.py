"""Where a server is, as far as trusting the network goes."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_address(address: str) -> bool:
    """True for ``host[:port]`` on this machine only (127.0.0.0/8, ::1, localhost): no other machine can listen in."""
    host = (urlsplit(f"//{address.strip()}").hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
