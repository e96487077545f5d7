"""The real broker and ClickHouse server, started and stopped by `riskpulse stack`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import ServerStore
from riskpulse.streams.ops.stack import Stack, ensure_kafka_libs
from tests.fixtures.stack import free_ports, settings_env

pytestmark = pytest.mark.integration


def riskpulse(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings_env(settings)}
    return subprocess.run(
        [sys.executable, "-c", "from riskpulse.cli import main; main()", *args],
        env=env, capture_output=True, text=True, timeout=180,
    )


def running(pid: int) -> bool:
    """Alive and not a zombie (a detached server's parent exited; whoever reaps it may be slow)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cli_brings_the_stack_up_reports_it_and_stops_it(tmp_path):
    kafka, controller, native, http = free_ports(4)
    settings = Settings(home=tmp_path / "home", kafka_port=kafka, kafka_controller_port=controller,
                        clickhouse_port=native, clickhouse_http_port=http, store="server")
    stack = Stack(settings)
    try:
        up = riskpulse(settings, "stack", "up")
        assert up.returncode == 0, up.stderr
        status = riskpulse(settings, "stack", "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert f"kafka       up" in status.stdout and f"127.0.0.1:{kafka}" in status.stdout
        assert f"clickhouse  up" in status.stdout and f"127.0.0.1:{native}" in status.stdout
        pids = [service.pid for service in stack.status()]
        assert all(pids)

        again = riskpulse(settings, "stack", "up")  # idempotent: nothing new starts
        assert again.returncode == 0 and [service.pid for service in stack.status()] == pids
        migrated = riskpulse(settings, "db", "migrate")
        assert migrated.returncode == 0, migrated.stderr

        down = riskpulse(settings, "stack", "down")
        assert down.returncode == 0, down.stderr
        assert not any(running(pid) for pid in pids)
        stopped = riskpulse(settings, "stack", "status")
        assert stopped.returncode == 1 and stopped.stdout.count(" down ") == 2

        # Restart on the same home: storage is not formatted again and the tables are still there.
        meta = (tmp_path / "home" / "kafka" / "data" / "meta.properties").read_text()
        stack.up()
        assert (tmp_path / "home" / "kafka" / "data" / "meta.properties").read_text() == meta
        store = ServerStore(settings)
        store.open()
        tables = {row["name"] for row in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
        store.close()
        assert {"messages", "dead_letters"} <= tables
    finally:
        stack.down()
    assert all(not status.running for status in stack.status())


def test_stack_refuses_a_taken_port(stack, tmp_path):
    clash = Settings(home=tmp_path / "other", kafka_port=stack.kafka_port, kafka_controller_port=free_ports(1)[0])
    result = riskpulse(clash, "stack", "up")
    assert result.returncode == 1
    assert f"port {stack.kafka_port} for kafka is taken" in result.stderr


def test_topics_can_be_created_and_a_message_round_trips(stack):
    topic = f"test-roundtrip-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=6, replication_factor=1)])
        described = admin.describe_topics([topic])
        assert len(described[0]["partitions"]) == 6
    finally:
        admin.close()

    producer = KafkaProducer(bootstrap_servers=stack.bootstrap_servers, acks="all")
    sent = [producer.send(topic, key=f"news/{i % 3}".encode(), value=f"payload-{i}".encode()) for i in range(30)]
    producer.flush()
    producer.close()
    partitions = {future.get(timeout=10).partition for future in sent}

    consumer = KafkaConsumer(
        topic, bootstrap_servers=stack.bootstrap_servers, group_id=f"g-{topic}",
        auto_offset_reset="earliest", consumer_timeout_ms=10_000,
    )
    received = []
    for record in consumer:
        received.append((record.key, record.value))
        if len(received) == 30:
            break
    consumer.close()
    assert sorted(value for _, value in received) == sorted(f"payload-{i}".encode() for i in range(30))
    assert len(partitions) <= 3  # one key → one partition


def test_missing_kafka_jars_are_resolved_with_maven(tmp_path):
    libs = ensure_kafka_libs(tmp_path / "libs")
    names = {jar.name for jar in libs.glob("*.jar")}
    assert {"kafka_2.13-3.9.1.jar", "slf4j-reload4j-1.7.36.jar", "reload4j-1.2.25.jar"} <= names
    assert ensure_kafka_libs(libs) == libs  # present now: no second resolve
