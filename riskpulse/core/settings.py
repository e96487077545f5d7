"""All of RiskPulse's settings, in one place.

Every setting can be set from the environment with the ``RISKPULSE_`` prefix
(``RISKPULSE_KAFKA_BOOTSTRAP``, ``RISKPULSE_STORE`` …) or from a ``.env`` file.
No other module reads ``os.environ``: they take a :class:`Settings`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


PrecisionName = Literal["auto", "fp32", "bf16", "fp16"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RISKPULSE_", env_file=".env", extra="ignore", frozen=True)

    # --- where state lives -------------------------------------------------
    home: Path = Field(Path(".riskpulse"), description="Root for broker/ClickHouse data, chDB, models (RISKPULSE_HOME).")
    shared_data: Path = Field(Path("../shared/data"), description="Labeled datasets (RISKPULSE_SHARED_DATA).")

    # --- Kafka ---------------------------------------------------------------
    kafka_port: int = Field(9092, description="Broker listener port on 127.0.0.1 (RISKPULSE_KAFKA_PORT).")
    kafka_controller_port: int = Field(9093, description="KRaft controller port (RISKPULSE_KAFKA_CONTROLLER_PORT).")
    kafka_bootstrap: str | None = Field(None, description="Bootstrap servers; default 127.0.0.1:<kafka_port>.")
    kafka_heap: str = Field("512m", description="Broker JVM heap (RISKPULSE_KAFKA_HEAP).")
    topic_raw: str = "riskpulse.raw"
    topic_scored: str = "riskpulse.scored"
    topic_dead_letter: str = "riskpulse.dead-letter"
    topic_alerts: str = "riskpulse.alerts"
    topic_control: str = "riskpulse.control"
    raw_partitions: int = Field(6, ge=1)
    consumer_group: str = Field("riskpulse-worker", description="faust app id = consumer group.")

    # --- ClickHouse ------------------------------------------------------------
    store: Literal["chdb", "server"] = Field("chdb", description="chdb (embedded, zero-setup) or server.")
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = Field(9000, description="Native protocol port (RISKPULSE_CLICKHOUSE_PORT).")
    clickhouse_http_port: int = 8123
    clickhouse_database: str = "riskpulse"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    chdb_path: Path | None = Field(None, description="chDB directory; default <home>/chdb.")
    clickhouse_timeout_s: float = Field(30, gt=0, description="Server send/receive timeout (RISKPULSE_CLICKHOUSE_TIMEOUT_S).")

    # --- models ------------------------------------------------------------------
    registry_dir: Path | None = Field(None, description="Model registry root; default <home>/models.")
    device: str | None = Field(None, description="cpu, cuda, cuda:1 …; default: CUDA when present.")
    max_length: int = Field(128, ge=8, description="Tokens per text; longer texts are truncated and counted.")
    inference_batch_size: int | None = Field(
        None, ge=1, description="Texts per forward pass; default per device: 64 on CPU, 512 on CUDA "
        "(a GPU needs large batches to be busy, a CPU gains nothing past ~64).")
    precision: PrecisionName = Field(
        "auto", description="Numeric precision of training and inference (RISKPULSE_PRECISION). auto: bf16 autocast "
        "on CPUs with native bf16 (AVX512-BF16/AMX), fp32 on other CPUs, bf16 on CUDA GPUs that support it, else fp16.")

    # --- worker ------------------------------------------------------------------
    batch_max_size: int = Field(256, ge=1, description="Messages classified and stored together.")
    batch_max_wait_s: float = Field(0.5, gt=0, description="Longest a message waits for its batch to fill.")
    web_port: int = Field(6066, description="faust worker web port (each worker in a group needs its own).")
    stop_grace_s: float = Field(
        15.0, gt=0, description="Longest a worker or the alerts service takes to stop on SIGTERM/SIGINT, whatever the "
        "broker's state; past it the process exits and its uncommitted records are redelivered (RISKPULSE_STOP_GRACE_S).")
    worker_session_timeout_s: float = Field(
        15.0, ge=6, description="Group session timeout: how soon a dead worker's partitions move to the others."
    )

    # --- alerts --------------------------------------------------------------------
    rules_file: Path | None = Field(None, description="Alert rules (YAML); default deploy/alert-rules.yaml.")
    webhook_secret: SecretStr = SecretStr("whsec_ZGV2LXNlY3JldC1jaGFuZ2UtbWU=")
    webhook_timeout_s: float = Field(5.0, gt=0, description="Per-request timeout of a webhook POST.")
    webhook_max_attempts: int = Field(8, ge=1, description="Attempts before a delivery is dead-lettered.")
    webhook_backoff_s: float = Field(2.0, gt=0, description="First retry delay; doubles per attempt, jittered.")
    webhook_backoff_cap_s: float = Field(300.0, gt=0)
    webhook_tolerance_s: int = Field(300, ge=1, description="Replay window receivers (and test-webhook) accept.")
    alert_tick_s: float = Field(0.5, gt=0, description="How often grouping timers and retries are checked.")
    alert_idle_advance_s: float = Field(10.0, gt=0, description="After this long without messages, event time follows the clock.")
    alerts_consumer_group: str = Field("riskpulse-alerts", description="faust app id of `riskpulse alerts run`.")
    alerts_web_port: int = Field(6067, description="faust web port of the alerts worker.")

    # --- dashboard -------------------------------------------------------------------
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8501
    dashboard_users: str = Field("", description="user:pbkdf2-hash pairs, comma separated; required off loopback.")
    dashboard_require_login: bool = Field(False, description="Ask for a login even on loopback (RISKPULSE_DASHBOARD_REQUIRE_LOGIN).")
    dashboard_refresh_s: int = Field(30, ge=5, description="Overview auto-refresh period (RISKPULSE_DASHBOARD_REFRESH_S).")

    # --- retraining --------------------------------------------------------------------
    retrain_cron: str = Field("0 3 * * *", description="When the scheduler retrains (crontab syntax).")
    retrain_min_labels: int = 50
    promote_tolerance: float = 0.005
    retrain_interval_s: float = Field(0, ge=0, description="If > 0, retrain every N seconds instead of retrain_cron.")
    retrain_misfire_grace_s: int = Field(6 * 3600, ge=1, description="A slot missed while down still runs (once) within this.")
    retrain_holdout_share: float = Field(0.2, ge=0, lt=1, description="Share of analyst labels held back for evaluation.")
    retrain_eval_rows: int = Field(0, ge=0, description="Validation rows per dataset in the evaluation set; 0 = all.")
    retrain_label_repeat: int = Field(1, ge=1, description="Times each analyst label appears in the challenger's training rows.")
    retrain_replay_rows: int = Field(0, ge=0, description="Base rows per dataset replayed with the labels; 0 = all (quick mode if > 0).")
    retrain_epochs: int = Field(1, ge=1, description="Fine-tuning epochs for the challenger.")
    retrain_lr: float = Field(1e-4, gt=0, description="Learning rate (encoder and heads) when fine-tuning the challenger.")
    retrain_threads: int | None = Field(None, ge=1, description="torch CPU threads for retraining; None = torch default.")
    model_reload_check_s: float = Field(2.0, ge=0, description="How often workers look for a newly promoted model.")

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.kafka_port}"

    @property
    def chdb_dir(self) -> Path:
        return self.chdb_path or self.home / "chdb"

    @property
    def registry_root(self) -> Path:
        return self.registry_dir or self.home / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
