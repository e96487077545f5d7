"""Where the tables live: one server, or a ClickHouse cluster (shards of replicas).

Each table module writes its DDL for one server: ``CREATE TABLE IF NOT EXISTS name (…) ENGINE =
X(…) … ORDER BY key``. On a cluster (``settings.clickhouse_cluster``) :class:`Cluster` turns each
statement into two, both ``ON CLUSTER``: ``name_local``, a ``ReplicatedX`` table on every node (the
replicas of a shard copy each other's parts through ZooKeeper), and ``name``, a ``Distributed`` table
over them that sends each row to the shard ``cityHash64(key)`` picks. The key is the table's ORDER BY,
which is what ReplacingMergeTree deduplicates on, so every version of one id lands on one shard and
``FINAL`` on each shard is ``FINAL`` for the whole table: queries keep the names and SQL they use.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from riskpulse.core.settings import Settings
from riskpulse.streams.store.backends import StoreError

LOCAL_SUFFIX = "_local"

_CREATE = re.compile(
    r"^\s*CREATE TABLE IF NOT EXISTS\s+`?(?P<name>\w+)`?\s*\((?P<columns>.*)\)\s*"
    r"ENGINE\s*=\s*(?P<engine>\w+)(?:\((?P<args>[^()]*)\))?(?P<rest>.*)$",
    re.DOTALL | re.IGNORECASE,
)
_ORDER_BY = re.compile(r"\bORDER BY\s+(?P<key>\(.*?\)|\S+)\s*(?:SETTINGS\b.*)?$", re.DOTALL | re.IGNORECASE)


class Layout(Protocol):
    """How one server's DDL becomes the statements this store needs."""

    def prologue(self) -> list[str]: ...
    def create(self, statement: str) -> list[str]: ...
    def column_tables(self, table: str) -> list[str]: ...
    def add_column(self, table: str, column: str, type_: str, present: Collection[tuple[str, str]], create: str) -> list[str]: ...


def table_name(statement: str) -> str:
    """The table a module's ``CREATE TABLE IF NOT EXISTS`` statement creates."""
    return _parse(statement)["name"]


def _parse(statement: str) -> dict[str, str]:
    match = _CREATE.match(statement)
    if match is None:
        raise StoreError(f"not a CREATE TABLE IF NOT EXISTS name (columns) ENGINE = … statement:\n{statement.strip()[:300]}")
    return match.groupdict()


class SingleServer:
    """One server (or chDB): the modules' DDL as written."""

    def prologue(self) -> list[str]:
        return []

    def create(self, statement: str) -> list[str]:
        return [statement]

    def column_tables(self, table: str) -> list[str]:
        return [table]

    def add_column(self, table: str, column: str, type_: str, present: Collection[tuple[str, str]], create: str) -> list[str]:
        return [] if (table, column) in present else [f"ALTER TABLE `{table}` ADD COLUMN `{column}` {type_}"]


@dataclass(frozen=True)
class Cluster:
    """Replicated local tables behind Distributed ones, created ON CLUSTER ``name`` in ``database``."""

    name: str
    database: str

    def prologue(self) -> list[str]:
        return [f"CREATE DATABASE IF NOT EXISTS `{self.database}` ON CLUSTER `{self.name}`"]

    def create(self, statement: str) -> list[str]:
        return [self._local(statement), self._distributed(statement)]

    def _local(self, statement: str) -> str:
        parts = _parse(statement)
        if not parts["engine"].endswith("MergeTree"):
            raise StoreError(f"table {parts['name']}: only MergeTree engines can be replicated, not {parts['engine']}")
        local = parts["name"] + LOCAL_SUFFIX
        # The cluster's name, not a {cluster} macro: an existing cluster defines only {shard} and {replica}.
        zk_path = f"/clickhouse/tables/{self.name}/{{shard}}/{self.database}.{local}"
        args = ", ".join(arg for arg in (f"'{zk_path}'", "'{replica}'", (parts["args"] or "").strip()) if arg)
        return (
            f"CREATE TABLE IF NOT EXISTS `{local}` ON CLUSTER `{self.name}` ({parts['columns']}) "
            f"ENGINE = Replicated{parts['engine']}({args}){parts['rest']}"
        )

    def _distributed(self, statement: str) -> str:
        parts = _parse(statement)
        order_by = _ORDER_BY.search(parts["rest"])
        if order_by is None:
            raise StoreError(f"table {parts['name']}: no ORDER BY to shard by")
        key = order_by["key"]
        key = key[1:-1] if key.startswith("(") else key
        return (
            f"CREATE TABLE IF NOT EXISTS `{parts['name']}` ON CLUSTER `{self.name}` ({parts['columns']}) "
            f"ENGINE = Distributed('{self.name}', '{self.database}', '{parts['name']}{LOCAL_SUFFIX}', cityHash64({key}))"
        )

    def column_tables(self, table: str) -> list[str]:
        return [table + LOCAL_SUFFIX, table]

    def add_column(self, table: str, column: str, type_: str, present: Collection[tuple[str, str]], create: str) -> list[str]:
        """ALTER the replicated table; re-create the Distributed one from ``create`` (it holds no rows), because
        18.16 refuses ALTER … ON CLUSTER on a table that is not replicated when the shards are."""
        statements = []
        if (table + LOCAL_SUFFIX, column) not in present:
            statements.append(f"ALTER TABLE `{table}{LOCAL_SUFFIX}` ON CLUSTER `{self.name}` ADD COLUMN `{column}` {type_}")
        if (table, column) not in present:
            statements += [f"DROP TABLE IF EXISTS `{table}` ON CLUSTER `{self.name}`", self._distributed(create)]
        return statements


SINGLE_SERVER = SingleServer()


def layout_for(settings: Settings) -> Layout:
    """The cluster layout when a ClickHouse server store names a cluster, else one server."""
    cluster = settings.clickhouse_cluster_name
    if settings.store == "server" and cluster:
        return Cluster(cluster, settings.clickhouse_database)
    return SINGLE_SERVER
