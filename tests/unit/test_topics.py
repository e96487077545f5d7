"""Topic creation on a cluster that is still settling: transient admin errors are retried, others are not."""

from __future__ import annotations

import pytest
from kafka.errors import TopicAuthorizationFailedError, UnknownBrokerIdError

from riskpulse.core.settings import Settings
from riskpulse.streams import topics


class _Admin:
    """Stands in for KafkaAdminClient: ``failures`` are raised by create_topics, one per client, in order."""

    def __init__(self, failures: list[Exception], existing: set[str], created: list[dict]):
        self._failures, self._existing, self._created = failures, existing, created
        self.closed = False

    def list_topics(self):
        return sorted(self._existing)

    def create_topics(self, spec, wait_for_metadata):
        if self._failures:
            raise self._failures.pop(0)
        self._created.append(spec)
        self._existing.update(spec)

    def close(self):
        self.closed = True


def _patch_admin(monkeypatch, failures: list[Exception]) -> tuple[list[dict], list[_Admin]]:
    existing: set[str] = set()
    created: list[dict] = []
    clients: list[_Admin] = []

    def make(settings):
        clients.append(_Admin(failures, existing, created))
        return clients[-1]

    monkeypatch.setattr(topics, "admin_client", make)
    monkeypatch.setattr(topics.time, "sleep", lambda s: None)
    return created, clients


def test_an_unknown_controller_on_a_fresh_cluster_is_retried_with_a_new_client(monkeypatch, tmp_path):
    created, clients = _patch_admin(monkeypatch, [UnknownBrokerIdError(1)])
    settings = Settings(home=tmp_path)

    names = topics.ensure_topics(settings)

    assert names == sorted(topics.topic_partitions(settings))
    assert len(created) == 1 and set(created[0]) == set(names)
    assert len(clients) == 2 and all(c.closed for c in clients)


def test_a_permanent_error_is_raised_at_once(monkeypatch, tmp_path):
    _, clients = _patch_admin(monkeypatch, [TopicAuthorizationFailedError("denied")])

    with pytest.raises(TopicAuthorizationFailedError):
        topics.ensure_topics(Settings(home=tmp_path))
    assert len(clients) == 1


def test_a_cluster_that_never_settles_fails_with_the_bootstrap_servers_named(monkeypatch, tmp_path):
    _patch_admin(monkeypatch, [UnknownBrokerIdError(1)] * 1000)
    clock = iter(range(0, 10_000, 10))
    monkeypatch.setattr(topics.time, "monotonic", lambda: next(clock))
    settings = Settings(home=tmp_path)

    with pytest.raises(topics.BrokerUnavailable, match=settings.bootstrap_servers):
        topics.ensure_topics(settings, timeout_s=60)
