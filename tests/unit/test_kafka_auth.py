"""Kafka credentials from settings reach every kind of client (the real broker is in tests/integration/test_credentials.py)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import certifi
import pytest
from faust.auth import SASLCredentials, SSLCredentials
from pydantic import SecretStr

from riskpulse.core.network import is_loopback_address
from riskpulse.core.settings import Settings
from riskpulse.streams.kafka_auth import KafkaAuthError, check_login, faust_credentials, kafka_python_options
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.worker.app import create_app


def sasl(**extra) -> Settings:
    return Settings(**{"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "svc",
                       "kafka_sasl_password": SecretStr("pw"), **extra})


def test_plaintext_is_the_default_and_adds_nothing():
    assert kafka_python_options(Settings()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None
    check_login(Settings())  # nothing to check, no broker contacted


def test_sasl_options_for_kafka_python_and_faust():
    settings = sasl(kafka_sasl_mechanism="SCRAM-SHA-512")
    assert kafka_python_options(settings) == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc", "sasl_plain_password": "pw",
    }
    credentials = faust_credentials(settings)
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value, credentials.username, credentials.password) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-512", "svc", "pw")
    assert credentials.ssl_context is None
    assert "pw" not in repr(credentials) and "pw" not in repr(settings)


def test_sasl_ssl_carries_a_context_and_the_ca():
    ca = Path(certifi.where())  # any real PEM bundle
    settings = sasl(kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=ca, kafka_ssl_check_hostname=False)
    options = kafka_python_options(settings)
    assert options["security_protocol"] == "SASL_SSL" and options["ssl_cafile"] == str(ca)
    assert options["ssl_check_hostname"] is False
    credentials = faust_credentials(settings)
    assert credentials.protocol.value == "SASL_SSL"
    assert isinstance(credentials.ssl_context, ssl.SSLContext) and credentials.ssl_context.check_hostname is False


def test_ssl_only_gives_faust_ssl_credentials():
    credentials = faust_credentials(Settings(kafka_security_protocol="SSL"))
    assert isinstance(credentials, SSLCredentials) and credentials.context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("settings, message", [
    (Settings(kafka_security_protocol="SASL_SSL"), "RISKPULSE_KAFKA_SASL_USERNAME"),
    (sasl(kafka_sasl_password=None), "RISKPULSE_KAFKA_SASL_PASSWORD"),
    (Settings(kafka_security_protocol="SSL", kafka_ssl_certfile="/nonexistent.pem"), "needs its key"),
    (Settings(kafka_security_protocol="SSL", kafka_ssl_cafile="/nonexistent/ca.pem"), "not a readable file"),
])
def test_settings_that_cannot_log_in_are_refused_before_any_connection(settings, message):
    with pytest.raises(KafkaAuthError, match=message):
        kafka_python_options(settings)
    with pytest.raises(KafkaAuthError, match=message):
        check_login(settings)


def test_worker_and_alerts_apps_log_in_with_the_settings(tmp_path):
    app = create_app(sasl(home=tmp_path))
    assert isinstance(app.conf.broker_credentials, SASLCredentials)
    assert app.conf.broker_credentials.username == "svc"


@pytest.mark.parametrize("address, local", [
    ("127.0.0.1:9092", True), ("localhost:9092", True), ("[::1]:9092", True), ("127.0.0.5:1", True),
    ("10.0.0.1:9092", False), ("kafka.bank.example:9093", False), ("0.0.0.0:9092", False),
])
def test_loopback_addresses(address, local):
    assert is_loopback_address(address) is local


def test_plaintext_to_another_machine_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="riskpulse.kafka"):
        check_login(Settings(kafka_bootstrap="127.0.0.1:9092"))
        assert not caplog.records
        check_login(Settings(kafka_bootstrap="127.0.0.1:9092,kafka-2.bank.example:9092"))
    (record,) = caplog.records
    assert "kafka-2.bank.example:9092" in record.getMessage() and "RISKPULSE_KAFKA_SECURITY_PROTOCOL" in record.getMessage()


def test_clickhouse_client_gets_tls_options_and_open_logins_are_warned_about(caplog, tmp_path):
    secure = ServerStore(Settings(clickhouse_host="ch.bank.example", clickhouse_secure=True, clickhouse_verify=False,
                                  clickhouse_ca_certs=tmp_path / "ca.pem"))
    connection = secure._connect("riskpulse").connection  # the driver connects lazily: nothing is contacted
    assert (connection.secure_socket, connection.verify_cert) == (True, False)
    assert connection.ssl_options == {"ca_certs": str(tmp_path / "ca.pem")}
    assert ServerStore(Settings())._connect("riskpulse").connection.secure_socket is False
    with caplog.at_level(logging.WARNING, logger="riskpulse.store"):
        ServerStore(Settings())._warn_if_open()  # loopback: nothing to say
        assert not caplog.records
        ServerStore(Settings(clickhouse_host="ch.bank.example"))._warn_if_open()
        ServerStore(Settings(clickhouse_host="ch.bank.example", clickhouse_user="rp",
                             clickhouse_password=SecretStr("pw")))._warn_if_open()
        ServerStore(secure.settings.model_copy(update={"clickhouse_user": "rp", "clickhouse_password": SecretStr("pw")})
                    )._warn_if_open()  # TLS and a password of its own: nothing to say
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert "'default' without a password" in messages[0] and "clear text" in messages[1]


def test_login_check_runs_inside_an_event_loop_too():
    """From inside a running loop (an agent, a web view) the check gets a loop of its own instead of failing."""
    import asyncio

    closed = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="svc",
                      kafka_sasl_password=SecretStr("pw"), kafka_bootstrap="127.0.0.1:1")  # nothing listens: nothing to refuse

    async def inside() -> None:
        check_login(closed, timeout_s=1)

    asyncio.run(inside())
    check_login(closed, timeout_s=1)
