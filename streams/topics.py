"""RiskPulse's Kafka topics: their names come from settings, created once with the admin client.

Creating them up front (rather than relying on broker auto-creation) fixes the raw
topic's partition count, which is what lets several workers in one group share it, and
their replication: on a cluster 3 replicas with ``min.insync.replicas=2``, so an acks=all
write survives the loss of any one broker.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, RetriableError, TopicAlreadyExistsError, UnknownBrokerIdError

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings
from riskpulse.streams.kafka_auth import check_login, kafka_python_options

log = logging.getLogger("riskpulse.topics")


class BrokerUnavailable(RiskPulseError):
    """The Kafka broker did not answer."""


def topic_partitions(settings: Settings) -> dict[str, int]:
    """Topic name → partition count. Scored output mirrors the raw partitioning."""
    return {
        settings.topic_raw: settings.raw_partitions,
        settings.topic_scored: settings.raw_partitions,
        settings.topic_dead_letter: 1,
        settings.topic_alerts: 1,
        settings.topic_control: 1,
    }


def admin_client(settings: Settings, timeout_s: float = 30.0) -> KafkaAdminClient:
    """An admin client, retrying until the broker answers or ``timeout_s`` passes; refused credentials fail at once."""
    check_login(settings)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="riskpulse-admin",
                                    **kafka_python_options(settings))
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"no Kafka broker at {settings.bootstrap_servers} ({exc}); start it with `riskpulse stack up`"
                ) from exc
            time.sleep(0.5)


def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> list[str]:
    """Create whichever of RiskPulse's topics are missing; returns the names created.

    A cluster that has just started can name a controller the admin client's metadata
    does not list yet (kafka-python 3 raises ``UnknownBrokerIdError``), or move the
    controller mid-request; those are retried with a fresh client until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    created: set[str] = set()
    while True:
        try:
            created.update(_create_missing_topics(settings))
            return sorted(created)
        except _TRANSIENT_ADMIN_ERRORS as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"could not create topics on {settings.bootstrap_servers} within {timeout_s:.0f} s ({exc!r})"
                ) from exc
            log.warning("topic creation on %s hit %r; retrying", settings.bootstrap_servers, exc)
            time.sleep(1.0)


_TRANSIENT_ADMIN_ERRORS = (RetriableError, UnknownBrokerIdError)


def _create_missing_topics(settings: Settings) -> list[str]:
    wanted = topic_partitions(settings)
    admin = admin_client(settings)
    try:
        missing = {name: n for name, n in wanted.items() if name not in set(admin.list_topics())}
        if not missing:
            return []
        replicas, min_insync = settings.topic_replication_factor, settings.topic_min_insync_replicas
        spec = {
            name: {"num_partitions": n, "replication_factor": replicas, "configs": {"min.insync.replicas": str(min_insync)}}
            for name, n in missing.items()
        }
        try:
            admin.create_topics(spec, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            log.info("topics %s were created concurrently", sorted(missing))
        log.info("created topics %s on %s (%d replicas, min.insync.replicas %d)",
                 sorted(missing), settings.bootstrap_servers, replicas, min_insync)
        return sorted(missing)
    finally:
        admin.close()


def group_lag(settings: Settings, topic: str | None = None, group: str | None = None) -> dict[int, int]:
    """Partition → messages not yet committed by the consumer group (end offset − committed).

    Because the worker commits only after a batch is stored, zero lag on every
    partition means every record produced so far is in the store.
    """
    topic = topic or settings.topic_raw
    group = group or settings.consumer_group
    admin = admin_client(settings)
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, **kafka_python_options(settings))
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        ends = consumer.end_offsets(partitions)
        lag = {}
        for tp in partitions:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            lag[tp.partition] = ends[tp] - done
        return lag
    finally:
        consumer.close()
        admin.close()
