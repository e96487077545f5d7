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
    kafka_brokers: int = Field(
        1, ge=1, description="Brokers in the loopback cluster `riskpulse stack up` runs (node k listens on kafka_port + "
        "10·k, its controller on kafka_controller_port + 10·k); the default bootstrap list names them all (RISKPULSE_KAFKA_BROKERS).")
    kafka_replication_factor: int | None = Field(
        None, ge=1, description="Replicas of each RiskPulse topic; default min(3, kafka_brokers). Set it (3) when "
        "RISKPULSE_KAFKA_BOOTSTRAP points at an existing cluster (RISKPULSE_KAFKA_REPLICATION_FACTOR).")
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT", description="How every RiskPulse Kafka client (producers, admin, workers, alerts) talks to the "
        "brokers (RISKPULSE_KAFKA_SECURITY_PROTOCOL); SASL_* need kafka_sasl_username/password, *SSL trusts kafka_ssl_cafile.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "PLAIN", description="SASL mechanism (RISKPULSE_KAFKA_SASL_MECHANISM).")
    kafka_sasl_username: str | None = Field(None, description="SASL user (RISKPULSE_KAFKA_SASL_USERNAME).")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (RISKPULSE_KAFKA_SASL_PASSWORD).")
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM bundle of the CAs the brokers' certificates are checked against; default the system's "
        "(RISKPULSE_KAFKA_SSL_CAFILE).")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mutual TLS (RISKPULSE_KAFKA_SSL_CERTFILE).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Its private key (PEM) (RISKPULSE_KAFKA_SSL_KEYFILE).")
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names its host (RISKPULSE_KAFKA_SSL_CHECK_HOSTNAME).")
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
    clickhouse_secure: bool = Field(
        False, description="TLS to the server's secure native port (RISKPULSE_CLICKHOUSE_SECURE; point clickhouse_port "
        "at its tcp_port_secure, 9440 by convention).")
    clickhouse_verify: bool = Field(True, description="Check the server's certificate under TLS (RISKPULSE_CLICKHOUSE_VERIFY).")
    clickhouse_ca_certs: Path | None = Field(
        None, description="PEM bundle of the CAs the server's certificate is checked against; default the system's "
        "(RISKPULSE_CLICKHOUSE_CA_CERTS).")
    chdb_path: Path | None = Field(None, description="chDB directory; default <home>/chdb.")
    clickhouse_timeout_s: float = Field(30, gt=0, description="Server send/receive timeout (RISKPULSE_CLICKHOUSE_TIMEOUT_S).")
    clickhouse_cluster: str | None = Field(
        None, description="remote_servers cluster the tables live on (RISKPULSE_CLICKHOUSE_CLUSTER): migrate creates "
        "them ON CLUSTER as Replicated tables behind Distributed ones; default 'riskpulse' when `stack up` runs a cluster.")
    clickhouse_alt_hosts: str | None = Field(
        None, description="Other ClickHouse nodes (host:port,…) tried when clickhouse_host does not answer; default: "
        "the other nodes of the loopback cluster (RISKPULSE_CLICKHOUSE_ALT_HOSTS).")
    clickhouse_shards: int = Field(1, ge=1, description="Shards of the loopback cluster `stack up` runs (RISKPULSE_CLICKHOUSE_SHARDS).")
    clickhouse_replicas: int = Field(
        1, ge=1, description="Replicas per shard of that cluster; node k listens on clickhouse_port + 10·k, "
        "clickhouse_http_port + 10·k and clickhouse_interserver_port + 10·k (RISKPULSE_CLICKHOUSE_REPLICAS).")
    clickhouse_interserver_port: int = Field(9009, description="Replica-to-replica HTTP port of a cluster node.")
    zookeeper_port: int = Field(2181, description="ZooKeeper of the loopback ClickHouse cluster (RISKPULSE_ZOOKEEPER_PORT).")
    zookeeper_heap: str = Field("128m", description="ZooKeeper JVM heap.")

    # --- models ------------------------------------------------------------------
    registry_dir: Path | None = Field(None, description="Model registry root; default <home>/models.")
    device: str | None = Field(None, description="cpu, cuda, cuda:1 …; default: CUDA when present.")
    max_length: int = Field(128, ge=8, description="Tokens per text; longer texts are truncated and counted.")
    inference_batch_size: int | None = Field(
        None, ge=1, description="Texts per forward pass; default per device: 64 on CPU, 512 on CUDA "
        "(a GPU needs large batches to be busy, a CPU gains nothing past ~64).")
    inference_pass_tokens: float | None = Field(
        None, ge=0, description="What one forward pass costs beyond its rows, in padded tokens (RISKPULSE_INFERENCE_PASS_TOKENS): "
        "the engine cuts length-sorted texts into the batches that cost least, so a short call does not pad every tweet "
        "to the longest complaint beside it. Default per device: 40 on CPU, none (fixed inference_batch_size rows) on CUDA; "
        "0 = fixed rows everywhere.")
    precision: PrecisionName = Field(
        "auto", description="Numeric precision of training and inference (RISKPULSE_PRECISION). auto: bf16 autocast "
        "on CPUs with native bf16 (AVX512-BF16/AMX), fp32 on other CPUs, bf16 on CUDA GPUs that support it, else fp16.")

    # --- worker ------------------------------------------------------------------
    batch_max_size: int = Field(
        4096, ge=1, description="Most messages classified and stored together (RISKPULSE_BATCH_MAX_SIZE). A batch is "
        "this large only while a backlog waits; otherwise batch_max_wait_s closes it first, so latency stays bounded. "
        "Large batches pay: each ClickHouse insert costs ~20 ms whatever its size, and the engine pads less when it "
        "sorts more texts by length (bench/pipeline.py: 4096 vs 256, null model 1.38x, CPU model 1.39x).")
    batch_max_wait_s: float = Field(0.5, gt=0, description="Longest a message waits for its batch to fill.")
    batch_pipeline_depth: int = Field(
        2, ge=1, description="Batches in flight per worker: the next batch is classified and stored while the "
        "previous one is emitted and acked (in order). 1 = one batch at a time (RISKPULSE_BATCH_PIPELINE_DEPTH).")
    enrich_process: bool = Field(
        True, description="Find entities and sketch stories in a child process of the worker, on another core while the "
        "batch is classified, instead of in the worker's batch thread, where they took turns with the event loop for the "
        "GIL (RISKPULSE_ENRICH_PROCESS).")
    prompt_delivery: bool = Field(
        True, description="Hand each fetched record to its stream without faust's four-task race when its queue has room "
        "(streams/worker/delivery.py; ~70 µs a record less on the event loop). false = faust's own delivery, a kill switch "
        "should a faust upgrade change what the race guards (RISKPULSE_PROMPT_DELIVERY).")
    producer_max_batch_bytes: int = Field(
        262144, ge=16384, le=1_000_000, description="Largest Kafka record batch the worker's producer sends "
        "(RISKPULSE_PRODUCER_MAX_BATCH_BYTES): a 256-record batch of ~1 KB scored records fits a few of these, not "
        "~20 of faust's 16 KiB default, which doubled emit throughput (bench/emit.py); stay under the broker's message.max.bytes.")
    web_port: int = Field(6066, description="faust worker web port (each worker in a group needs its own).")
    stop_grace_s: float = Field(
        15.0, gt=0, description="Longest a worker or the alerts service takes to stop on SIGTERM/SIGINT, whatever the "
        "broker's state; past it the process exits and its uncommitted records are redelivered (RISKPULSE_STOP_GRACE_S).")
    worker_session_timeout_s: float = Field(
        15.0, ge=6, description="Group session timeout: how soon a dead worker's partitions move to the others."
    )

    # --- alerts --------------------------------------------------------------------
    rules_file: Path | None = Field(None, description="Alert rules (YAML); default deploy/alert-rules.yaml.")
    webhook_secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret (whsec_<base64>); default: this install's own, generated "
        "on first use at <home>/secrets/webhook_secret (RISKPULSE_WEBHOOK_SECRET; `riskpulse alerts secret` prints it).")
    webhook_timeout_s: float = Field(15.0, gt=0, description="Per-request timeout of a webhook POST (RISKPULSE_WEBHOOK_TIMEOUT_S).")
    webhook_retry_horizon_s: float = Field(
        24 * 3600, gt=0, description="How long a failing delivery is retried before it is dead-lettered "
        "(RISKPULSE_WEBHOOK_RETRY_HORIZON_S); `riskpulse alerts redrive` sends dead ones again.")
    webhook_backoff_s: float = Field(2.0, gt=0, description="First retry delay; doubles per attempt, jittered.")
    webhook_backoff_cap_s: float = Field(300.0, gt=0, description="Longest wait between retries (RISKPULSE_WEBHOOK_BACKOFF_CAP_S).")
    webhook_concurrency: int = Field(
        4, ge=1, description="Requests in flight per receiver (each its own queue), one per notification group "
        "(RISKPULSE_WEBHOOK_CONCURRENCY).")
    webhook_tolerance_s: int = Field(300, ge=1, description="Replay window receivers (and test-webhook) accept.")
    alert_tick_s: float = Field(0.5, gt=0, description="How often grouping timers and retries are checked.")
    alert_idle_advance_s: float = Field(10.0, gt=0, description="After this long without messages, event time follows the clock.")
    alerts_consumer_group: str = Field("riskpulse-alerts", description="faust app id of `riskpulse alerts run`.")
    alerts_web_port: int = Field(6067, description="faust web port of the alerts worker.")

    # --- daily digest (run by `riskpulse scheduler`; `riskpulse alerts digest` by hand) -------------
    digest_cron: str = Field(
        "0 6 * * *", description="When the scheduler writes the daily digest of the day before, UTC crontab "
        "(RISKPULSE_DIGEST_CRON); empty: no digest job.")
    digest_dir: Path | None = Field(None, description="Where digests are written (HTML + CSV); default <home>/digests.")
    digest_to: list[str] = Field([], description='Recipients of the digest e-mail, JSON list (RISKPULSE_DIGEST_TO=\'["risk@bank.example"]\'); '
                                 "sent only when smtp_host is set too.")
    digest_from: str = Field("riskpulse@localhost", description="Sender of the digest e-mail (RISKPULSE_DIGEST_FROM).")
    smtp_host: str = Field("", description="SMTP server for the digest (RISKPULSE_SMTP_HOST); empty: write files only.")
    smtp_port: int = Field(587, description="SMTP port (RISKPULSE_SMTP_PORT).")
    smtp_starttls: bool = Field(True, description="Upgrade the SMTP connection with STARTTLS (RISKPULSE_SMTP_STARTTLS).")
    smtp_user: str = Field("", description="SMTP login (RISKPULSE_SMTP_USER); empty: no login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (RISKPULSE_SMTP_PASSWORD).")

    # --- entities --------------------------------------------------------------------
    entities: bool = Field(True, description="Extract companies, banks and tickers per message in the worker (RISKPULSE_ENTITIES).")
    entities_unlisted: bool = Field(
        True, description="Also find companies no catalogue or watchlist lists, by a name's shape and context "
        "('Iowa First Bancshares', 'Akoustis down 13%'); each becomes an org:<name> entity (RISKPULSE_ENTITIES_UNLISTED).")
    watchlist_file: Path | None = Field(
        None, description="Institutions the team watches, with aliases and products (YAML); default deploy/watchlist.yaml "
        "(RISKPULSE_WATCHLIST_FILE). Entity alert rules with watchlist_only alert only on these.")

    # --- PII ---------------------------------------------------------------------------------------
    pii_mask: bool = Field(
        True, description="Mask personal data (cards, IBANs, account numbers, e-mails, phones, national IDs) in every "
        "message's text and meta, and in dead letters, before they are classified, stored or emitted (RISKPULSE_PII_MASK).")
    pii_phone_regions: list[str] = Field(
        ["CN", "US"], description="Regions whose national phone formats are recognised (numbers written with + and a "
        'country code are found whatever the region), JSON list (RISKPULSE_PII_PHONE_REGIONS=\'["CN","US","GB"]\').')

    # --- stories (near-duplicate grouping) -----------------------------------------------
    stories: bool = Field(True, description="Group near-duplicate messages into stories in the worker (RISKPULSE_STORIES).")
    story_threshold: float = Field(
        0.6, gt=0, le=1, description="Estimated Jaccard similarity of two texts' shingles that makes them one story "
        "(RISKPULSE_STORY_THRESHOLD); cut copies also join by containment.")
    story_horizon_s: float = Field(
        24 * 3600, gt=0, description="How far back in event time a message finds its story (RISKPULSE_STORY_HORIZON_S).")
    story_max_entries: int = Field(
        100_000, ge=1, description="Most messages a worker's story index holds, ~2.5 KB each; past it the oldest go "
        "even within the horizon (RISKPULSE_STORY_MAX_ENTRIES).")
    story_sync_s: float = Field(
        30, ge=0, description="How often a worker loads the stories other workers stored, so copies on their "
        "partitions join them; 0 = never, each worker groups alone (RISKPULSE_STORY_SYNC_S).")

    # --- dashboard -------------------------------------------------------------------
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8501
    dashboard_users: str = Field(
        "", description="user:role:pbkdf2-hash entries, comma separated, role viewer, analyst or admin (a bare "
        "user:hash is an analyst); required off loopback (RISKPULSE_DASHBOARD_USERS; `riskpulse dashboard hash-password`).")
    dashboard_loopback_role: Literal["viewer", "analyst", "admin"] = Field(
        "admin", description="Role of whoever opens a dashboard bound to loopback without a login (RISKPULSE_DASHBOARD_LOOPBACK_ROLE).")
    dashboard_login_max_failures: int = Field(
        5, ge=1, description="Failed logins allowed per user and per client address within dashboard_login_window_s.")
    dashboard_login_window_s: float = Field(60.0, gt=0, description="Window of the login rate limit (RISKPULSE_DASHBOARD_LOGIN_WINDOW_S).")
    dashboard_require_login: bool = Field(False, description="Ask for a login even on loopback (RISKPULSE_DASHBOARD_REQUIRE_LOGIN).")
    dashboard_refresh_s: int = Field(30, ge=5, description="Overview auto-refresh period (RISKPULSE_DASHBOARD_REFRESH_S).")

    # --- retraining --------------------------------------------------------------------
    retrain_cron: str = Field("0 3 * * *", description="When the scheduler retrains (crontab syntax).")
    retrain_min_labels: int = 50
    promote_tolerance: float = 0.005
    promote_noise_z: float = Field(1.0, ge=0, description=(
        "A challenger is worse on a task only when its macro-F1 drop exceeds promote_tolerance and this many paired "
        "bootstrap standard errors of the difference on the evaluation set (0 = promote_tolerance alone). One, not "
        "two: a drop of one standard error on the head that drives alerts is already reason enough to keep the champion."))
    retrain_interval_s: float = Field(0, ge=0, description="If > 0, retrain every N seconds instead of retrain_cron.")
    retrain_misfire_grace_s: int = Field(6 * 3600, ge=1, description="A slot missed while down still runs (once) within this.")
    retrain_holdout_share: float = Field(0.2, ge=0, lt=1, description="Share of analyst labels held back for evaluation.")
    retrain_eval_rows: int = Field(0, ge=0, description="Validation rows per dataset in the evaluation set; 0 = all.")
    retrain_label_repeat: int = Field(1, ge=1, description="Times each analyst label appears in the challenger's training rows.")
    retrain_replay_rows: int = Field(0, ge=0, description="Base rows per dataset replayed with the labels; 0 = all (quick mode if > 0).")
    retrain_epochs: int = Field(1, ge=1, description="Fine-tuning epochs for the challenger.")
    retrain_lr: float = Field(1e-4, gt=0, description="Learning rate (encoder and heads) when fine-tuning the challenger.")
    retrain_threads: int | None = Field(None, ge=1, description="torch CPU threads for retraining; None = torch default.")
    scheduler_metrics_port: int = Field(6068, description="Port of the retraining scheduler's /metrics on 127.0.0.1.")
    model_reload_check_s: float = Field(2.0, ge=0, description="How often workers look for a newly promoted model.")

    # --- distillation ------------------------------------------------------------------
    distil: bool = Field(
        True, description="Whether `riskpulse train` learns from a teacher's soft labels as well as the hard labels (RISKPULSE_DISTIL); "
        "false = hard labels only.")
    distil_soft_labels: Path | None = Field(
        None, description="Soft-label file from `riskpulse distil teacher` to learn from (RISKPULSE_DISTIL_SOFT_LABELS); "
        "None = the file that ships with RiskPulse (models/training/teacher_soft_labels.jsonl.gz, see SOFT_LABELS.md).")
    distil_temperature: float = Field(
        2.0, gt=0, description="Softmax temperature of teacher and student in the soft-label loss (RISKPULSE_DISTIL_TEMPERATURE). "
        "2.0: no better value in a one-seed sweep of 2 and 4 (README, Calibration and distillation).")
    distil_weight: float = Field(
        0.5, ge=0, le=1, description="Share of the soft-label loss in a distilled head's loss; the rest is the hard-label "
        "cross-entropy (RISKPULSE_DISTIL_WEIGHT). 0.5: no better value in a one-seed sweep of 0.3, 0.5 and 0.8 (0.8 lifted "
        "PhraseBank, lowered tweet sentiment).")
    distil_heads: list[Literal["sentiment", "topic"]] = Field(
        ["sentiment"], description='Heads that learn from the soft labels, JSON list (RISKPULSE_DISTIL_HEADS=\'["sentiment","topic"]\').')

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated bootstrap list: RISKPULSE_KAFKA_BOOTSTRAP, else every loopback broker."""
        return self.kafka_bootstrap or ",".join(
            f"127.0.0.1:{node_port(self.kafka_port, node)}" for node in range(self.kafka_brokers)
        )

    @property
    def topic_replication_factor(self) -> int:
        return self.kafka_replication_factor or min(3, self.kafka_brokers)

    @property
    def topic_min_insync_replicas(self) -> int:
        """Writes with acks=all need this many replicas: 2 of 3 survives one broker loss without losing a write."""
        return 2 if self.topic_replication_factor >= 3 else 1

    @property
    def clickhouse_nodes(self) -> int:
        return self.clickhouse_shards * self.clickhouse_replicas

    @property
    def clickhouse_cluster_name(self) -> str | None:
        return self.clickhouse_cluster or ("riskpulse" if self.clickhouse_nodes > 1 else None)

    @property
    def clickhouse_failover_hosts(self) -> str:
        """The nodes besides clickhouse_host:clickhouse_port the client may connect to ('' for none)."""
        if self.clickhouse_alt_hosts is not None:
            return self.clickhouse_alt_hosts
        return ",".join(
            f"{self.clickhouse_host}:{node_port(self.clickhouse_port, node)}" for node in range(1, self.clickhouse_nodes)
        )

    @property
    def chdb_dir(self) -> Path:
        return self.chdb_path or self.home / "chdb"

    @property
    def registry_root(self) -> Path:
        return self.registry_dir or self.home / "models"


def node_port(base: int, node: int) -> int:
    """Port of node ``node`` (0-based) of a loopback cluster: nodes sit 10 ports apart."""
    return base + 10 * node


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
