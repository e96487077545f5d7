"""What Kafka credentials cost: producer and consumer msgs/s over PLAINTEXT, SASL_PLAINTEXT (PLAIN) and
SASL_SSL (SCRAM-SHA-256), the login check each client makes, and how soon a wrong password is reported.

    python bench/credentials.py [--messages 20000] [--rounds 3] [--json]

Starts a plain broker (the project's stack) and a SASL-only broker (tests/fixtures/secure_stack.py, a test
CA for TLS) on free loopback ports, then for each configuration, interleaved over ``--rounds`` rounds so
they share the machine's load: kafka-python's producer (acks=all, idempotent, as `riskpulse produce`)
sends the messages to a fresh topic and a consumer reads them back. Prints the median of the rounds and
the ratio to PLAINTEXT; ``--json`` prints one object per configuration.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the secured broker is the credential tests' fixture

from pydantic import SecretStr  # noqa: E402

from riskpulse.core.settings import Settings  # noqa: E402
from riskpulse.streams.ingest.producers import kafka_producer  # noqa: E402
from riskpulse.streams.kafka_auth import KafkaAuthError, check_login, kafka_python_options  # noqa: E402
from riskpulse.streams.ops.stack import KafkaService, free_ports  # noqa: E402
from tests.fixtures.secure_stack import SecureKafkaService, make_tls  # noqa: E402

USER, PASSWORD = "riskpulse", "bench-Pa55"


def produce(settings: Settings, topic: str, payloads: list[bytes]) -> float:
    producer = kafka_producer(settings)
    try:
        started = time.perf_counter()
        futures = [producer.send(topic, key=str(i % 24).encode(), value=value) for i, value in enumerate(payloads)]
        producer.flush()
        for future in futures:
            future.get(timeout=60)
        return len(payloads) / (time.perf_counter() - started)
    finally:
        producer.close()


def consume(settings: Settings, topic: str, expected: int) -> float:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, group_id=None,
                             auto_offset_reset="earliest", **kafka_python_options(settings))
    try:
        seen, started = 0, time.perf_counter()
        deadline = started + 120
        while seen < expected and time.perf_counter() < deadline:
            seen += sum(len(records) for records in consumer.poll(timeout_ms=500, max_records=5000).values())
        if seen < expected:
            raise RuntimeError(f"read {seen} of {expected} from {topic}")
        return seen / (time.perf_counter() - started)
    finally:
        consumer.close()


def login_ms(settings: Settings, tries: int = 5) -> float:
    times = []
    for _ in range(tries):
        started = time.perf_counter()
        check_login(settings)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def refusal_s(settings: Settings) -> float:
    wrong = settings.model_copy(update={"kafka_sasl_password": SecretStr("wrong")})
    started = time.perf_counter()
    try:
        kafka_producer(wrong)
    except KafkaAuthError:
        return time.perf_counter() - started
    raise RuntimeError("a wrong password was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-credentials-"))
    plain_port, plain_controller, sasl_port, sasl_controller, ssl_port = free_ports(5)
    tls = make_tls(home / "tls")
    plain = Settings(home=home / "plain", kafka_port=plain_port, kafka_controller_port=plain_controller)
    sasl = Settings(home=home / "sasl", kafka_port=sasl_port, kafka_controller_port=sasl_controller,
                    kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username=USER,
                    kafka_sasl_password=SecretStr(PASSWORD))
    configs = {
        "PLAINTEXT": plain,
        "SASL_PLAINTEXT PLAIN": sasl,
        "SASL_SSL SCRAM-SHA-256": sasl.model_copy(update={
            "kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_bootstrap": f"127.0.0.1:{ssl_port}", "kafka_ssl_cafile": tls["ca"]}),
    }
    brokers = [KafkaService(plain, plain.home / "kafka", home / "run"),
               SecureKafkaService(sasl, sasl.home / "kafka", home / "run-sasl", users={USER: PASSWORD},
                                  ssl_port=ssl_port, tls=tls)]
    payloads = [json.dumps({"id": f"m-{i}", "source": "news", "text": "Regional bank shares slide " * 8}).encode()
                for i in range(args.messages)]
    results: dict[str, dict[str, list[float]]] = {name: {"produce": [], "consume": []} for name in configs}
    try:
        for broker in brokers:
            broker.start(120)
        for _ in range(args.rounds):
            for name, settings in configs.items():
                topic = f"bench-{uuid.uuid4().hex[:8]}"
                results[name]["produce"].append(produce(settings, topic, payloads))
                results[name]["consume"].append(consume(settings, topic, len(payloads)))
        rows = []
        for name, settings in configs.items():
            rows.append({
                "config": name, "messages": args.messages, "rounds": args.rounds,
                "produce_msgs_s": statistics.median(results[name]["produce"]),
                "consume_msgs_s": statistics.median(results[name]["consume"]),
                "login_check_ms": login_ms(settings),
                "wrong_password_error_s": refusal_s(settings) if settings.kafka_security_protocol != "PLAINTEXT" else None,
            })
    finally:
        for broker in brokers:
            broker.stop(30)
    base = rows[0]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    print(f"{'config':<24} {'produce msg/s':>14} {'ratio':>6} {'consume msg/s':>14} {'ratio':>6} {'login ms':>9} {'wrong pw s':>10}")
    for row in rows:
        wrong = f"{row['wrong_password_error_s']:.2f}" if row["wrong_password_error_s"] is not None else "-"
        print(f"{row['config']:<24} {row['produce_msgs_s']:>14,.0f} {row['produce_msgs_s'] / base['produce_msgs_s']:>6.2f} "
              f"{row['consume_msgs_s']:>14,.0f} {row['consume_msgs_s'] / base['consume_msgs_s']:>6.2f} "
              f"{row['login_check_ms']:>9.1f} {wrong:>10}")


if __name__ == "__main__":
    main()
