import random

import httpx
import pytest

from riskpulse.streams.alerts.webhooks import (
    WebhookVerificationError, backoff_s, post_once, sign, signed_headers, verify,
)

# The Standard Webhooks reference vector (same in svix's and standard-webhooks' libraries).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TS = 1614265330
BODY = b'{"test": 2432232314}'
EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_reference_vector():
    assert sign(SECRET, MSG_ID, TS, BODY) == EXPECTED
    assert sign(SECRET.removeprefix("whsec_"), MSG_ID, TS, BODY) == EXPECTED


def test_verify_accepts_and_rejects():
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(TS), "webhook-signature": f"v1,bm9wZQ== {EXPECTED}"}
    verify(SECRET, headers, BODY, now=TS + 10)
    verify(SECRET, {k.upper(): v for k, v in headers.items()}, BODY, now=TS)
    with pytest.raises(WebhookVerificationError, match="no webhook-signature matches"):
        verify(SECRET, headers, BODY + b" ", now=TS)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, headers, BODY, now=TS + 301)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, headers, BODY, now=TS - 301)
    with pytest.raises(WebhookVerificationError, match="missing header webhook-signature"):
        verify(SECRET, {"webhook-id": MSG_ID, "webhook-timestamp": str(TS)}, BODY, now=TS)
    with pytest.raises(WebhookVerificationError, match="no webhook-signature"):
        verify("whsec_" + "QUJDRA==", headers, BODY, now=TS)


def test_signed_headers_round_trip():
    headers = signed_headers(SECRET, "msg_1", b"{}")
    assert headers["webhook-id"] == "msg_1" and headers["content-type"] == "application/json"
    verify(SECRET, headers, b"{}")


def test_backoff_grows_with_jitter_and_cap():
    rng = random.Random(1)
    values = [backoff_s(a, 1.0, 10.0, rng) for a in range(1, 8)]
    for attempt, v in enumerate(values, start=1):
        ceiling = min(10.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= v <= ceiling
    assert len({round(v, 6) for v in values}) == len(values)


def _client(handler):
    return httpx.Client(transport=httpx.MockTransport(handler), timeout=1)


def test_post_once_classifies_outcomes():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(int(request.url.path.strip("/")), text="nope")

    client = _client(handler)
    assert post_once(client, "http://x/200", SECRET, "msg_a", b"{}").ok
    verify(SECRET, seen[0].headers, seen[0].content)
    r500 = post_once(client, "http://x/503", SECRET, "msg_a", b"{}")
    assert (r500.ok, r500.retryable, r500.error) == (False, True, "HTTP 503: nope")
    assert post_once(client, "http://x/429", SECRET, "msg_a", b"{}").retryable
    r400 = post_once(client, "http://x/400", SECRET, "msg_a", b"{}")
    assert not r400.ok and not r400.retryable

    def boom(request):
        raise httpx.ReadTimeout("slow", request=request)

    timeout = post_once(_client(boom), "http://x/", SECRET, "msg_a", b"{}")
    assert timeout.retryable and timeout.error.startswith("timeout")
