import random
import stat

import httpx
import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.alerts.webhooks import (
    DEV_SECRET, WebhookSecretError, WebhookVerificationError, backoff_s, check_targets, post_once, retry_after_s,
    secret_key, secret_path, sign, signed_headers, verify, webhook_secret,
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


def test_retry_after_header_forms():
    assert retry_after_s("120") == 120.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_s(None) is None and retry_after_s("soon") is None


def test_429_and_503_carry_retry_after_but_400_does_not():
    def handler(request):
        status = int(request.url.path.strip("/"))
        return httpx.Response(status, headers={"retry-after": "30"})

    client = _client(handler)
    assert post_once(client, "http://x/429", SECRET, "m", b"{}").retry_after_s == 30.0
    assert post_once(client, "http://x/503", SECRET, "m", b"{}").retry_after_s == 30.0
    assert post_once(client, "http://x/400", SECRET, "m", b"{}").retry_after_s is None


def test_backoff_stays_finite_after_thousands_of_attempts():
    assert backoff_s(5000, 2.0, 300.0, random.Random(0)) <= 300.0


def test_per_install_secret_is_generated_once_private_and_kept(tmp_path):
    settings = Settings(home=tmp_path / "home")
    secret, source = webhook_secret(settings)
    path = secret_path(settings)
    assert source == str(path) and secret.startswith("whsec_") and len(secret_key(secret)) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert webhook_secret(settings) == (secret, source)
    assert webhook_secret(Settings(home=tmp_path / "other"))[0] != secret     # per install
    assert webhook_secret(Settings(home=tmp_path / "home", webhook_secret=SECRET)) == (SECRET, "RISKPULSE_WEBHOOK_SECRET")
    assert sorted(p.name for p in path.parent.iterdir()) == ["webhook_secret"]  # no draft left behind


def test_unwritable_home_names_the_path_and_the_setting(tmp_path):
    home = tmp_path / "home"
    home.write_text("a file, not a directory")
    with pytest.raises(WebhookSecretError, match="webhook_secret.*RISKPULSE_WEBHOOK_SECRET"):
        webhook_secret(Settings(home=home))


def test_development_secret_is_refused_off_loopback():
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]:9/hook", "http://127.9.9.9/h"):
        check_targets([url], DEV_SECRET)
    with pytest.raises(WebhookSecretError, match="https://risk.example.com/hook.*RISKPULSE_WEBHOOK_SECRET"):
        check_targets(["http://127.0.0.1/ok", "https://risk.example.com/hook"], DEV_SECRET)
    check_targets(["https://risk.example.com/hook"], SECRET)
    sent = []
    refused = post_once(_client(lambda r: sent.append(r) or httpx.Response(200)), "http://10.1.2.3/hook",
                        DEV_SECRET, "m", b"{}")
    assert not refused.ok and not refused.retryable and "development secret" in refused.error
    assert sent == []   # nothing signed with the public value left the machine


def test_dispatcher_refuses_to_start_with_the_development_secret_and_a_remote_receiver():
    from riskpulse.streams.alerts.dispatcher import Dispatcher
    from riskpulse.streams.alerts.rules import Rule, RuleSet, WebhookTarget
    from tests.fakes import FakeAlertRepo

    rules = RuleSet(rules=(Rule(name="r", key=("topic",), window_s=60,
                                webhooks=(WebhookTarget(url="https://hooks.bank.example/riskpulse"),)),))
    with pytest.raises(WebhookSecretError, match="development secret"):
        Dispatcher(Settings(webhook_secret=DEV_SECRET), rules, FakeAlertRepo())
