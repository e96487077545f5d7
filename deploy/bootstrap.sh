#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run RiskPulse and its tests. Idempotent and
# non-interactive (CI has no stdin): each step is skipped when already done. It starts nothing:
# `riskpulse stack up` starts Kafka and ClickHouse under RISKPULSE_HOME.
#
#   deploy/bootstrap.sh            # from the repository root (any directory works)
#   PYTHON=python3.11 deploy/bootstrap.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "bootstrap: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo -E"
fi

say() { printf '\n== %s\n' "$*"; }

# --- system packages ---------------------------------------------------------------------
# Java runs the Kafka broker, Maven resolves its jars, Chromium drives the dashboard's browser tests,
# ZooKeeper keeps the replicated tables of `riskpulse stack up --shards N --replicas M` in step (Debian's
# `zookeeper` has no service to start; `zookeeperd` would).
PACKAGES=(clickhouse-server clickhouse-client zookeeper chromium openjdk-17-jre-headless maven python3-pip python3-venv)
missing=()
for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
# A pyenv/venv Python brings its own pip; Debian's python3-pip/venv are needed only for the system one.
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
    missing=("${missing[@]/python3-pip}")
    missing=("${missing[@]/python3-venv}")
fi
read -r -a missing <<< "${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    # Package scripts must not start services (clickhouse-server's postinst would start the
    # system-wide server on ports 9000/8123): the same policy-rc.d guard Docker images use.
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    trap 'if [ -n "$guard" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi' EXIT
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q "${missing[@]}"
    if [[ " ${missing[*]} " == *" clickhouse-server "* ]] && [ -d /run/systemd/system ]; then
        # Not at boot either: RiskPulse runs its own server with its own config and ports.
        $SUDO systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
    fi
else
    say "system packages present"
fi

# --- Python package ------------------------------------------------------------------------
# Skipped while pyproject.toml and the interpreter are those of the last successful install.
stamp="$ROOT/.riskpulse/bootstrap-pip.sha256"
wanted="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.executable)')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && (cd / && "$PYTHON" -c 'import riskpulse.cli, pytest') 2>/dev/null; then
    say "Python package installed (pyproject.toml unchanged)"
else
    say "pip install -e .[dev] with $("$PYTHON" --version)"
    pip_flags=()
    if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(sys.prefix != sys.base_prefix or not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
        # Debian's own python3 refuses system-wide installs (PEP 668); on a dedicated machine or
        # CI runner the project owns that interpreter, so install into it anyway.
        pip_flags+=(--break-system-packages)
    fi
    # pip 23.x crashes resolving torch's CUDA wheels' metadata ("expected string … NoneType"): upgrade first.
    "$PYTHON" -m pip install -q "${pip_flags[@]}" --upgrade "pip>=25"
    "$PYTHON" -m pip install -q "${pip_flags[@]}" -e "$ROOT[dev]"
    mkdir -p "$(dirname "$stamp")" && echo "$wanted" > "$stamp"
fi

# --- Kafka broker jars ------------------------------------------------------------------------
if compgen -G "$ROOT/deploy/kafka/libs/kafka_2.13-*.jar" >/dev/null; then
    say "Kafka jars present in deploy/kafka/libs"
else
    say "resolving Kafka jars with Maven into deploy/kafka/libs"
    mvn -q -B -f "$ROOT/deploy/kafka/pom.xml" dependency:copy-dependencies -DoutputDirectory="$ROOT/deploy/kafka/libs"
fi

say "bootstrap done: \`riskpulse stack up\` starts Kafka and ClickHouse"
