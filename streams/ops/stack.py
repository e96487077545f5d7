"""`riskpulse stack up|down|status`: the real Kafka broker and ClickHouse server, on loopback.

Both run as plain child processes with their data under ``settings.home`` (no Docker, no
systemd), so the demo, the test fixtures and CI start exactly the same parts the same way.
Processes outlive the command that started them; their pids are kept in ``<home>/run``.
"""

from __future__ import annotations

import base64
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
from riskpulse.core.settings import Settings, get_settings

logger = logging.getLogger("riskpulse.stack")

# Jars resolved by bootstrap.sh in a checkout; an installed package resolves them under RISKPULSE_HOME.
CHECKOUT_KAFKA_LIBS = deploy_file("kafka", "libs")
CLICKHOUSE_ETC = Path("/etc/clickhouse-server")


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

    def __init__(self, settings: Settings, root: Path, run_dir: Path):
        self.settings = settings
        self.root = root
        self.run_dir = run_dir
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
        if self.pid() is not None:
            logger.info("%s already running (pid %s, port %s)", self.name, self.pid(), self.port)
            return
        if _port_open(self.port):
            raise StackError(
                f"port {self.port} for {self.name} is taken by another process; stop it or pick another "
                f"port (RISKPULSE_{self.name.upper()}_PORT)"
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
        self._wait_answering(timeout)

    def _wait_answering(self, timeout: float) -> None:
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
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
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
    """Single-node KRaft broker+controller (Apache Kafka 3.9 jars, see kafka_libs_dir)."""

    name = "kafka"
    marker = "kafka.Kafka"

    @property
    def port(self) -> int:
        return self.settings.kafka_port

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
        properties = self.root / "server.properties"
        template = Template(deploy_file("kafka", "server.properties").read_text())
        properties.write_text(template.substitute(
            port=self.settings.kafka_port, controller_port=self.settings.kafka_controller_port, log_dirs=data,
        ))
        if not (data / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
            logger.info("formatting KRaft storage in %s (cluster %s)", data, cluster_id)
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
            return bool(admin.describe_cluster().get("brokers"))
        except KafkaError:
            return False
        finally:
            admin.close()


class ClickHouseService(_Service):
    """Debian's clickhouse-server with a copied config and the project's override (deploy/clickhouse)."""

    name = "clickhouse"
    marker = "clickhouse"

    @property
    def port(self) -> int:
        return self.settings.clickhouse_port

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
        template = Template(deploy_file("clickhouse", "riskpulse.xml").read_text())
        (self.root / "config.d" / "riskpulse.xml").write_text(template.substitute(
            tcp_port=self.settings.clickhouse_port, http_port=self.settings.clickhouse_http_port,
            data_dir=self.root / "data", log_dir=self.root / "logs",
        ))

    def command(self) -> list[str]:
        binary = shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"
        if not Path(binary).exists():
            raise StackError("clickhouse-server not found; run deploy/bootstrap.sh (apt-get install clickhouse-server)")
        return [binary, f"--config-file={self.root / 'config.xml'}"]

    def answering(self) -> bool:
        url = f"http://127.0.0.1:{self.settings.clickhouse_http_port}/ping"
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


class Stack:
    """The Kafka broker and the ClickHouse server of one ``settings.home``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        home = settings.home.resolve()
        run_dir = home / "run"
        self.services: list[_Service] = [
            KafkaService(settings, home / "kafka", run_dir),
            ClickHouseService(settings, home / "clickhouse", run_dir),
        ]

    def up(self, timeout: float = 90) -> None:
        """Start whatever is not running and wait until both answer; stop what started if one fails."""
        try:
            for service in self.services:
                service.start(timeout)
        except BaseException:
            self.down()
            raise

    def down(self, timeout: float = 30) -> None:
        for service in reversed(self.services):
            service.stop(timeout)

    def status(self) -> list[ServiceStatus]:
        return [service.status() for service in self.services]

    def logs(self, lines: int = 60) -> str:
        """Tails of every log, for a failing test or a stack that will not start."""
        parts = []
        for service in self.services:
            for path, text in service.logs(lines).items():
                parts.append(f"===== {service.name}: {path} =====\n{text}")
        return "\n".join(parts)


app = typer.Typer(no_args_is_help=True, help="Start, stop and inspect the local Kafka broker and ClickHouse server.")


@app.command("up")
def up_command(timeout: float = typer.Option(90, help="Seconds to wait for each part to answer.")) -> None:
    """Start the broker and ClickHouse (idempotent) and wait until both answer."""
    settings = get_settings()
    try:
        Stack(settings).up(timeout)
    except (StackError, subprocess.CalledProcessError, OSError) as exc:
        typer.echo(f"stack up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    _print_status(Stack(settings))


@app.command("down")
def down_command(timeout: float = typer.Option(30, help="Seconds to wait after SIGTERM before SIGKILL.")) -> None:
    """Stop both (SIGTERM, then SIGKILL after the timeout)."""
    Stack(get_settings()).down(timeout)
    typer.echo("stack stopped")


@app.command("status")
def status_command() -> None:
    """Show each part; exit code 1 unless both run and answer."""
    if not _print_status(Stack(get_settings())):
        raise typer.Exit(1)


def _print_status(stack: Stack) -> bool:
    healthy = True
    for st in stack.status():
        state = "up" if st.answering else ("running, not answering" if st.running else "down")
        healthy &= st.answering
        typer.echo(f"{st.name:<11} {state:<24} {st.address:<18} pid={st.pid or '-'}  log={st.log}")
    return healthy
