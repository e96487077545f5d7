"""Where every table lives: one Store interface, two ClickHouse engines and a fake.

``ServerStore`` talks to clickhouse-server (Debian 18.16) over the native protocol and is what
the worker and the dashboard share. ``ChdbStore`` runs ClickHouse inside this process (chDB 26.x)
for the fast test tier, ``riskpulse score`` and notebooks; only one process can open a chDB
directory at a time. ``MemoryStore`` keeps rows in a dict for unit tests of the code around it.

Both ClickHouse stores substitute ``%(name)s`` parameters with the same escaping (:func:`render`),
run in ``settings.clickhouse_database`` and return rows as dicts whose datetimes are aware UTC,
so one SQL text and one result shape serve both. The tables themselves (DDL, rows, queries)
belong to one module each beside this one (:mod:`riskpulse.streams.store.messages`, ``alerts``,
``labels``, ``retrain_runs``).
"""

from __future__ import annotations

import json
import logging
import math
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from riskpulse.core import RiskPulseError
from riskpulse.core.clock import from_epoch, to_epoch, utc
from riskpulse.core.network import is_loopback_address
from riskpulse.core.settings import Settings
from riskpulse.streams.store.messages import KEYS

logger = logging.getLogger("riskpulse.store")


class StoreError(RiskPulseError):
    """ClickHouse refused a statement, or the store is used wrongly."""


class Queryable(Protocol):
    """What the table modules need of a store, so a shared or fake store serves them too."""

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...


class Store(Queryable, Protocol):
    def open(self) -> None: ...
    def close(self) -> None: ...
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...


# --- one escaping for both engines -------------------------------------------------------
_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'", "\b": "\\b", "\f": "\\f", "\r": "\\r", "\n": "\\n", "\t": "\\t", "\0": "\\0"})
_PARAM = re.compile(r"%\((\w+)\)s")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def literal(value: Any) -> str:
    """A Python value as a ClickHouse literal; strings can never leave their quotes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[str(value)]
        return repr(value)
    if isinstance(value, datetime):
        return f"toDateTime('{utc(value):%Y-%m-%d %H:%M:%S}', 'UTC')"
    if isinstance(value, date):
        return f"toDate('{value:%Y-%m-%d}')"
    if isinstance(value, str):
        return "'" + value.translate(_ESCAPES) + "'"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        inner = ", ".join(literal(item) for item in items)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    raise StoreError(f"cannot pass a {type(value).__name__} as an SQL parameter; use str, int, float, datetime or a list")


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """Substitute ``%(name)s`` placeholders with escaped literals (other ``%`` stay as they are)."""
    if not params:
        return sql

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise StoreError(f"SQL parameter %({name})s has no value; pass it in params")
        return literal(params[name])

    return _PARAM.sub(substitute, sql)


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise StoreError(f"{name!r} is not a plain table or column name")
    return f"`{name}`"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns = list(rows[0])
    for row in rows:
        if len(row) != len(columns) or any(column not in row for column in columns):
            raise StoreError(f"rows of one batch must have the same columns; got {sorted(row)} and {sorted(columns)}")
    return columns


# --- ClickHouse server ----------------------------------------------------------------------
# On a cluster (Distributed tables over Replicated ones): an insert returns once every shard's replica has
# its rows (not parked on the entry node, where a crash would hold them); IN/JOIN subqueries over a
# Distributed table run once and are shipped to the shards (18.16 refuses them otherwise); reads and
# writes go to each shard's first live replica, so a reader sees what was just written.
CLUSTER_SESSION = {"insert_distributed_sync": 1, "distributed_product_mode": "global", "load_balancing": "in_order"}
# A quorum insert that cannot be confirmed: timeout, too few live replicas, an earlier write's quorum still unmet,
# unknown status of the insert (the rows may be in: the tables are idempotent, so writing them again is safe).
QUORUM_UNMET = {159, 285, 286, 319}
QUORUM_TIMEOUT_MS = 5_000
QUORUM_RETRY_S = 30.0
# Server error codes for a refused login: unknown user, wrong password, password required (18.16), authentication failed (later).
LOGIN_REFUSED = {192, 193, 194, 516}


class ServerStore:
    """clickhouse-server over the native protocol (clickhouse-driver), rows sent as Python data, column by column.

    One connection, not thread-safe: one store per thread, or serialise calls with a lock.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._client = None
        self._quorum_retry_at = 0.0  # monotonic time before which writes skip the replica quorum (one is down)

    def _connect(self, database: str):
        """A client of clickhouse_host, which moves to the next of clickhouse_alt_hosts when its node is down;
        over TLS when clickhouse_secure (certificate checked against clickhouse_ca_certs unless verify is off)."""
        from clickhouse_driver import Client

        timeout = self.settings.clickhouse_timeout_s
        tls = {}
        if self.settings.clickhouse_secure:
            tls = {"secure": True, "verify": self.settings.clickhouse_verify}
            if self.settings.clickhouse_ca_certs:
                tls["ca_certs"] = str(self.settings.clickhouse_ca_certs)
        return Client(
            host=self.settings.clickhouse_host, port=self.settings.clickhouse_port, database=database,
            user=self.settings.clickhouse_user, password=self.settings.clickhouse_password.get_secret_value(),
            connect_timeout=min(timeout, 10), send_receive_timeout=timeout, sync_request_timeout=timeout,
            alt_hosts=self.settings.clickhouse_failover_hosts or None,
            settings=CLUSTER_SESSION if self.settings.clickhouse_cluster_name else {}, **tls,
        )

    def open(self) -> None:
        from clickhouse_driver.errors import Error, NetworkError

        database = self.settings.clickhouse_database
        address = f"{self.settings.clickhouse_host}:{self.settings.clickhouse_port}"
        self._warn_if_open()
        bootstrap = self._connect("default")
        try:
            bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
        except ssl.SSLError as exc:
            raise StoreError(f"TLS to ClickHouse at {address} failed ({exc}); check RISKPULSE_CLICKHOUSE_CA_CERTS and "
                             "that RISKPULSE_CLICKHOUSE_PORT is the server's tcp_port_secure") from exc
        except (NetworkError, EOFError, OSError) as exc:
            raise StoreError(f"ClickHouse at {address} does not answer ({exc}); is `riskpulse stack up` running?") from exc
        except Error as exc:
            if getattr(exc, "code", None) in LOGIN_REFUSED:
                raise StoreError(
                    f"ClickHouse at {address} refused user {self.settings.clickhouse_user!r}: "
                    f"{str(getattr(exc, 'message', exc)).splitlines()[0]}; set RISKPULSE_CLICKHOUSE_USER and "
                    "RISKPULSE_CLICKHOUSE_PASSWORD"
                ) from exc
            raise StoreError(f"ClickHouse at {address} refused to create database {database}: {exc}") from exc
        finally:
            bootstrap.disconnect()
        self._client = self._connect(database)
        logger.debug("opened ClickHouse server %s database %s", address, database)

    def _warn_if_open(self) -> None:
        """Off this machine, the built-in login (default, no password) or a password in clear text is worth a warning."""
        s = self.settings
        if is_loopback_address(f"{s.clickhouse_host}:{s.clickhouse_port}"):
            return
        if s.clickhouse_user == "default" and not s.clickhouse_password.get_secret_value():
            logger.warning("ClickHouse at %s: logging in as 'default' without a password; set RISKPULSE_CLICKHOUSE_USER "
                           "and RISKPULSE_CLICKHOUSE_PASSWORD", s.clickhouse_host)
        elif not s.clickhouse_secure:
            logger.warning("ClickHouse at %s: the password travels in clear text; set RISKPULSE_CLICKHOUSE_SECURE=true "
                           "and the server's tcp_port_secure", s.clickhouse_host)

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None

    def _run(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        from clickhouse_driver.errors import Error

        if self._client is None:
            raise StoreError("store is not open; call open() first")
        try:
            return self._client.execute(sql, *args, **kwargs)
        except Error as exc:
            raise StoreError(f"ClickHouse server: {exc.message if hasattr(exc, 'message') else exc}\nSQL: {sql[:500]}") from exc

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows``; on a replicated cluster, returns only once every replica of the shards written to has
        them (``insert_quorum``), so a replica that dies right after cannot take acknowledged rows with it.
        While a replica is down that quorum cannot be met: the rows then go to the live replicas alone, and for
        ``QUORUM_RETRY_S`` so do later batches (each quorum attempt could otherwise wait its timeout)."""
        if not rows:
            return
        columns = _columns(rows)
        started = time.perf_counter()
        sql = f"INSERT INTO {_identifier(table)} ({', '.join(map(_identifier, columns))}) VALUES"
        # Column by column: the driver encodes each column in one pass (half the time of row tuples at 1,000 rows).
        data = [[_insert_value(row[column]) for row in rows] for column in columns]
        replicas = self.settings.clickhouse_replicas if self.settings.clickhouse_cluster_name else 1
        if replicas > 1 and time.monotonic() >= self._quorum_retry_at:
            try:
                self._run(sql, data, columnar=True,  # added to the client's CLUSTER_SESSION by the driver
                          settings={"insert_quorum": replicas, "insert_quorum_timeout": QUORUM_TIMEOUT_MS})
                return
            except StoreError as exc:
                if getattr(exc.__cause__, "code", None) not in QUORUM_UNMET:
                    raise
                self._quorum_retry_at = time.monotonic() + QUORUM_RETRY_S
                logger.warning("%s: %d rows written to fewer than %d replicas (a replica is down?); quorum writes "
                               "resume in %.0f s: %s", table, len(rows), replicas, QUORUM_RETRY_S, str(exc).splitlines()[0])
        self._run(sql, data, columnar=True)
        logger.debug("wrote %s rows to %s in %.1f ms", len(rows), table, (time.perf_counter() - started) * 1000)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows, columns = self._run(render(sql, params), with_column_types=True)
        names = [name for name, _type in columns]
        return [{name: _normalise(value) for name, value in zip(names, row)} for row in rows]

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params))


def _insert_value(value: Any) -> Any:
    """Datetimes as epoch seconds: exact in any column time zone, and the driver skips its slow tz maths."""
    return to_epoch(value) if isinstance(value, datetime) else value


def _normalise(value: Any) -> Any:
    """Datetimes as aware UTC on both engines (the server runs in UTC, so naive means UTC)."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, (list, tuple)):
        return [_normalise(item) for item in value]
    return value


# --- chDB (embedded) --------------------------------------------------------------------------
# Results as JSON with exact types: times as epoch seconds, 64-bit integers unquoted, nan/inf kept.
_CHDB_SESSION_SETTINGS = (
    "date_time_output_format = 'unix_timestamp'",
    "output_format_json_quote_64bit_integers = 0",
    "output_format_json_quote_denormals = 1",
)


class ChdbStore:
    """ClickHouse inside this process on ``settings.chdb_dir``; one process per directory."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._session = None

    def open(self) -> None:
        from chdb.session import Session

        path = self.settings.chdb_dir.resolve()
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._session = Session(f"file:{path}?session_timezone=UTC")
        except Exception as exc:
            raise StoreError(
                f"cannot open chDB at {path} ({exc}); another process probably holds it — stop it, or use "
                "store=server (RISKPULSE_STORE=server) when several processes share the data"
            ) from exc
        database = _identifier(self.settings.clickhouse_database)
        self._raw(f"CREATE DATABASE IF NOT EXISTS {database}")
        self._raw(f"USE {database}")
        for setting in _CHDB_SESSION_SETTINGS:
            self._raw(f"SET {setting}")
        logger.debug("opened chDB %s database %s", path, self.settings.clickhouse_database)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _raw(self, sql: str, fmt: str = "CSV") -> Any:
        from chdb import ChdbError

        if self._session is None:
            raise StoreError("store is not open; call open() first")
        try:
            return self._session.query(sql, fmt)
        except (ChdbError, RuntimeError) as exc:  # sessions raise chdb._exceptions.ChdbError, a RuntimeError
            raise StoreError(f"chDB: {exc}\nSQL: {sql[:500]}") from exc

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        columns = _columns(rows)
        started = time.perf_counter()
        values = ",".join(
            "(" + ",".join(_insert_literal(row[column]) for column in columns) + ")" for row in rows
        )
        self._raw(f"INSERT INTO {_identifier(table)} ({', '.join(map(_identifier, columns))}) VALUES {values}")
        logger.debug("wrote %s rows to %s in %.1f ms", len(rows), table, (time.perf_counter() - started) * 1000)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._raw(render(sql, params), "JSONCompact")
        body = result.bytes() if hasattr(result, "bytes") else result
        if not body or not body.strip():
            return []
        payload = json.loads(body)
        converters = [(column["name"], _converter(column["type"])) for column in payload["meta"]]
        return [{name: convert(value) for (name, convert), value in zip(converters, row)} for row in payload["data"]]

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._raw(render(sql, params))


def _insert_literal(value: Any) -> str:
    """VALUES literal for chDB: datetimes as epoch seconds, which no session time zone can shift."""
    return literal(_insert_value(value))


def _converter(type_name: str):
    """JSONCompact value → the Python value clickhouse-driver would return for ``type_name``."""
    inner = re.sub(r"^(Nullable|LowCardinality)\((.*)\)$", r"\2", type_name)
    if inner.startswith("DateTime"):
        return lambda v: None if v is None else from_epoch(int(v))
    if inner == "Date":
        return lambda v: None if v is None else date.fromisoformat(v)
    if re.match(r"^U?Int\d+$", inner):
        return lambda v: None if v is None else int(v)
    if inner.startswith("Float"):
        return lambda v: None if v is None else float(v)
    if inner.startswith("Array("):
        element = _converter(inner[6:-1])
        return lambda v: None if v is None else [element(item) for item in v]
    return lambda v: v


# --- unit-test store ----------------------------------------------------------------------------
class MemoryStore:
    """Rows in a dict, deduplicated on the same keys as the ClickHouse tables; runs no SQL.

    For unit tests of code that writes (the worker's batches). Code that reads with SQL is tested
    on chDB (fixture ``chdb_settings``), because a fake SQL engine would prove nothing.
    """

    def __init__(self, settings: Settings | None = None):
        self.tables: dict[str, dict[tuple, dict[str, Any]]] = {}
        self.batches: list[tuple[str, int]] = []
        self.is_open = False

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.is_open = False

    def write_batch(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not self.is_open:
            raise StoreError("store is not open; call open() first")
        if not rows:
            return
        _columns(rows)
        stored = self.tables.setdefault(table, {})
        for index, row in enumerate(rows):
            key = tuple(row[k] for k in KEYS[table]) if table in KEYS else (len(stored), index)
            stored[key] = dict(row)
        self.batches.append((table, len(rows)))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """What ``SELECT * FROM table FINAL`` would return: one row per key, the latest write."""
        return list(self.tables.get(table, {}).values())

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        raise StoreError("MemoryStore runs no SQL; test SQL on chDB with the chdb_settings fixture")

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        raise StoreError("MemoryStore runs no SQL; test SQL on chDB with the chdb_settings fixture")


def open_store(settings: Settings) -> Store:
    """The store ``settings.store`` names, opened."""
    store: Store = ServerStore(settings) if settings.store == "server" else ChdbStore(settings)
    store.open()
    return store


def table_exists(store: Queryable, name: str) -> bool:
    """Whether ``name`` is a table of the store's database (a reader may run before any migration)."""
    rows = store.query(
        "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = %(name)s", {"name": name}
    )
    return bool(rows and rows[0]["n"])
