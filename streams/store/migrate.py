"""`riskpulse db migrate`: create every table the product uses, on either store.

Each table module beside this one owns its tables' DDL, as a module-level ``DDL: list[str]`` of
``CREATE TABLE IF NOT EXISTS`` statements; a new table module joins :data:`TABLE_MODULES`.
A column added to an existing table is declared too, in the module's optional
``ADDED_COLUMNS: list[tuple[table, column, type]]`` (and in its CREATE statement, for new stores):
tables created before the column existed get it by ``ALTER TABLE … ADD COLUMN``, which only runs
when ``system.columns`` lacks it (ClickHouse 18.16 has no ``ADD COLUMN IF NOT EXISTS``).
Running the migration twice changes nothing. On a ClickHouse cluster (``RISKPULSE_CLICKHOUSE_CLUSTER``) every
statement is rewritten by :mod:`riskpulse.streams.store.cluster` into Replicated tables behind Distributed ones
of the same names, created ON CLUSTER, so the queries run unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from types import ModuleType

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings, get_settings
from riskpulse.streams.store import alerts, audit, entities, labels, messages, retrain_runs
from riskpulse.streams.store.backends import Store, StoreError, open_store
from riskpulse.streams.store.cluster import SINGLE_SERVER, Cluster, Layout, layout_for, table_name

logger = logging.getLogger("riskpulse.db")

TABLE_MODULES: tuple[ModuleType, ...] = (messages, entities, alerts, labels, retrain_runs, audit)


class MigrationError(RiskPulseError):
    """A module's DDL is not idempotent or ClickHouse refused it."""


def collect_ddl(modules: Sequence[ModuleType] = TABLE_MODULES) -> list[tuple[str, str]]:
    """(module name, statement) for every DDL statement of every module, in order."""
    statements = []
    for module in modules:
        for statement in module.DDL:
            if "IF NOT EXISTS" not in statement.upper():
                raise MigrationError(f"{module.__name__}: DDL must be CREATE … IF NOT EXISTS so migrating twice is safe")
            statements.append((module.__name__, statement))
    return statements


def missing_columns(
    store: Store, modules: Sequence[ModuleType] = TABLE_MODULES, layout: Layout = SINGLE_SERVER,
) -> list[tuple[str, str]]:
    """(module name, statement) adding each declared added column the store's tables still lack."""
    wanted = [(module.__name__, *added) for module in modules for added in getattr(module, "ADDED_COLUMNS", [])]
    if not wanted:
        return []
    present = {
        (row["table"], row["name"]) for row in store.query(
            "SELECT table, name FROM system.columns WHERE database = currentDatabase() AND table IN %(tables)s",
            {"tables": tuple(sorted({name for _, table, _, _ in wanted for name in layout.column_tables(table)}))},
        )
    }
    creates = {table_name(statement): statement for _, statement in collect_ddl(modules)}
    return [
        (module, statement)
        for module, table, column, type_ in wanted
        for statement in layout.add_column(table, column, type_, present, creates[table])
    ]


def migrate(store: Store, modules: Sequence[ModuleType] = TABLE_MODULES, layout: Layout | None = None) -> int:
    """Run the DDL of ``modules`` (default: every table) on an open store, laid out for one server or a
    cluster (default: as the store's settings say, so the worker, alerts and dashboard that migrate their
    own tables at start create them where `db migrate` would); returns how many statements ran."""
    settings = getattr(store, "settings", None)
    layout = layout or (layout_for(settings) if isinstance(settings, Settings) else SINGLE_SERVER)
    statements = [("layout", statement) for statement in layout.prologue()] + [
        (module, laid_out) for module, statement in collect_ddl(modules) for laid_out in layout.create(statement)
    ]
    for module, statement in statements:
        try:
            store.execute(statement)
        except StoreError as exc:
            raise MigrationError(f"DDL from {module} failed: {exc}") from exc
    altered = missing_columns(store, modules, layout)
    for module, statement in altered:
        try:
            store.execute(statement)
        except StoreError as exc:
            raise MigrationError(f"column added by {module} failed: {exc}") from exc
        logger.info("added a column: %s", statement)
    statements += altered
    logger.info("migrated %s statements from %s modules", len(statements), len({m for m, _ in statements}))
    return len(statements)


def migrate_settings(settings: Settings) -> int:
    """Open the configured store, migrate it, close it."""
    store = open_store(settings)
    try:
        return migrate(store)
    finally:
        store.close()


app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command("migrate")
def migrate_command() -> None:
    """Create all tables (idempotent) in the configured store (RISKPULSE_STORE=chdb|server)."""
    settings = get_settings()
    try:
        count = migrate_settings(settings)
    except RiskPulseError as exc:
        typer.echo(f"migration failed: {exc}", err=True)
        raise typer.Exit(1) from None
    layout = layout_for(settings)
    where = f" on cluster {layout.name}" if isinstance(layout, Cluster) else ""
    typer.echo(f"{count} DDL statements applied to {settings.store} database {settings.clickhouse_database}{where}")
