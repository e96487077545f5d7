"""Versioned model registry: one directory per trained model and a `current` pointer.

Layout under the root: ``versions/<version>/`` (weights, tokenizer, label maps, config, data
fingerprints, metrics, confusion matrices) and a ``current`` file naming the served version.
A version directory appears only complete: it is written under ``.staging-*`` and renamed into
place; the pointer is replaced with an atomic ``os.replace``. A crash mid-write therefore leaves
``current`` and every existing version untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from riskpulse.core import RiskPulseError

log = logging.getLogger("riskpulse.models")


class RegistryError(RiskPulseError):
    """A model version is missing or the registry is empty."""


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.versions_dir = self.root / "versions"
        self.pointer = self.root / "current"

    def current(self) -> str | None:
        if not self.pointer.is_file():
            return None
        version = self.pointer.read_text(encoding="utf-8").strip()
        return version or None

    def versions(self) -> list[str]:
        """Complete versions, oldest first (names sort by creation time)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def path(self, version: str) -> Path:
        path = self.versions_dir / version
        if not path.is_dir():
            raise RegistryError(f"model version {version!r} not in registry {self.root}; known: {self.versions()}")
        return path

    def resolve(self, version: str | None) -> str:
        """`version`, or the current one; an error that says to train when there is none."""
        if version is not None:
            self.path(version)
            return version
        current = self.current()
        if current is None:
            raise RegistryError(f"registry {self.root} has no current model; run `riskpulse train` (or --quick) first")
        return current

    def promote(self, version: str) -> None:
        self.path(version)
        tmp = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".current-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(version + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.pointer)
        except OSError as exc:  # read-only or full disk: say where; `current` still names the served version
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            raise RegistryError(f"cannot promote {version}: {self.pointer} is not writable ({exc.strerror or exc}); "
                                f"still serving {self.current()}") from exc
        log.info("promoted model version %s in %s", version, self.root)

    def info(self, version: str) -> dict[str, Any]:
        """What a version says about itself: training arguments, metrics and data fingerprints."""
        path = self.path(version)
        out: dict[str, Any] = {"version": version, "path": str(path), "current": version == self.current()}
        for name in ("training", "metrics", "fingerprints"):
            file = path / f"{name}.json"
            if file.is_file():
                out[name] = json.loads(file.read_text(encoding="utf-8"))
        return out

    @staticmethod
    def new_version_name(tag: str = "") -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        return f"{stamp}-{tag + '-' if tag else ''}{uuid.uuid4().hex[:6]}"

    @contextlib.contextmanager
    def write(self, version: str) -> Iterator[Path]:
        """Yield a staging directory; on clean exit it becomes ``versions/<version>`` in one rename."""
        final = self.versions_dir / version
        if final.exists():
            raise RegistryError(f"model version {version!r} already exists in {self.root}; pick another name")
        staging = None
        try:
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=self.versions_dir, prefix=f".staging-{version}-"))
            yield staging
            os.replace(staging, final)
        except BaseException as exc:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):  # disk full or read-only: name the place; current is untouched
                raise RegistryError(f"cannot write model version {version} under {self.versions_dir}: "
                                    f"{exc.strerror or exc} ({getattr(exc, 'filename', None) or 'no file named'})") from exc
            raise
        log.info("wrote model version %s to %s", version, final)
