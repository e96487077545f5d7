"""Dashboard access: password hashing, the user list, when a login is required, the CLI helpers."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from riskpulse.dashboards import auth
from riskpulse.dashboards.cli import streamlit_command
from riskpulse.dashboards.cli import app as dashboard_app
from riskpulse.core.settings import Settings


def test_hash_roundtrip_and_wrong_password():
    encoded = auth.hash_password("s3cret!", iterations=1000)
    algorithm, iterations, salt, digest = encoded.split("$")
    assert (algorithm, iterations) == ("pbkdf2_sha256", "1000") and len(salt) == 32 and digest
    assert "s3cret!" not in encoded
    assert auth.verify_password("s3cret!", encoded)
    assert not auth.verify_password("s3cret", encoded)
    assert not auth.verify_password("", encoded)
    assert auth.hash_password("same", iterations=1000) != auth.hash_password("same", iterations=1000)


def test_digest_is_standard_pbkdf2_hmac_sha256():
    # RFC 7914 section 11 vector: PBKDF2-HMAC-SHA256("passwd", "salt", c=1), first 32 bytes, base64.
    expected = base64.b64encode(bytes.fromhex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"))
    assert auth.hash_password("passwd", iterations=1, salt="salt") == f"pbkdf2_sha256$1$salt${expected.decode()}"


@pytest.mark.parametrize("bad", ["", "pbkdf2_sha256$x$salt$hash", "md5$1$salt$hash", "pbkdf2_sha256$0$s$h", "nohash"])
def test_malformed_hashes_never_verify(bad):
    assert not auth.verify_password("anything", bad)


def test_parse_users_and_check_login():
    spec = (f"ann:{auth.hash_password('pw-ann', iterations=1000)}, bob:admin:{auth.hash_password('pw-bob', iterations=1000)},"
            f"vic:viewer:{auth.hash_password('pw-vic', iterations=1000)}")
    users = auth.parse_users(spec)
    assert {name: account.role for name, account in users.items()} == {"ann": "analyst", "bob": "admin", "vic": "viewer"}
    assert auth.check_login(users, "ann", "pw-ann") == "analyst"  # the old user:hash form: an analyst
    assert auth.check_login(users, "bob", "pw-bob") == "admin"
    assert auth.check_login(users, "ann", "pw-bob") is None
    assert auth.check_login(users, "mallory", "pw-ann") is None
    with pytest.raises(auth.AuthConfigError, match="hash-password"):
        auth.parse_users("ann:plaintext")
    with pytest.raises(auth.AuthConfigError, match="role 'root'.*viewer, analyst, admin"):
        auth.parse_users(f"ann:root:{auth.hash_password('pw', iterations=1000)}")
    with pytest.raises(auth.AuthConfigError, match="user:role:"):
        auth.parse_users(f"ann:admin:extra:{auth.hash_password('pw', iterations=1000)}")
    assert auth.parse_users("") == {}


@pytest.mark.parametrize("role, may", [
    ("viewer", {"read"}),
    ("analyst", {"read", "label", "acknowledge"}),
    ("admin", {"read", "label", "acknowledge", "promote", "audit"}),
    (None, set()),
    ("root", set()),
])
def test_roles_grant_what_they_say(role, may):
    assert {permission for permission in auth.PERMISSIONS if auth.allowed(role, permission)} == may
    assert not auth.allowed(role, "delete everything")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_login_limit_per_user_across_addresses():
    clock = Clock()
    limiter = auth.LoginLimiter(max_failures=5, window_s=60, clock=clock)
    for i in range(5):
        assert limiter.retry_after("ann", f"10.0.0.{i}") == 0
        limiter.failed("ann", f"10.0.0.{i}")
        clock.now += 1
    assert limiter.retry_after("ann", "10.0.0.99") == pytest.approx(55)  # first failure at 1000, now 1005
    assert limiter.retry_after("bob", "10.0.0.99") == 0  # other users, from a fresh address, are not held up
    clock.now = 1060.5  # the first failure left the window
    assert limiter.retry_after("ann", "10.0.0.99") == 0


def test_login_limit_per_address_across_users():
    clock = Clock()
    limiter = auth.LoginLimiter(max_failures=5, window_s=60, clock=clock)
    for i in range(5):
        limiter.failed(f"user{i}", "203.0.113.7")
    assert limiter.retry_after("somebody-else", "203.0.113.7") == pytest.approx(60)
    assert limiter.retry_after("somebody-else", "203.0.113.8") == 0
    limiter.succeeded("user0")  # a right password clears the user, not the address guessing at many users
    assert limiter.retry_after("user0", "203.0.113.7") > 0
    assert limiter.retry_after("user0", "198.51.100.1") == 0


def test_four_failures_then_success_resets_the_user():
    clock = Clock()
    limiter = auth.LoginLimiter(max_failures=5, window_s=60, clock=clock)
    for _ in range(4):
        limiter.failed("ann", "a")
    limiter.succeeded("ann")
    for _ in range(4):
        limiter.failed("ann", "b")
    assert limiter.retry_after("ann", "b") == 0


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
    ("0.0.0.0", False), ("10.1.2.3", False), ("::", False), ("dashboard.example.com", False),
])
def test_loopback_detection(host, loopback):
    assert auth.is_loopback(host) is loopback
    assert auth.login_required(host) is (not loopback)
    assert auth.login_required(host, force=True)


def test_off_loopback_without_users_is_refused():
    with pytest.raises(auth.AuthConfigError, match="0.0.0.0.*RISKPULSE_DASHBOARD_USERS"):
        auth.require_users("0.0.0.0", "")
    assert auth.require_users("127.0.0.1", "") == {}
    spec = f"ann:{auth.hash_password('pw', iterations=1000)}"
    assert set(auth.require_users("0.0.0.0", spec)) == {"ann"}


def test_hash_password_command(monkeypatch):
    answers = iter(["correct horse", "correct horse"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    result = CliRunner().invoke(dashboard_app, ["hash-password", "ann", "--role", "viewer"])
    assert result.exit_code == 0, result.output
    user, role, encoded = result.output.strip().split(":")
    assert (user, role) == ("ann", "viewer") and auth.verify_password("correct horse", encoded)
    assert auth.parse_users(result.output.strip())["ann"].role == "viewer"

    answers = iter(["one", "two"])
    result = CliRunner().invoke(dashboard_app, ["hash-password", "ann"])
    assert result.exit_code != 0 and "differ" in result.output


def test_streamlit_command_binds_where_settings_say(tmp_path):
    argv, env = streamlit_command(Settings(dashboard_host="127.0.0.2", dashboard_port=8611))
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("dashboards/app.py")
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert flags == {
        "--server.headless": "true", "--server.address": "127.0.0.2", "--server.port": "8611",
        "--browser.gatherUsageStats": "false", "--client.toolbarMode": "viewer",
    }
    assert Path(argv[4]).is_file()
    # the app's own imports resolve from any working directory with that environment
    probe = subprocess.run([sys.executable, "-c", "import riskpulse.dashboards.common, riskpulse.dashboards.views.overview"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr


@pytest.mark.parametrize("peer, forwarded, seen", [
    ("203.0.113.9", None, "203.0.113.9"),                       # a browser on another machine
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),             # its own X-Forwarded-For is not believed
    ("127.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1"),    # a reverse proxy on this machine: first hop
    (None, "198.51.100.1", "198.51.100.1"),                      # Streamlit gives no peer for localhost
    (None, None, "local"),
])
def test_client_address_believes_forwarded_for_only_from_a_local_proxy(monkeypatch, peer, forwarded, seen):
    from types import SimpleNamespace

    from riskpulse.dashboards import access

    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    monkeypatch.setattr(access.st, "context", SimpleNamespace(ip_address=peer, headers=headers))
    assert access.client_address() == seen
