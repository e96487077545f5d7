"""Who may open the dashboard.

On loopback only local users can reach the page, so no login is asked. Bound to
any other address, the page asks for a user from ``settings.dashboard_users``:
comma-separated ``user:pbkdf2_sha256$iterations$salt$hash`` entries (make one
with ``riskpulse dashboard hash-password``). Plain passwords are never stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

from riskpulse.core import RiskPulseError

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 260_000
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class AuthConfigError(RiskPulseError):
    """The dashboard would be reachable off this machine without a usable user list."""


def hash_password(password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: str | None = None) -> str:
    """``pbkdf2_sha256$iterations$salt$hash`` for one password (salt random unless given)."""
    if not password:
        raise ValueError("password is empty: choose a non-empty password")
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations)
    return f"{ALGORITHM}${iterations}${salt}${base64.b64encode(digest).decode('ascii')}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; constant-time, False on any malformed hash."""
    try:
        algorithm, iterations, salt, expected = encoded.split("$", 3)
        rounds = int(iterations)
    except ValueError:
        return False
    if algorithm != ALGORITHM or rounds < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), rounds)
    return hmac.compare_digest(base64.b64encode(digest).decode("ascii"), expected)


def parse_users(spec: str) -> dict[str, str]:
    """``user:hash,user2:hash2`` → {user: hash}; raises naming the bad entry."""
    users: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, encoded = entry.partition(":")
        if not sep or not name or not encoded.startswith(f"{ALGORITHM}$") or encoded.count("$") != 3:
            raise AuthConfigError(
                f"dashboard user entry {name or entry[:20]!r} is not 'user:{ALGORITHM}$iterations$salt$hash': "
                "create the hash with `riskpulse dashboard hash-password`"
            )
        users[name] = encoded
    return users


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def login_required(host: str, force: bool = False) -> bool:
    """Whether the page must ask for a login when bound to ``host``."""
    return force or not is_loopback(host)


def check_login(users: dict[str, str], user: str, password: str) -> bool:
    """True when ``user`` exists and ``password`` is theirs (same cost for unknown users)."""
    encoded = users.get(user)
    if encoded is None:
        verify_password(password, hash_password("unused", iterations=DEFAULT_ITERATIONS, salt="timing"))
        return False
    return verify_password(password, encoded)


def require_users(host: str, spec: str, force: bool = False) -> dict[str, str]:
    """The user list the page checks, or an error when a login is needed but no user is configured."""
    if not login_required(host, force):
        return {}
    users = parse_users(spec)
    if not users:
        raise AuthConfigError(
            f"the dashboard is bound to {host}, which other machines can reach, but RISKPULSE_DASHBOARD_USERS "
            "is empty: add 'user:hash' entries (hash with `riskpulse dashboard hash-password`) or bind 127.0.0.1"
        )
    return users
