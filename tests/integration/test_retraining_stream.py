"""Retraining against running processes: workers hot-reload a promoted model mid-stream; a
scheduler killed mid-run leaves the champion and its run is marked failed on restart; two
schedulers on one home never run a slot twice."""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.topics import ensure_topics
from tests.fixtures.models import shared_data
from tests.fixtures.stack import free_ports
from tests.integration.pipeline_support import CLI, Worker, child_env, good_messages, produce_mixed, run_settings, wait_drained
from tests.integration.retraining_support import clone_version, private_registry, topic_rows, write_labels

pytestmark = pytest.mark.integration


def _tag() -> str:
    return f"rt{uuid.uuid4().hex[:8]}"


def _scored_count(settings: Settings) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    try:
        parts = [TopicPartition(settings.topic_scored, p) for p in consumer.partitions_for_topic(settings.topic_scored) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def _wait(condition, timeout: float, what: str, alive=()):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for proc in alive:
            proc.assert_alive()
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.3)


def test_promotion_mid_stream_scores_every_message_once_with_both_versions(stack, server_store, quick_registry, tmp_path):
    registry = private_registry(quick_registry, tmp_path / "models")
    old = registry.current()
    new = clone_version(registry, old, f"{old}-hot")
    settings = run_settings(stack, _tag(), registry.root, model_reload_check_s=0.5, batch_max_size=64)
    ensure_topics(settings)
    goods = good_messages(settings.topic_raw.split(".")[0], 3000)
    workers = [Worker.start(settings, tmp_path / f"w{i}.log", web_port=p) for i, p in enumerate(free_ports(2))]
    try:
        for w in workers:
            w.wait_ready()
        time.sleep(3)
        produce_mixed(settings, goods[:1500], [])
        count = lambda: server_store.query("SELECT count() AS n FROM messages")[0]["n"]  # noqa: E731
        _wait(lambda: count() >= 300, 300, "first scores", workers)
        registry.promote(new)
        promoted_at = time.time()
        stored_at_promotion = count()
        produce_mixed(settings, goods[1500:], [])
        wait_drained(settings, workers)
    finally:
        codes = [w.stop() for w in workers]
    assert codes == [0, 0], [w.tail() for w in workers]
    assert stored_at_promotion < 1500, "the promotion must land mid-stream"
    (totals,) = server_store.query("SELECT count() AS n, uniqExact(id) AS ids FROM messages")
    assert totals == {"n": 3000, "ids": 3000}, "every message scored exactly once"
    assert _scored_count(settings) == 3000
    versions = {
        r["model_version"]: r
        for r in server_store.query(
            "SELECT model_version, count() AS n, min(toUInt32(processed_at)) AS first, "
            "max(toUInt32(processed_at)) AS last FROM messages GROUP BY model_version"
        )
    }
    assert set(versions) == {old, new}
    assert versions[old]["n"] >= stored_at_promotion and versions[new]["n"] >= 1500
    assert versions[new]["first"] >= int(promoted_at), "no score of the new version before its promotion"
    assert versions[old]["last"] <= promoted_at + 10, "old version kept scoring long after the promotion"
    assert all(f"hot reload: model {old} -> {new}" in w.text() for w in workers)


class Scheduler:
    """`riskpulse scheduler` as a child process."""

    def __init__(self, settings: Settings, log: Path):
        self.log = log
        with log.open("ab") as fh:
            self.proc = subprocess.Popen([*CLI, "scheduler"], env=child_env(settings), stdout=fh, stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"scheduler exited {self.proc.returncode}:\n{self.text()[-3000:]}"

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout)
        return self.proc.returncode


def _scheduler_settings(stack: Settings, home: Path, registry: Path, **overrides) -> Settings:
    return stack.model_copy(
        update={"home": home, "registry_dir": registry, "shared_data": shared_data(), "device": "cpu", **overrides}
    )


def _runs(store) -> list[dict]:
    return store.query(
        "SELECT run_id, status, reason, runner, toUInt32(started_at) AS started, challenger_version "
        "FROM retrain_runs FINAL ORDER BY started_at, run_id"
    )


def test_scheduler_killed_mid_run_leaves_champion_and_run_is_failed_on_restart(stack, server_store, quick_registry, tmp_path):
    registry = private_registry(quick_registry, tmp_path / "models")
    champion = registry.current()
    rows = [(f"k-{i}", "topic", topic, text) for i, (text, topic) in enumerate(topic_rows()[:300:2])]
    write_labels(server_store, rows)
    busy = _scheduler_settings(
        stack, tmp_path / "home", registry.root, retrain_interval_s=2, retrain_replay_rows=200, retrain_eval_rows=100,
        retrain_min_labels=50, retrain_threads=2,
    )
    first = Scheduler(busy, tmp_path / "first.log")
    try:
        running = _wait(lambda: [r for r in _runs(server_store) if r["status"] == "running"], 180, "a run", [first])
        time.sleep(4)  # inside the run: loading, evaluating the champion or training
        first.assert_alive()
        assert _runs(server_store)[0]["status"] == "running"
    finally:
        first.stop(signal.SIGKILL)
    assert registry.versions() == [champion] and registry.current() == champion, "nothing of the run applied"
    calm = busy.model_copy(update={"retrain_interval_s": 3600})
    second = Scheduler(calm, tmp_path / "second.log")
    try:
        failed = _wait(
            lambda: [r for r in _runs(server_store) if r["run_id"] == running[0]["run_id"] and r["status"] == "failed"],
            120, "the interrupted run to be marked failed", [second],
        )
    finally:
        assert second.stop() == 0, second.text()[-3000:]
    assert "interrupted" in failed[0]["reason"] and champion in failed[0]["reason"]
    assert len(_runs(server_store)) == 1, "the killed slot was not re-run on restart"
    assert registry.current() == champion


def test_two_schedulers_on_one_home_run_each_slot_once(stack, server_store, quick_registry, tmp_path):
    registry = private_registry(quick_registry, tmp_path / "models")
    settings = _scheduler_settings(
        stack, tmp_path / "home", registry.root, retrain_interval_s=2, retrain_min_labels=10**6
    )
    pair = [Scheduler(settings, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        _wait(lambda: len(_runs(server_store)) >= 3, 120, "three scheduled runs", pair)
        runners = {r["runner"] for r in _runs(server_store)}
        assert len(runners) == 1, runners
        leader_pid = int(next(iter(runners)).rsplit(":", 1)[1])
        leader = next(s for s in pair if s.proc.pid == leader_pid)
        standby = next(s for s in pair if s is not leader)
        assert "standing by" in standby.text()
        assert leader.stop() == 0
        before = len(_runs(server_store))
        _wait(lambda: len(_runs(server_store)) >= before + 2, 120, "the standby to take over", [standby])
    finally:
        codes = [s.stop() for s in pair]
    assert codes == [0, 0], [s.text()[-2000:] for s in pair]
    runs = _runs(server_store)
    assert {r["status"] for r in runs} == {"skipped"}
    assert {int(r["runner"].rsplit(":", 1)[1]) for r in runs} == {s.proc.pid for s in pair}
    starts = [r["started"] for r in runs]
    assert all(b - a >= 1 for a, b in zip(starts, starts[1:])), f"two runs in one slot: {starts}"


def test_retrain_cli_records_a_skipped_run_and_lists_it(stack, server_store, quick_registry, tmp_path):
    registry = private_registry(quick_registry, tmp_path / "models")
    settings = _scheduler_settings(stack, tmp_path / "home", registry.root, retrain_min_labels=50)
    write_labels(server_store, [(f"c-{i}", "topic", topic, text) for i, (text, topic) in enumerate(topic_rows()[:5])])
    env = child_env(settings)
    once = subprocess.run([*CLI, "retrain"], env=env, capture_output=True, text=True, timeout=300)
    assert once.returncode == 0, once.stderr[-3000:]
    assert "skipped" in once.stdout and "need 50" in once.stdout
    history = subprocess.run([*CLI, "retrain", "--history"], env=env, capture_output=True, text=True, timeout=300)
    assert history.returncode == 0, history.stderr[-3000:]
    (run,) = _runs(server_store)
    assert run["run_id"] in history.stdout and "skipped" in history.stdout
    assert registry.current() in history.stdout
