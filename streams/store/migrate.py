"""`riskpulse db migrate`: create every table the product uses, on either store.

Each area owns its tables' DDL beside its code, as a module-level ``DDL: list[str]`` of
``CREATE TABLE IF NOT EXISTS`` statements; an area adds its module to :data:`DDL_MODULES`.
Running the migration twice changes nothing.
"""

from __future__ import annotations

import importlib
import logging

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings, get_settings
from riskpulse.streams.store.backends import Store, StoreError, open_store

logger = logging.getLogger("riskpulse.db")

DDL_MODULES: list[str] = [
    "riskpulse.streams.store.backends",
    "riskpulse.streams.alerts",
    "riskpulse.dashboards.queries",
    "riskpulse.models.retraining.retrainer",
]


class MigrationError(RiskPulseError):
    """A module's DDL is missing or ClickHouse refused it."""


def collect_ddl(modules: list[str] | None = None) -> list[tuple[str, str]]:
    """(module, statement) for every DDL statement of every module, in order."""
    statements = []
    for name in modules or DDL_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            raise MigrationError(f"cannot import {name} for its DDL ({exc}); fix it or drop it from DDL_MODULES") from exc
        ddl = getattr(module, "DDL", None)
        if not isinstance(ddl, list):
            raise MigrationError(f"{name} has no module-level DDL list; add `DDL: list[str] = [...]`")
        for statement in ddl:
            if "IF NOT EXISTS" not in statement.upper():
                raise MigrationError(f"{name}: DDL must be CREATE … IF NOT EXISTS so migrating twice is safe")
            statements.append((name, statement))
    return statements


def migrate(store: Store, modules: list[str] | None = None) -> int:
    """Run every DDL statement on an open store; returns how many ran."""
    statements = collect_ddl(modules)
    for module, statement in statements:
        try:
            store.execute(statement)
        except StoreError as exc:
            raise MigrationError(f"DDL from {module} failed: {exc}") from exc
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
    typer.echo(f"{count} DDL statements applied to {settings.store} database {settings.clickhouse_database}")
