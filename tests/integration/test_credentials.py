"""Kafka and ClickHouse that refuse strangers: a worker and a producer with the right credentials store
every message; a wrong password is refused with a message that says so.

The broker (tests/fixtures/secure_stack.py) has only authenticated listeners: SASL_PLAINTEXT (PLAIN,
SCRAM-SHA-256/512), SASL_SSL (a test CA) and SSL that requires a client certificate signed by that CA. The ClickHouse server has a password on ``default``, a
``riskpulse`` user with its own, and a TLS native port; the worker stores over TLS.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from riskpulse.core.settings import Settings
from riskpulse.streams.ingest.producers import kafka_producer, send_messages
from riskpulse.streams.kafka_auth import KafkaAuthError
from riskpulse.streams.ops.stack import free_ports
from riskpulse.streams.store.backends import ServerStore, StoreError
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.secure_stack import SecureClickHouseService, SecureKafkaService, make_tls
from tests.integration.pipeline_support import CLI, Worker, child_env, good_messages, run_settings, wait_drained

pytestmark = pytest.mark.integration

KAFKA_USER, KAFKA_PASSWORD = "riskpulse", "kafka-Pa55"
CH_USER, CH_PASSWORD, CH_DEFAULT_PASSWORD = "riskpulse", "ch-Pa55", "default-Pa55"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The secured broker and server; yields the settings of a client that logs in to both (SASL_PLAINTEXT, TLS)."""
    home = tmp_path_factory.mktemp("secure-stack")
    kafka, controller, kafka_ssl, kafka_mtls, native, http, native_tls = free_ports(7)
    tls = make_tls(home / "tls")
    settings = Settings(
        home=home, store="server", kafka_port=kafka, kafka_controller_port=controller,
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username=KAFKA_USER, kafka_sasl_password=SecretStr(KAFKA_PASSWORD),
        clickhouse_port=native_tls, clickhouse_http_port=http, clickhouse_secure=True, clickhouse_ca_certs=tls["ca"],
        clickhouse_user=CH_USER, clickhouse_password=SecretStr(CH_PASSWORD),
    )
    run = home / "run"
    broker = SecureKafkaService(settings, home / "kafka", run, users={KAFKA_USER: KAFKA_PASSWORD}, ssl_port=kafka_ssl,
                                tls=tls, mtls_port=kafka_mtls)
    server = SecureClickHouseService(
        settings.model_copy(update={"clickhouse_port": native}), home / "clickhouse", run,
        default_password=CH_DEFAULT_PASSWORD, user=CH_USER, password=CH_PASSWORD, secure_port=native_tls, tls=tls,
    )
    try:
        broker.start(120)
        server.start(60)
        yield {"settings": settings, "tls": tls, "kafka_ssl_port": kafka_ssl, "kafka_mtls_port": kafka_mtls,
               "plain_native_port": native}
    finally:
        server.stop(30)
        broker.stop(30)


def _run(base: Settings, tmp_path: Path, tag: str, **overrides) -> Settings:
    return run_settings(base, tag, tmp_path / "registry", **overrides)


def _stored(settings: Settings, ids: list[str]) -> int:
    store = ServerStore(settings)
    store.open()
    try:
        return store.query("SELECT count() AS n FROM messages WHERE id IN %(ids)s", {"ids": tuple(ids)})[0]["n"]
    finally:
        store.close()


def _over(secure: dict, protocol: str, mechanism: str = "PLAIN") -> dict:
    """Settings overrides for one of the broker's listeners."""
    overrides = {"kafka_security_protocol": protocol, "kafka_sasl_mechanism": mechanism}
    if protocol == "SASL_SSL":
        overrides.update(kafka_bootstrap=f"127.0.0.1:{secure['kafka_ssl_port']}", kafka_ssl_cafile=secure["tls"]["ca"])
    if protocol == "SSL":
        overrides.update(kafka_bootstrap=f"127.0.0.1:{secure['kafka_mtls_port']}", kafka_ssl_cafile=secure["tls"]["ca"],
                         kafka_ssl_certfile=secure["tls"]["client"], kafka_ssl_keyfile=secure["tls"]["client-key"],
                         kafka_sasl_username=None, kafka_sasl_password=None)
    return overrides


@pytest.mark.parametrize("protocol, mechanism", [("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-256"), ("SSL", "-")])
def test_producer_and_worker_with_credentials_store_every_message(secure, tmp_path, protocol, mechanism):
    """Each listener: the worker's faust app (SASLCredentials / SSLCredentials) and kafka-python's producer."""
    tag = f"cred-{protocol.lower()}-{uuid.uuid4().hex[:6]}"
    overrides = _over(secure, protocol, mechanism if mechanism != "-" else "PLAIN")
    settings = _run(secure["settings"], tmp_path, tag, **overrides)
    assert ensure_topics(settings)
    messages = good_messages(tag, 300)
    assert send_messages(messages, settings) == 300
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    try:
        worker.wait_ready()
        wait_drained(settings, [worker], timeout=180)
    finally:
        worker.stop()
    assert _stored(settings, [m.id for m in messages]) == 300


def test_alerts_service_joins_over_sasl_and_refuses_a_wrong_password(secure, tmp_path):
    """`riskpulse alerts run` (its own faust app, consumer group and store tables) with the shipped rules."""
    settings = _run(secure["settings"], tmp_path, f"cred-alerts-{uuid.uuid4().hex[:6]}",
                    alerts_web_port=free_ports(1)[0], alerts_consumer_group=f"cred-alerts-{uuid.uuid4().hex[:6]}")
    good = _alerts(settings, tmp_path / "alerts.log")
    try:
        deadline = time.monotonic() + 120
        while "[^Worker]: Ready" not in good.log.read_text(errors="replace"):
            assert good.proc.poll() is None, good.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, good.log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
    finally:
        good.proc.terminate()
        good.proc.wait(60)
    bad = _alerts(settings.model_copy(update={"kafka_sasl_password": SecretStr("guess")}), tmp_path / "bad.log")
    assert bad.proc.wait(120) == 1
    assert f"refused user '{KAFKA_USER}'" in bad.log.read_text(errors="replace")


def _alerts(settings: Settings, log: Path) -> Worker:
    env = child_env(settings)
    with log.open("ab") as out:
        proc = subprocess.Popen([*CLI, "alerts", "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
    return Worker(proc, log)


def test_wrong_kafka_password_is_refused_by_name(secure, tmp_path):
    settings = _run(secure["settings"], tmp_path, f"cred-bad-{uuid.uuid4().hex[:6]}",
                    kafka_sasl_password=SecretStr("not-the-password"))
    with pytest.raises(KafkaAuthError, match=f"refused user '{KAFKA_USER}' .*SASL_PLAINTEXT, PLAIN"):
        ensure_topics(settings)
    with pytest.raises(KafkaAuthError, match="refused user"):
        kafka_producer(settings)
    worker = Worker.start(settings, tmp_path / "worker.log", args=("--null-model",))
    assert worker.proc.wait(120) != 0
    assert f"refused user '{KAFKA_USER}'" in worker.text()
    assert "not-the-password" not in worker.text()


def test_scram_sha_512_logs_in_and_a_wrong_password_is_refused(secure, tmp_path):
    settings = _run(secure["settings"], tmp_path, f"cred-512-{uuid.uuid4().hex[:6]}", **_over(secure, "SASL_PLAINTEXT", "SCRAM-SHA-512"))
    assert ensure_topics(settings)
    with pytest.raises(KafkaAuthError, match="SCRAM-SHA-512"):
        ensure_topics(settings.model_copy(update={"kafka_sasl_password": SecretStr("guess")}))


def test_tls_without_a_client_certificate_or_trusted_ca_is_refused(secure, tmp_path):
    mtls = _run(secure["settings"], tmp_path, "cred-mtls", **_over(secure, "SSL"))
    with pytest.raises(KafkaAuthError, match="TLS to Kafka"):
        ensure_topics(mtls.model_copy(update={"kafka_ssl_certfile": None, "kafka_ssl_keyfile": None}))
    with pytest.raises(KafkaAuthError, match="CERTIFICATE_VERIFY_FAILED"):
        ensure_topics(mtls.model_copy(update={"kafka_ssl_cafile": None}))  # the system CAs do not know the test CA


def test_client_without_credentials_is_refused(secure, tmp_path):
    """A client left on the default PLAINTEXT cannot talk to a SASL-only broker (and says why)."""
    settings = _run(secure["settings"], tmp_path, "cred-none", kafka_security_protocol="SASL_PLAINTEXT",
                    kafka_sasl_username=None, kafka_sasl_password=None)
    with pytest.raises(KafkaAuthError, match="RISKPULSE_KAFKA_SASL_USERNAME"):
        ensure_topics(settings)


def test_clickhouse_store_opens_with_password_over_tls_only(secure):
    good = secure["settings"]
    store = ServerStore(good)
    store.open()
    assert store.query("SELECT version() AS v")[0]["v"].startswith("18.16")  # 18.16 has no currentUser()
    store.close()

    plain = good.model_copy(update={"clickhouse_secure": False, "clickhouse_port": secure["plain_native_port"]})
    without = plain.model_copy(update={"clickhouse_user": "default", "clickhouse_password": SecretStr("")})
    with pytest.raises(StoreError, match="refused user 'default': .*Password required"):
        ServerStore(without).open()
    wrong = plain.model_copy(update={"clickhouse_password": SecretStr("guess")})
    with pytest.raises(StoreError, match=f"refused user '{CH_USER}': .*Wrong password"):
        ServerStore(wrong).open()
    untrusted = good.model_copy(update={"clickhouse_ca_certs": None})  # the system CAs do not know the test CA
    with pytest.raises(StoreError, match="(?i)certificate"):
        ServerStore(untrusted).open()
