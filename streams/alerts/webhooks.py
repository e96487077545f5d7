"""Standard Webhooks signing and verification, and one delivery attempt over HTTP.

Signature: ``v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>`` where the key is
the base64 part of a ``whsec_…`` secret. The ``webhook-id`` stays the same across retries,
so receivers use it as the idempotency key; the timestamp is the attempt's own, so a
receiver rejects replays older than its tolerance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from riskpulse.core import RiskPulseError

PREFIX = "whsec_"
RETRYABLE_STATUS = {408, 425, 429}


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


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retryable: bool
    error: str


def post_once(client: httpx.Client, url: str, secret: str, msg_id: str, body: bytes) -> Attempt:
    """One signed POST; timeouts, connection errors, 5xx and 408/425/429 are worth retrying."""
    try:
        resp = client.post(url, content=body, headers=signed_headers(secret, msg_id, body))
    except httpx.TimeoutException as exc:
        return Attempt(False, True, f"timeout: {type(exc).__name__} {exc}")
    except httpx.TransportError as exc:
        return Attempt(False, True, f"{type(exc).__name__}: {exc}")
    if 200 <= resp.status_code < 300:
        return Attempt(True, False, "")
    error = f"HTTP {resp.status_code}: {resp.text[:200]}"
    return Attempt(False, resp.status_code >= 500 or resp.status_code in RETRYABLE_STATUS, error)


def backoff_s(attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(cap_s, base_s * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
