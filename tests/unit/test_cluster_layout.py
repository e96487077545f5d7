"""How one server's DDL becomes a cluster's, and how `stack` renders a cluster's configs (no servers run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.ops import stack as stack_module
from riskpulse.streams.ops.stack import ClickHouseService, KafkaService, Stack, clickhouse_nodes
from riskpulse.streams.store import messages
from riskpulse.streams.store.backends import StoreError
from riskpulse.streams.store.cluster import SINGLE_SERVER, Cluster, layout_for, table_name
from riskpulse.streams.store.migrate import TABLE_MODULES, collect_ddl

CLUSTER = Cluster("risk", "rp")


def _flat(sql: str) -> str:
    return " ".join(sql.split())


def test_messages_become_a_replicated_table_behind_a_distributed_one_sharded_by_id():
    local, distributed = CLUSTER.create(messages.DDL[0])
    assert _flat(local).startswith("CREATE TABLE IF NOT EXISTS `messages_local` ON CLUSTER `risk` ( id String,")
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/risk/{shard}/rp.messages_local', '{replica}', processed_at)" in _flat(local)
    assert _flat(local).endswith("PARTITION BY toYYYYMM(ts) ORDER BY id")
    assert _flat(distributed).startswith("CREATE TABLE IF NOT EXISTS `messages` ON CLUSTER `risk` ( id String,")
    assert _flat(distributed).endswith("ENGINE = Distributed('risk', 'rp', 'messages_local', cityHash64(id))")


def test_every_table_shards_by_its_whole_order_by_key_so_each_key_stays_on_one_shard():
    dead_letters = _flat(CLUSTER.create(messages.DDL[1])[1])
    assert dead_letters.endswith("cityHash64(`topic`, `partition`, `offset`))")
    for _, statement in collect_ddl(TABLE_MODULES):
        local, distributed = CLUSTER.create(statement)
        assert "ENGINE = Replicated" in local and "MergeTree(" in local
        assert "ENGINE = Distributed('risk', 'rp', '" in distributed and "cityHash64(" in distributed


def test_a_plain_mergetree_gets_only_the_replication_arguments():
    local, _ = CLUSTER.create("CREATE TABLE IF NOT EXISTS acks (a String, t DateTime) ENGINE = MergeTree ORDER BY (a, t)")
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/risk/{shard}/rp.acks_local', '{replica}') ORDER BY (a, t)" in local


def test_statements_the_cluster_cannot_lay_out_are_refused():
    with pytest.raises(StoreError, match="only MergeTree"):
        CLUSTER.create("CREATE TABLE IF NOT EXISTS t (a String) ENGINE = Memory")
    with pytest.raises(StoreError, match="not a CREATE TABLE"):
        CLUSTER.create("CREATE VIEW IF NOT EXISTS v AS SELECT 1")
    with pytest.raises(StoreError, match="no ORDER BY"):
        CLUSTER.create("CREATE TABLE IF NOT EXISTS t (a String) ENGINE = ReplacingMergeTree(a) PARTITION BY a")


def test_an_added_column_alters_the_replicas_and_recreates_the_distributed_table():
    create = messages.DDL[0]
    statements = CLUSTER.add_column("messages", "lang2", "String", present=set(), create=create)
    assert statements[0] == "ALTER TABLE `messages_local` ON CLUSTER `risk` ADD COLUMN `lang2` String"
    assert statements[1] == "DROP TABLE IF EXISTS `messages` ON CLUSTER `risk`"
    assert statements[2] == CLUSTER.create(create)[1]
    # Half done before (the replicas have it): only the Distributed table is redone; all done: nothing.
    assert CLUSTER.add_column("messages", "lang2", "String", {("messages_local", "lang2")}, create) == statements[1:]
    assert CLUSTER.add_column("messages", "lang2", "String", {("messages_local", "lang2"), ("messages", "lang2")}, create) == []
    assert SINGLE_SERVER.add_column("messages", "lang2", "String", set(), create) == [
        "ALTER TABLE `messages` ADD COLUMN `lang2` String"]


def test_layout_follows_the_settings():
    assert layout_for(Settings(store="server")) is SINGLE_SERVER
    assert layout_for(Settings(store="server", clickhouse_cluster="prod", clickhouse_database="x")) == Cluster("prod", "x")
    assert layout_for(Settings(store="server", clickhouse_shards=2)) == Cluster("riskpulse", "riskpulse")
    assert layout_for(Settings(store="chdb", clickhouse_cluster="prod")) is SINGLE_SERVER
    assert table_name(messages.DDL[1]) == "dead_letters"


def test_cluster_settings_name_every_node():
    settings = Settings(kafka_port=19092, kafka_brokers=3, clickhouse_port=19000, clickhouse_shards=2, clickhouse_replicas=2)
    assert settings.bootstrap_servers == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)
    assert settings.clickhouse_failover_hosts == "127.0.0.1:19010,127.0.0.1:19020,127.0.0.1:19030"
    single = Settings(kafka_port=19092)
    assert (single.bootstrap_servers, single.topic_replication_factor, single.topic_min_insync_replicas) == ("127.0.0.1:19092", 1, 1)
    assert single.clickhouse_failover_hosts == ""
    assert Settings(kafka_bootstrap="a:9092,b:9092", kafka_brokers=3).bootstrap_servers == "a:9092,b:9092"


def test_kafka_nodes_render_one_quorum_and_replicated_internal_topics(tmp_path: Path):
    settings = Settings(home=tmp_path, kafka_port=19092, kafka_controller_port=19093, kafka_brokers=3)
    stack = Stack(settings)
    assert [service.name for service in stack.kafka] == ["kafka-1", "kafka-2", "kafka-3"]
    second = stack.kafka[1]
    assert isinstance(second, KafkaService)
    (second.root / "data").mkdir(parents=True)
    (second.root / "data" / "meta.properties").write_text("formatted already\n")
    second.prepare()
    text = (second.root / "server.properties").read_text()
    assert "node.id=2\n" in text
    assert "controller.quorum.voters=1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113" in text
    assert "listeners=PLAINTEXT://127.0.0.1:19102,CONTROLLER://127.0.0.1:19103" in text
    assert "offsets.topic.replication.factor=3\n" in text and "min.insync.replicas=2\n" in text


def test_clickhouse_nodes_render_shards_macros_and_zookeeper(tmp_path: Path, monkeypatch):
    etc = tmp_path / "etc"
    etc.mkdir()
    for name in ("config.xml", "users.xml"):
        (etc / name).write_text("<yandex/>")
    monkeypatch.setattr(stack_module, "CLICKHOUSE_ETC", etc)
    settings = Settings(home=tmp_path, clickhouse_port=19000, clickhouse_http_port=18123, clickhouse_interserver_port=19009,
                        zookeeper_port=12181, clickhouse_shards=2, clickhouse_replicas=2)
    at = clickhouse_nodes(settings)[3]
    assert (at.node, at.shard, at.replica, at.label) == (3, 2, 2, "s2r2")
    service = ClickHouseService(settings, tmp_path / "ch", tmp_path / "run", at=at)
    service.prepare()
    base = (tmp_path / "ch" / "config.d" / "riskpulse.xml").read_text()
    assert "<tcp_port>19030</tcp_port>" in base and "<http_port>18153</http_port>" in base
    assert "<interserver_http_port>19039</interserver_http_port>" in base
    cluster = _flat((tmp_path / "ch" / "config.d" / "riskpulse-cluster.xml").read_text())
    assert "<port>12181</port>" in cluster
    assert "<shard>2</shard> <replica>s2r2</replica>" in cluster
    assert cluster.count("<shard> <internal_replication>true</internal_replication>") == 2
    for port in (19000, 19010, 19020, 19030):
        assert f"<port>{port}</port></replica>" in cluster
    single = ClickHouseService(Settings(home=tmp_path), tmp_path / "one", tmp_path / "run")
    single.prepare()
    assert '<interserver_http_port remove="remove"/>' in (tmp_path / "one" / "config.d" / "riskpulse.xml").read_text()
    assert not (tmp_path / "one" / "config.d" / "riskpulse-cluster.xml").exists()


def test_down_and_status_follow_the_layout_up_started(tmp_path: Path):
    settings = Settings(home=tmp_path)
    assert [s.name for s in stack_module._stack(settings).services] == ["kafka", "clickhouse"]
    layout_path = stack_module.layout_file(settings)
    layout_path.parent.mkdir(parents=True)
    layout_path.write_text('{"brokers": 3, "shards": 1, "replicas": 2}\n')
    names = [s.name for s in stack_module._stack(settings).services]
    assert names == ["kafka-1", "kafka-2", "kafka-3", "zookeeper", "clickhouse-s1r1", "clickhouse-s1r2"]
    assert [s.name for s in stack_module._stack(settings, brokers=1).services][:2] == ["kafka", "zookeeper"]


class _Client:
    """Stands in for clickhouse-driver's client: records each insert's settings, refuses quorum ones with ``code``."""

    def __init__(self, code: int | None):
        self.code, self.calls = code, []

    def execute(self, sql, data, columnar, settings=None):
        from clickhouse_driver.errors import ServerException

        self.calls.append((settings or {}).get("insert_quorum"))
        if settings and settings.get("insert_quorum") and self.code is not None:
            raise ServerException("Quorum for previous write has not been satisfied yet", code=self.code)


def _cluster_store(code: int | None):
    from riskpulse.streams.store.backends import ServerStore

    store = ServerStore(Settings(clickhouse_shards=2, clickhouse_replicas=2))
    store._client = _Client(code)
    return store


def test_cluster_writes_wait_for_every_replica():
    store = _cluster_store(None)
    store.write_batch("messages", [{"id": "a"}])
    assert store._client.calls == [2]


def test_an_unmet_quorum_writes_to_the_live_replicas_and_skips_the_quorum_for_a_while():
    store = _cluster_store(286)
    store.write_batch("messages", [{"id": "a"}])
    store.write_batch("messages", [{"id": "b"}])
    assert store._client.calls == [2, None, None]  # refused, written without; the next batch skips the attempt


def test_other_errors_of_a_quorum_write_are_raised():
    store = _cluster_store(60)  # unknown table
    with pytest.raises(StoreError):
        store.write_batch("messages", [{"id": "a"}])
    assert store._client.calls == [2]
