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
    spec = f"ann:{auth.hash_password('pw-ann', iterations=1000)}, bob:{auth.hash_password('pw-bob', iterations=1000)}"
    users = auth.parse_users(spec)
    assert set(users) == {"ann", "bob"}
    assert auth.check_login(users, "ann", "pw-ann")
    assert not auth.check_login(users, "ann", "pw-bob")
    assert not auth.check_login(users, "mallory", "pw-ann")
    with pytest.raises(auth.AuthConfigError, match="hash-password"):
        auth.parse_users("ann:plaintext")
    assert auth.parse_users("") == {}


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
    result = CliRunner().invoke(dashboard_app, ["hash-password", "ann"])
    assert result.exit_code == 0, result.output
    user, encoded = result.output.strip().split(":", 1)
    assert user == "ann" and auth.verify_password("correct horse", encoded)

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
