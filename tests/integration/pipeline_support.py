"""Helpers for the pipeline tests: real worker subprocesses, a real-text corpus with
malformed records mixed in, and waiting on the consumer group's committed offsets."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kafka.errors import KafkaError

from riskpulse.core.schema import Message
from riskpulse.core.settings import Settings
from riskpulse.streams.topics import group_lag
from tests.fixtures.models import shared_data
from tests.fixtures.stack import free_ports, settings_env

CLI = [sys.executable, "-c", "from riskpulse.cli import main; main()"]
STORED_LINE = re.compile(r"stored ((?:\S+\[\d+\]@\d+-\d+ ?)+):")
SPAN = re.compile(r"(\S+)\[(\d+)\]@(\d+)-(\d+)")


def run_settings(base: Settings, tag: str, registry: Path, **overrides) -> Settings:
    """Settings of one test run: its own topics, consumer group and web port."""
    return base.model_copy(
        update={
            "topic_raw": f"{tag}.raw",
            "topic_scored": f"{tag}.scored",
            "topic_dead_letter": f"{tag}.dead-letter",
            "topic_alerts": f"{tag}.alerts",
            "topic_control": f"{tag}.control",
            "consumer_group": f"{tag}-workers",
            "registry_dir": registry,
            "device": "cpu",
            "web_port": free_ports(1)[0],
            "worker_session_timeout_s": 8.0,
            **overrides,
        }
    )


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKPULSE_")}
    env.update(settings_env(settings))
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="2")
    return env


@dataclass
class Worker:
    """`riskpulse worker` as a child process, logging to a file."""

    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, settings: Settings, log: Path, web_port: int | None = None, args: tuple[str, ...] = ()) -> "Worker":
        if web_port is not None:
            settings = settings.model_copy(update={"web_port": web_port})
        fh = log.open("ab")
        proc = subprocess.Popen([*CLI, "worker", *args], env=child_env(settings), stdout=fh, stderr=subprocess.STDOUT)
        fh.close()
        return cls(proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"worker exited with {self.proc.returncode}:\n{self.tail()}"

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while "[^Worker]: Ready" not in self.text():
            self.assert_alive()
            assert time.monotonic() < deadline, f"worker not ready after {timeout}s:\n{self.tail()}"
            time.sleep(0.5)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def stored_partitions(self) -> set[int]:
        """Raw partitions this worker stored batches from, read from its log."""
        parts = set()
        for spans in STORED_LINE.findall(self.text()):
            parts |= {int(p) for _, p, _, _ in SPAN.findall(spans)}
        return parts


def real_texts(n: int) -> list[str]:
    """Real financial texts from the shared datasets (tweets, sentences, complaints; then, past ~6,700, the
    training tweets)."""
    texts: list[str] = []
    for rel in ("twitter-financial-news-topic/validation.csv", "twitter-financial-news-sentiment/validation.csv",
                "financial-phrasebank/test.csv", "cfpb-complaints-sample/test.csv",
                "twitter-financial-news-topic/train.csv", "twitter-financial-news-sentiment/train.csv"):
        with (shared_data() / rel).open(newline="", encoding="utf-8") as fh:
            texts += [row["text"] for row in csv.DictReader(fh) if row["text"].strip()]
        if len(texts) >= n:
            return texts[:n]
    raise AssertionError(f"only {len(texts)} texts in {shared_data()}")


def good_messages(tag: str, n: int) -> list[Message]:
    """n messages with distinct ids over 24 source/channel keys (so all partitions get data)."""
    now = datetime.now(timezone.utc)
    return [
        Message(id=f"{tag}-{i:05d}", source="news" if i % 3 else "customer", channel=f"desk-{i % 24}", ts=now, text=text)
        for i, text in enumerate(real_texts(n))
    ]


def malformed_records(tag: str) -> dict[str, list[bytes]]:
    """Ten records of each kind the worker must dead-letter."""
    ts = datetime.now(timezone.utc).isoformat()
    kinds: dict[str, list[bytes]] = {"bad json": [], "missing text": [], "oversized": [], "invalid utf-8": [], "wrong types": []}
    for i in range(10):
        kinds["bad json"].append(f'{{"id": "{tag}-bad-{i}", "text": "cut off'.encode())
        kinds["missing text"].append(json.dumps({"id": f"{tag}-nt-{i}", "source": "news", "ts": ts}).encode())
        kinds["oversized"].append(json.dumps({"id": f"{tag}-big-{i}", "source": "news", "ts": ts, "text": "risk " * (9000 + i)}).encode())
        kinds["invalid utf-8"].append(b'{"id": "%s-utf-%d", "source": "news", "text": "caf\xe9 \xff"}' % (tag.encode(), i))
        wrong = [{"text": 42}, {"text": "ok", "ts": "yesterday"}, {"text": "ok", "source": 7}, {"text": ["a"]}, {"text": "ok", "meta": "x"}]
        kinds["wrong types"].append(json.dumps({"id": f"{tag}-wt-{i}", "source": "news", "ts": ts, **wrong[i % 5]}).encode())
    return kinds


def produce_mixed(settings: Settings, goods: list[Message], bads: list[bytes], seed: int = 7) -> None:
    """Send good and malformed records interleaved at random positions, and wait for acks."""
    from riskpulse.streams.ingest.producers import kafka_producer

    items: list[tuple[bytes, bytes]] = [(m.key, m.to_bytes()) for m in goods]
    rng = random.Random(seed)
    for j, raw in enumerate(bads):
        items.insert(rng.randrange(len(items) + 1), (f"bad/k{j % 12}".encode(), raw))
    producer = kafka_producer(settings)
    try:
        futures = [producer.send(settings.topic_raw, key=k, value=v) for k, v in items]
        producer.flush()
        for fut in futures:
            fut.get(timeout=30)
    finally:
        producer.close()


def wait_drained(settings: Settings, workers: list[Worker], timeout: float = 300) -> None:
    """Until the group has committed every produced offset (= everything is stored)."""
    deadline = time.monotonic() + timeout
    lag = None
    while time.monotonic() < deadline:
        for w in workers:
            w.assert_alive()
        try:
            lag = group_lag(settings)
        except KafkaError as exc:  # a fresh broker has no group coordinator for a moment
            if not exc.retriable:
                raise
            lag = str(exc)
        else:
            if lag and not any(lag.values()):
                return
        time.sleep(1)
    logs = "\n---\n".join(w.tail() for w in workers)
    raise AssertionError(f"group {settings.consumer_group} still lags {lag} after {timeout}s:\n{logs}")
