"""The demo's webhook receiver, without sockets: verifies, logs once per webhook-id, describes explanations."""

import json

from riskpulse.streams.alerts.receiver import WebhookReceiver, describe
from riskpulse.streams.alerts.webhooks import signed_headers

SECRET = "whsec_dGVzdC1yZWNlaXZlci1zZWNyZXQtMTIzNA=="
ALERT = {
    "alert_id": "alt_1", "key": '{"entity": "WFC"}', "status": "open", "share": 0.9, "count": 30,
    "window_start": "2026-11-24T12:10:00Z", "window_end": "2026-11-24T12:20:00Z", "baseline_mean": 0.12, "z": 6.5,
    "explanation": {
        "window": {"messages": 48, "stories": 40, "negative_share": 0.77},
        "baseline": {"messages_per_window": 8.0, "windows": 12, "negative_share": 0.1},
        "top_entities": [{"id": "WFC", "name": "Wells Fargo & Company", "messages": 48}],
        "top_sources": [{"source": "customer", "channel": "banking-app", "messages": 22}],
        "terms": [{"term": "outage", "z": 4.2}],
        "examples": [{"text": "Wells Fargo app has been down\nall morning", "confidence": 0.97, "copies": 1}],
    },
}
BODY = {"type": "riskpulse.alert.firing", "data": {"rule": "r", "severity": "critical", "schema_version": 2, "alerts": [ALERT]}}


def _receiver(tmp_path):
    return WebhookReceiver(SECRET, tmp_path / "webhooks.log")  # not started: handle() is called directly


def test_verified_request_is_logged_once_with_its_explanation(tmp_path):
    receiver = _receiver(tmp_path)
    body = json.dumps(BODY).encode()
    headers = signed_headers(SECRET, "msg_1", body)
    try:
        assert receiver.handle(headers, body) == 200
        assert receiver.handle(signed_headers(SECRET, "msg_1", body), body) == 200  # a retry
    finally:
        receiver.server.server_close()
    assert [(h.webhook_id, h.verified) for h in receiver.heard] == [("msg_1", True)]
    log = (tmp_path / "webhooks.log").read_text()
    assert log.count("VERIFIED msg_1") == 1
    assert "top entities: Wells Fargo & Company [WFC] 48" in log
    assert "example (0.97, 1 copy): Wells Fargo app has been down all morning" in log
    assert receiver.wait_for_verified(0)[0].body == BODY


def test_forged_or_stale_requests_are_rejected(tmp_path):
    receiver = _receiver(tmp_path)
    body = json.dumps(BODY).encode()
    forged = signed_headers("whsec_" + "b3RoZXItc2VjcmV0", "msg_2", body)
    stale = signed_headers(SECRET, "msg_3", body, timestamp=1)
    try:
        assert receiver.handle(forged, body) == 401
        assert receiver.handle(stale, body) == 401
        assert receiver.handle({}, body) == 401
    finally:
        receiver.server.server_close()
    assert not any(h.verified for h in receiver.heard) and len(receiver.heard) == 3
    assert receiver.wait_for_verified(0) == []
    assert (tmp_path / "webhooks.log").read_text().count("REJECTED") == 3


def test_describe_says_when_an_alert_has_no_explanation():
    lines = describe({"type": "riskpulse.alert.firing", "data": {"alerts": [{**ALERT, "explanation": {"error": "down"}}]}})
    assert lines[0].endswith("schema_version=1") and lines[-1] == "  (no explanation: down)"
