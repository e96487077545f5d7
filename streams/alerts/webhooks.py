"""Standard Webhooks signing and verification, and one delivery attempt over HTTP.

Signature: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`` where the key is
the base64 part of a ``whsec_…`` secret. The ``webhook-id`` stays the same across retries,
so receivers use it as the idempotency key; the timestamp is the attempt's own, so a
receiver rejects replays older than its tolerance.

The secret is per install: ``RISKPULSE_WEBHOOK_SECRET`` when set, otherwise one generated on
first use and kept (mode 0600) at ``<home>/secrets/webhook_secret``. The development value
that older releases shipped as the default is refused for any receiver off loopback.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import ipaddress
import logging
import os
import random
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.alerts")
PREFIX = "whsec_"
RETRYABLE_STATUS = {408, 425, 429}
# The default of RISKPULSE_WEBHOOK_SECRET before per-install secrets: public, so loopback only.
DEV_SECRET = "whsec_ZGV2LXNlY3JldC1jaGFuZ2UtbWU="


class WebhookSecretError(RiskPulseError):
    """The signing secret cannot be used for this receiver, or cannot be read or created."""


class WebhookVerificationError(RiskPulseError):
    """A request's signature or timestamp does not check out; reject the request."""


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret."""
    raw = secret[len(PREFIX):] if secret.startswith(PREFIX) else secret
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        raise RiskPulseError("webhook secret must be 'whsec_' + base64; set RISKPULSE_WEBHOOK_SECRET") from None


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret_key(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, tolerance_s: int = 300, now: float | None = None) -> None:
    """Raise :class:`WebhookVerificationError` unless the request is signed and recent."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, ts_text, signatures = lower["webhook-id"], lower["webhook-timestamp"], lower["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        ts = int(ts_text)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp is not an integer: {ts_text!r}") from None
    now = time.time() if now is None else now
    if abs(now - ts) > tolerance_s:
        raise WebhookVerificationError(f"webhook-timestamp {ts} is outside the {tolerance_s}s tolerance (replay?)")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, sig = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(sig, expected):
            return
    raise WebhookVerificationError("no webhook-signature matches the body")


def secret_path(settings: Settings) -> Path:
    return settings.home / "secrets" / "webhook_secret"


def webhook_secret(settings: Settings) -> tuple[str, str]:
    """(secret, where it comes from): the setting if set, else this install's own, made on first use."""
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value(), "RISKPULSE_WEBHOOK_SECRET"
    path = secret_path(settings)
    try:
        if not path.exists():
            _create_secret(path)
        if path.stat().st_mode & 0o077:
            log.warning("webhook secret %s is readable by other users; chmod 600 it", path)
        secret = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise WebhookSecretError(
            f"cannot read or create the webhook secret at {path}: {exc.strerror}; "
            "make RISKPULSE_HOME writable or set RISKPULSE_WEBHOOK_SECRET"
        ) from None
    secret_key(secret)  # fails clearly on a damaged file
    return secret, str(path)


def _create_secret(path: Path) -> None:
    """Write a fresh secret readable by this user only; a concurrent first run keeps whichever won."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii") + "\n")
    try:
        os.link(draft, path)  # fails if another process made one first
        log.warning("generated this install's webhook signing secret at %s; receivers verify with it "
                    "(print it with `riskpulse alerts secret`)", path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(url: str, secret: str) -> str | None:
    """Why ``url`` must not get a request signed with ``secret``, or None if it may."""
    if secret == DEV_SECRET and not is_loopback(url):
        return (f"refusing to sign a webhook to {url} with the built-in development secret (anyone can forge it): "
                "unset RISKPULSE_WEBHOOK_SECRET to use this install's own secret (`riskpulse alerts secret`), "
                "or set it to a secret of your own")
    return None


def check_targets(urls: Iterable[str], secret: str) -> None:
    """Fail before delivering anything if a receiver would get a forgeable signature."""
    problems = sorted({p for url in urls if (p := refusal(url, secret))})
    if problems:
        raise WebhookSecretError("\n".join(problems))


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retryable: bool
    error: str
    retry_after_s: float | None = None  # what the receiver asked for (Retry-After), if anything


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def post_once(client: httpx.Client, url: str, secret: str, msg_id: str, body: bytes) -> Attempt:
    """One signed POST; timeouts, connection errors, 5xx and 408/425/429 are worth retrying."""
    if reason := refusal(url, secret):
        return Attempt(False, False, reason)
    try:
        resp = client.post(url, content=body, headers=signed_headers(secret, msg_id, body))
    except httpx.TimeoutException as exc:
        return Attempt(False, True, f"timeout: {type(exc).__name__} {exc}")
    except httpx.TransportError as exc:
        return Attempt(False, True, f"{type(exc).__name__}: {exc}")
    if 200 <= resp.status_code < 300:
        return Attempt(True, False, "")
    error = f"HTTP {resp.status_code}: {resp.text[:200]}"
    retryable = resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUS
    return Attempt(False, retryable, error, retry_after_s(resp.headers.get("retry-after")) if retryable else None)


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(cap_s, base_s * 2 ** min(max(attempt - 1, 0), 60))  # hours of retries: no float overflow
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
