"""Who may open the dashboard, and what each may do there.

On loopback only local users can reach the page, so no login is asked (they get
``settings.dashboard_loopback_role``, admin by default). Bound to any other address, the page asks
for a user from ``settings.dashboard_users``: comma-separated ``user:role:pbkdf2_sha256$iterations$salt$hash``
entries (make one with ``riskpulse dashboard hash-password USER --role ROLE``). Plain passwords are
never stored.

Roles, each including the one before: **viewer** reads every page; **analyst** also labels messages
and acknowledges alerts; **admin** also promotes models and reads the audit trail (users and rules
are files an admin edits: RISKPULSE_DASHBOARD_USERS and the rules YAML). An entry in the older
``user:hash`` form is an **analyst**: exactly what such a user could do before roles existed (label
and acknowledge), and nobody becomes admin without an entry that says so.

Failed logins are limited per user and per client address (:class:`LoginLimiter`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from riskpulse.core import RiskPulseError

ALGORITHM = "pbkdf2_sha256"
DEFAULT_ITERATIONS = 260_000
LOOPBACK_NAMES = {"localhost", "ip6-localhost"}
ROLES = ("viewer", "analyst", "admin")  # each may do everything the one before may
LEGACY_ROLE = "analyst"  # of a `user:hash` entry written before roles existed
# What needs more than reading, and the least role that may do it.
PERMISSIONS = {"read": "viewer", "label": "analyst", "acknowledge": "analyst", "promote": "admin", "audit": "admin"}


@dataclass(frozen=True)
class Account:
    role: str
    password_hash: str


def allowed(role: str | None, permission: str) -> bool:
    """True when ``role`` may do ``permission`` (an unknown role or permission may do nothing)."""
    if role not in ROLES or permission not in PERMISSIONS:
        return False
    return ROLES.index(role) >= ROLES.index(PERMISSIONS[permission])


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


def parse_users(spec: str) -> dict[str, Account]:
    """``user:role:hash,user2:hash2`` → {user: Account}; a bare ``user:hash`` is an analyst. Raises naming the bad entry."""
    users: dict[str, Account] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        parts = entry.split(":")
        name, encoded = parts[0], parts[-1]
        role = parts[1] if len(parts) == 3 else LEGACY_ROLE
        if len(parts) not in (2, 3) or not name or not encoded.startswith(f"{ALGORITHM}$") or encoded.count("$") != 3:
            raise AuthConfigError(
                f"dashboard user entry {name or entry[:20]!r} is not 'user:role:{ALGORITHM}$iterations$salt$hash': "
                "create it with `riskpulse dashboard hash-password USER --role ROLE`"
            )
        if role not in ROLES:
            raise AuthConfigError(f"dashboard user {name!r} has role {role!r}; roles are {', '.join(ROLES)}")
        users[name] = Account(role, encoded)
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


def check_login(users: dict[str, Account], user: str, password: str) -> str | None:
    """The user's role when ``user`` exists and ``password`` is theirs, else None (same cost for unknown users)."""
    account = users.get(user)
    if account is None:
        verify_password(password, hash_password("unused", iterations=DEFAULT_ITERATIONS, salt="timing"))
        return None
    return account.role if verify_password(password, account.password_hash) else None


class LoginLimiter:
    """At most ``max_failures`` failed logins per ``window_s`` for one user name and, separately, one client address.

    Past either limit a login is refused without checking the password until the oldest failure
    leaves the window, so guessing is slow whether one address tries many users or many addresses
    try one user. The price: anyone can lock a known user out for a minute by failing on purpose.
    One limiter per dashboard process (in memory; a restart or a second replica starts afresh).
    """

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window_s, self._clock = max_failures, window_s, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user at this address may try again; 0 when a try is allowed now."""
        now = self._clock()
        with self._lock:
            waits = [
                times[0] + self.window_s - now
                for key in (("user", user), ("address", address))
                if len(times := self._recent(key, now)) >= self.max_failures
            ]
        return max(waits, default=0.0)

    def failed(self, user: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (("user", user), ("address", address)):
                self._failures.setdefault(key, self._recent(key, now)).append(now)

    def succeeded(self, user: str) -> None:
        """A right password clears the user's failures (not the address's: one address may guess at many users)."""
        with self._lock:
            self._failures.pop(("user", user), None)


def require_users(host: str, spec: str, force: bool = False) -> dict[str, Account]:
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
