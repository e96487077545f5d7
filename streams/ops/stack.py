"""`riskpulse stack up|down|status`: the real Kafka and ClickHouse, on loopback.

By default one broker and one ClickHouse server; ``--brokers 3`` runs a KRaft cluster (every node
broker and controller), ``--shards 2 --replicas 2`` four ClickHouse servers replicating through
ZooKeeper. Every part runs as a plain child process with its data under ``settings.home`` (no
Docker, no systemd), so the demo, the test fixtures and CI start exactly the same parts the same
way. Processes outlive the command that started them; their pids are kept in ``<home>/run``, and
the layout ``up`` started in ``<home>/run/layout.json`` (``down`` and ``status`` read it).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from string import Template

import typer

from riskpulse.core import RiskPulseError
from riskpulse.core.resources import deploy_file
from riskpulse.core.settings import Settings, get_settings, node_port

logger = logging.getLogger("riskpulse.stack")

# Jars resolved by bootstrap.sh in a checkout; an installed package resolves them under RISKPULSE_HOME.
CHECKOUT_KAFKA_LIBS = deploy_file("kafka", "libs")
CLICKHOUSE_ETC = Path("/etc/clickhouse-server")
# Debian's zookeeper package: the server jar (its manifest names its dependencies) and a logger binding.
ZOOKEEPER_CLASSPATH = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")


class StackError(RiskPulseError):
    """A stack part is missing, would not start, or would not stop."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    running: bool
    answering: bool
    address: str
    log: Path


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out on 127.0.0.1 (held together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 200 * lines))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class _Service:
    """One long-running server process: start detached, record its pid, wait, stop."""

    name = ""
    marker = ""  # a word of its command line, so a recycled pid is never killed
    port_setting = ""  # the setting that moves its port, for the error when the port is taken

    def __init__(self, settings: Settings, root: Path, run_dir: Path, name: str | None = None):
        self.settings = settings
        self.root = root
        self.run_dir = run_dir
        self.name = name or self.name
        self.pid_file = run_dir / f"{self.name}.pid"
        self._child: subprocess.Popen | None = None

    # --- what each service says about itself -----------------------------------
    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def log(self) -> Path:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write config, create directories (idempotent)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def answering(self) -> bool:
        raise NotImplementedError

    def logs(self, lines: int) -> dict[Path, str]:
        return {self.log: _tail(self.log, lines), self.stdout: _tail(self.stdout, lines)}

    # --- lifecycle ---------------------------------------------------------------
    @property
    def stdout(self) -> Path:
        return self.root / "logs" / "stdout.log"

    def pid(self) -> int | None:
        """The recorded pid if that process is alive and is really this service."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if _alive(pid) and self.marker.encode() in cmdline else None

    def start(self, timeout: float) -> None:
        if self.launch():
            self.wait_answering(timeout)

    def launch(self) -> bool:
        """Start the process unless it runs already; True if it was started (then wait_answering)."""
        if self.pid() is not None:
            logger.info("%s already running (pid %s, port %s)", self.name, self.pid(), self.port)
            return False
        if _port_open(self.port):
            raise StackError(
                f"port {self.port} for {self.name} is taken by another process; stop it or pick another "
                f"port ({self.port_setting})"
            )
        self.prepare()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.parent.mkdir(parents=True, exist_ok=True)
        with open(self.stdout, "ab") as out:
            self._child = subprocess.Popen(
                self.command(), cwd=self.root, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.pid_file.write_text(f"{self._child.pid}\n")
        logger.info("started %s (pid %s, port %s, data %s)", self.name, self._child.pid, self.port, self.root)
        return True

    def wait_answering(self, timeout: float) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self._child is not None and self._child.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self._child.returncode} while starting; "
                    f"see {self.log} and {self.stdout}:\n{_tail(self.stdout, 30)}\n{_tail(self.log, 30)}"
                )
            if self.answering():
                logger.info("%s answers on 127.0.0.1:%s after %.1f s", self.name, self.port, time.monotonic() - started)
                return
            time.sleep(0.25)
        raise StackError(f"{self.name} did not answer on port {self.port} within {timeout:.0f} s; see {self.log}")

    def stop(self, timeout: float) -> None:
        self.finish_stop(self.request_stop(), timeout)

    def request_stop(self) -> int | None:
        """SIGTERM, without waiting (the nodes of a cluster stop together); the pid to wait for."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        os.kill(pid, signal.SIGTERM)
        return pid

    def finish_stop(self, pid: int | None, timeout: float) -> None:
        """Wait for ``pid`` to exit, SIGKILL it after ``timeout``."""
        if pid is None:
            return
        if not self._wait_gone(pid, timeout):
            logger.warning("%s (pid %s) ignored SIGTERM for %.0f s; sending SIGKILL", self.name, pid, timeout)
            os.kill(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 10):
                raise StackError(f"{self.name} (pid {pid}) survived SIGKILL; check `ps -p {pid}`")
        self.pid_file.unlink(missing_ok=True)
        logger.info("stopped %s (pid %s)", self.name, pid)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._child is not None and self._child.pid == pid:
                if self._child.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            time.sleep(0.1)
        return False

    def status(self) -> ServiceStatus:
        pid = self.pid()
        return ServiceStatus(
            name=self.name, pid=pid, running=pid is not None,
            answering=pid is not None and self.answering(), address=f"127.0.0.1:{self.port}", log=self.log,
        )


class KafkaService(_Service):
    """One KRaft node, broker and controller in one JVM (Apache Kafka 3.9 jars, see kafka_libs_dir).

    Node ``node`` of ``settings.kafka_brokers`` listens on kafka_port + 10·node (controller on
    kafka_controller_port + 10·node); every node is a voter, so a 3-node quorum survives one loss.
    All nodes of a cluster are formatted with one cluster id (``cluster_id``).
    """

    name = "kafka"
    marker = "kafka.Kafka"
    port_setting = "RISKPULSE_KAFKA_PORT"

    def __init__(self, settings: Settings, root: Path, run_dir: Path, node: int = 0, cluster_id: str | None = None):
        super().__init__(settings, root, run_dir, name="kafka" if settings.kafka_brokers == 1 else f"kafka-{node + 1}")
        self.node = node
        self.cluster_id = cluster_id

    @property
    def node_id(self) -> int:
        return self.node + 1

    @property
    def port(self) -> int:
        return node_port(self.settings.kafka_port, self.node)

    @property
    def log(self) -> Path:
        return self.root / "logs" / "server.log"

    def _java(self, main: str, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("java not found; install a JRE 17 (apt-get install -y openjdk-17-jre-headless)")
        return [
            java, f"-Dlog4j.configuration=file:{deploy_file('kafka', 'log4j.properties')}",
            f"-Dkafka.logs.dir={self.root / 'logs'}", "-Djava.awt.headless=true",
            "-cp", f"{ensure_kafka_libs(kafka_libs_dir(self.settings))}/*", main, *args,
        ]

    def prepare(self) -> None:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        settings = self.settings
        voters = ",".join(
            f"{node + 1}@127.0.0.1:{node_port(settings.kafka_controller_port, node)}" for node in range(settings.kafka_brokers)
        )
        properties = self.root / "server.properties"
        template = Template(deploy_file("kafka", "server.properties").read_text())
        properties.write_text(template.substitute(
            node_id=self.node_id, voters=voters, port=self.port,
            controller_port=node_port(settings.kafka_controller_port, self.node), log_dirs=data,
            replication_factor=settings.topic_replication_factor, min_insync_replicas=settings.topic_min_insync_replicas,
        ))
        if not (data / "meta.properties").exists():
            cluster_id = self.cluster_id or new_kafka_cluster_id()
            logger.info("formatting KRaft storage in %s (cluster %s, node %s)", data, cluster_id, self.node_id)
            formatted = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(properties)),
                capture_output=True, text=True,
            )
            if formatted.returncode != 0:
                raise StackError(f"formatting Kafka storage in {data} failed:\n{formatted.stdout}{formatted.stderr}")

    def command(self) -> list[str]:
        heap = self.settings.kafka_heap
        java = self._java("kafka.Kafka", str(self.root / "server.properties"))
        return [java[0], f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", *java[1:]]

    def answering(self) -> bool:
        """This node serves as a broker: it answers metadata requests and lists itself."""
        if not _port_open(self.port):
            return False
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{self.port}", bootstrap_timeout_ms=2000, request_timeout_ms=3000,
            )
        except KafkaError:
            return False
        try:
            brokers = admin.describe_cluster().get("brokers", [])
            return any(b.get("broker_id") == self.node_id and not b.get("is_fenced", False) for b in brokers)
        except KafkaError:
            return False
        finally:
            admin.close()


def new_kafka_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


def formatted_cluster_id(roots: list[Path]) -> str | None:
    """The cluster id a node of ``roots`` was formatted with, so a node formatted later joins it."""
    for root in roots:
        meta = root / "data" / "meta.properties"
        if meta.exists():
            for line in meta.read_text().splitlines():
                if line.startswith("cluster.id="):
                    return line.split("=", 1)[1].strip()
    return None


class ZooKeeperService(_Service):
    """Standalone ZooKeeper (Debian's ``zookeeper`` package) for replicated ClickHouse tables."""

    name = "zookeeper"
    marker = "ZooKeeperServerMain"
    port_setting = "RISKPULSE_ZOOKEEPER_PORT"

    @property
    def port(self) -> int:
        return self.settings.zookeeper_port

    @property
    def log(self) -> Path:
        return self.stdout  # slf4j-simple writes to stderr, which goes to stdout.log

    def logs(self, lines: int) -> dict[Path, str]:
        return {self.log: _tail(self.log, lines)}

    def prepare(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "zoo.cfg").write_text(
            f"tickTime=2000\ndataDir={self.root / 'data'}\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n"
            "admin.enableServer=false\nautopurge.purgeInterval=1\n"
        )

    def command(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise StackError("java not found; install a JRE 17 (apt-get install -y openjdk-17-jre-headless)")
        if not Path(ZOOKEEPER_CLASSPATH[0]).exists():
            raise StackError(f"{ZOOKEEPER_CLASSPATH[0]} is missing; apt-get install -y zookeeper (deploy/bootstrap.sh)")
        heap = self.settings.zookeeper_heap
        return [java, f"-Xms{heap}", f"-Xmx{heap}", "-Djava.awt.headless=true", "-cp", ":".join(ZOOKEEPER_CLASSPATH),
                "org.apache.zookeeper.server.ZooKeeperServerMain", str(self.root / "zoo.cfg")]

    def answering(self) -> bool:
        """`srvr` (the one four-letter command ZooKeeper 3.8 allows by default) reports a serving mode."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"srvr")
                return b"Mode:" in sock.recv(4096)
        except OSError:
            return False


@dataclass(frozen=True)
class ClickHouseNode:
    """Where one server of a ClickHouse cluster sits: node index, shard and replica (1-based)."""

    node: int
    shard: int
    replica: int

    @property
    def label(self) -> str:
        return f"s{self.shard}r{self.replica}"


def clickhouse_nodes(settings: Settings) -> list[ClickHouseNode]:
    """Shard-major order: node 0 is shard 1 replica 1, node 1 shard 1 replica 2, …"""
    return [
        ClickHouseNode(node=shard * settings.clickhouse_replicas + replica, shard=shard + 1, replica=replica + 1)
        for shard in range(settings.clickhouse_shards) for replica in range(settings.clickhouse_replicas)
    ]


class ClickHouseService(_Service):
    """Debian's clickhouse-server with a copied config and the project's override (deploy/clickhouse).

    As a node of a cluster (``at``), its ports are the settings' + 10·node, and config.d also gets
    deploy/clickhouse/cluster.xml: ZooKeeper, the cluster's shards, this node's macros.
    """

    name = "clickhouse"
    marker = "clickhouse"
    port_setting = "RISKPULSE_CLICKHOUSE_PORT"

    def __init__(self, settings: Settings, root: Path, run_dir: Path, at: ClickHouseNode | None = None):
        super().__init__(settings, root, run_dir, name=f"clickhouse-{at.label}" if at else "clickhouse")
        self.at = at

    @property
    def port(self) -> int:
        return node_port(self.settings.clickhouse_port, self.at.node if self.at else 0)

    @property
    def http_port(self) -> int:
        return node_port(self.settings.clickhouse_http_port, self.at.node if self.at else 0)

    @property
    def log(self) -> Path:
        return self.root / "logs" / "clickhouse-server.err.log"

    def logs(self, lines: int) -> dict[Path, str]:
        full = self.root / "logs" / "clickhouse-server.log"
        return {**super().logs(lines), full: _tail(full, lines)}

    def prepare(self) -> None:
        (self.root / "config.d").mkdir(parents=True, exist_ok=True)
        (self.root / "logs").mkdir(exist_ok=True)
        for name in ("config.xml", "users.xml"):
            source = CLICKHOUSE_ETC / name
            if not source.exists():
                raise StackError(f"{source} is missing; install clickhouse-server (deploy/bootstrap.sh)")
            shutil.copyfile(source, self.root / name)
        if self.at is None:
            interserver = '<interserver_http_port remove="remove"/>'
        else:
            port = node_port(self.settings.clickhouse_interserver_port, self.at.node)
            interserver = f"<interserver_http_port>{port}</interserver_http_port>\n    <interserver_http_host>127.0.0.1</interserver_http_host>"
        template = Template(deploy_file("clickhouse", "riskpulse.xml").read_text())
        (self.root / "config.d" / "riskpulse.xml").write_text(template.substitute(
            tcp_port=self.port, http_port=self.http_port, interserver=interserver,
            data_dir=self.root / "data", log_dir=self.root / "logs",
        ))
        cluster_config = self.root / "config.d" / "riskpulse-cluster.xml"
        if self.at is None:
            cluster_config.unlink(missing_ok=True)
            return
        cluster_config.write_text(Template(deploy_file("clickhouse", "cluster.xml").read_text()).substitute(
            cluster=self.settings.clickhouse_cluster_name, zookeeper_port=self.settings.zookeeper_port,
            shard=self.at.shard, replica=self.at.label, shards=self._shards_xml(),
        ))

    def _shards_xml(self) -> str:
        shards: dict[int, list[str]] = {}
        for node in clickhouse_nodes(self.settings):
            port = node_port(self.settings.clickhouse_port, node.node)
            shards.setdefault(node.shard, []).append(
                f"                <replica><host>127.0.0.1</host><port>{port}</port></replica>"
            )
        return "\n".join(
            "            <shard>\n                <internal_replication>true</internal_replication>\n"
            + "\n".join(replicas) + "\n            </shard>"
            for replicas in shards.values()
        )

    def command(self) -> list[str]:
        binary = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
        if not Path(binary).exists():
            raise StackError("clickhouse-server not found; run deploy/bootstrap.sh (apt-get install clickhouse-server)")
        return [binary, f"--config-file={self.root / 'config.xml'}"]

    def answering(self) -> bool:
        url = f"http://127.0.0.1:{self.http_port}/ping"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return response.read().strip() == b"Ok."
        except OSError:
            return False


def kafka_libs_dir(settings: Settings) -> Path:
    """Where the broker's jars are: the checkout's deploy/kafka/libs once bootstrap.sh filled it,
    else <home>/kafka-libs (an installed package's own folder is not ours to write into)."""
    if any(CHECKOUT_KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        return CHECKOUT_KAFKA_LIBS
    return settings.home / "kafka-libs"


def ensure_kafka_libs(libs: Path) -> Path:
    """The broker's jars, resolved from Maven Central the first time they are needed."""
    if any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(f"{libs} has no Kafka jars and Maven is missing; apt-get install -y maven")
    logger.info("resolving Kafka jars with Maven into %s", libs)
    subprocess.run([mvn, "-q", "-B", "-f", str(deploy_file("kafka", "pom.xml")), "dependency:copy-dependencies",
                    f"-DoutputDirectory={libs}"], check=True)
    return libs


@dataclass(frozen=True)
class Layout:
    """How many of each part `stack up` runs; 1/1/1 is one broker and one server."""

    brokers: int = 1
    shards: int = 1
    replicas: int = 1

    def applied(self, settings: Settings) -> Settings:
        return settings.model_copy(update={
            "kafka_brokers": self.brokers, "clickhouse_shards": self.shards, "clickhouse_replicas": self.replicas,
        })


def layout_file(settings: Settings) -> Path:
    return settings.home.resolve() / "run" / "layout.json"


def saved_layout(settings: Settings) -> Layout | None:
    """The layout the last `stack up` of this home started, if any."""
    try:
        return Layout(**json.loads(layout_file(settings).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


class Stack:
    """The Kafka broker(s) and ClickHouse server(s) of one ``settings.home``, laid out as the settings say
    (``kafka_brokers``, ``clickhouse_shards``, ``clickhouse_replicas``; a cluster adds ZooKeeper)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        home = settings.home.resolve()
        self.run_dir = home / "run"
        self.layout = Layout(settings.kafka_brokers, settings.clickhouse_shards, settings.clickhouse_replicas)
        single_kafka = settings.kafka_brokers == 1
        kafka_roots = [home / ("kafka" if single_kafka else f"kafka-{node + 1}") for node in range(settings.kafka_brokers)]
        cluster_id = formatted_cluster_id(kafka_roots) or new_kafka_cluster_id()
        self.kafka: list[_Service] = [
            KafkaService(settings, root, self.run_dir, node=node, cluster_id=cluster_id)
            for node, root in enumerate(kafka_roots)
        ]
        self.clickhouse: list[_Service] = (
            [ClickHouseService(settings, home / "clickhouse", self.run_dir)] if settings.clickhouse_nodes == 1 else
            [ZooKeeperService(settings, home / "zookeeper", self.run_dir)] + [
                ClickHouseService(settings, home / f"clickhouse-{at.label}", self.run_dir, at=at)
                for at in clickhouse_nodes(settings)
            ]
        )
        self.services: list[_Service] = [*self.kafka, *self.clickhouse]

    def service(self, name: str) -> _Service:
        for service in self.services:
            if service.name == name:
                return service
        raise StackError(f"no part named {name!r}; parts: {', '.join(s.name for s in self.services)}")

    def up(self, timeout: float = 90) -> None:
        """Start whatever is not running and wait until all answer; stop what started if one fails.

        The nodes of a Kafka cluster start together (a KRaft node serves only once a quorum of
        voters runs); ZooKeeper answers before the ClickHouse servers start.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        layout_file(self.settings).write_text(json.dumps(self.layout.__dict__) + "\n")
        groups = [self.kafka, self.clickhouse[:1], self.clickhouse[1:]]
        try:
            for group in groups:
                launched = [service for service in group if service.launch()]
                for service in launched:
                    service.wait_answering(timeout)
        except BaseException:
            self.down()
            raise

    def down(self, timeout: float = 30) -> None:
        """Stop ClickHouse, then ZooKeeper, then Kafka; the nodes of a Kafka cluster together (one by
        one, the last waits for a quorum that is gone until SIGKILL)."""
        for group in (self.clickhouse[1:], self.clickhouse[:1], self.kafka):
            pids = [(service, service.request_stop()) for service in group]
            for service, pid in pids:
                service.finish_stop(pid, timeout)

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def logs(self, lines: int = 60) -> str:
        """Tails of every log, for a failing test or a stack that will not start."""
        parts = []
        for service in self.services:
            for path, text in service.logs(lines).items():
                parts.append(f"===== {service.name}: {path} =====\n{text}")
        return "\n".join(parts)


app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect the local Kafka and ClickHouse (one node or clusters).")


def _stack(settings: Settings, brokers: int | None = None, shards: int | None = None, replicas: int | None = None) -> Stack:
    """The stack of this home: options given, else the layout `up` saved, else the settings."""
    known = saved_layout(settings) or Layout(settings.kafka_brokers, settings.clickhouse_shards, settings.clickhouse_replicas)
    layout = Layout(brokers or known.brokers, shards or known.shards, replicas or known.replicas)
    return Stack(layout.applied(settings))


@app.command("up")
def up_command(
    timeout: float = typer.Option(90, help="Seconds to wait for each part to answer."),
    brokers: int = typer.Option(None, min=1, help="Kafka nodes (KRaft broker+controller each); default RISKPULSE_KAFKA_BROKERS."),
    shards: int = typer.Option(None, min=1, help="ClickHouse shards; default RISKPULSE_CLICKHOUSE_SHARDS."),
    replicas: int = typer.Option(None, min=1, help="ClickHouse replicas per shard; default RISKPULSE_CLICKHOUSE_REPLICAS."),
) -> None:
    """Start Kafka and ClickHouse (idempotent) and wait until every part answers."""
    settings = get_settings()
    stack = Stack(Layout(brokers or settings.kafka_brokers, shards or settings.clickhouse_shards,
                         replicas or settings.clickhouse_replicas).applied(settings))
    try:
        stack.up(timeout)
    except (StackError, subprocess.CalledProcessError, OSError) as exc:
        typer.echo(f"stack up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    _print_status(stack)
    wanted = stack.settings
    hints = {
        "RISKPULSE_KAFKA_BROKERS": (wanted.kafka_brokers, settings.kafka_brokers),
        "RISKPULSE_CLICKHOUSE_SHARDS": (wanted.clickhouse_shards, settings.clickhouse_shards),
        "RISKPULSE_CLICKHOUSE_REPLICAS": (wanted.clickhouse_replicas, settings.clickhouse_replicas),
    }
    exports = [f"{name}={value}" for name, (value, current) in hints.items() if value != current]
    if exports:
        typer.echo(f"clients (worker, db migrate, dashboard) need: export {' '.join(exports)}")


@app.command("down")
def down_command(timeout: float = typer.Option(30, help="Seconds to wait after SIGTERM before SIGKILL.")) -> None:
    """Stop every part (SIGTERM, then SIGKILL after the timeout)."""
    _stack(get_settings()).down(timeout)
    typer.echo("stack stopped")


@app.command("status")
def status_command() -> None:
    """Show each part; exit code 1 unless all run and answer."""
    if not _print_status(_stack(get_settings())):
        raise typer.Exit(1)


def _print_status(stack: Stack) -> bool:
    healthy = True
    statuses = stack.status()
    width = max(11, *(len(st.name) for st in statuses))
    for st in statuses:
        state = "up" if st.answering else ("running, not answering" if st.running else "down")
        healthy &= st.answering
        typer.echo(f"{st.name:<{width}} {state:<24} {st.address:<18} pid={st.pid or '-'}  log={st.log}")
    return healthy
