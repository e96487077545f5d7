"""Registry: versions appear whole or not at all; `current` moves only on promote."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from riskpulse.models.serving.registry import Registry, RegistryError


def make_version(registry: Registry, name: str) -> None:
    with registry.write(name) as out:
        (out / "model.safetensors").write_bytes(b"weights")


def test_write_promote_and_list(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.current() is None and registry.versions() == []
    make_version(registry, "v1")
    make_version(registry, "v2")
    assert registry.versions() == ["v1", "v2"] and registry.current() is None
    registry.promote("v1")
    assert registry.current() == "v1" and registry.resolve(None) == "v1"
    assert (registry.path("v1") / "model.safetensors").read_bytes() == b"weights"


def test_exception_mid_write_leaves_current_and_versions_untouched(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    make_version(registry, "v1")
    registry.promote("v1")
    with pytest.raises(RuntimeError):
        with registry.write("v2") as out:
            (out / "model.safetensors").write_bytes(b"half")
            raise RuntimeError("disk full")
    assert registry.current() == "v1" and registry.versions() == ["v1"]
    assert list((tmp_path / "versions").iterdir()) == [tmp_path / "versions" / "v1"]


def test_killed_process_mid_write_leaves_current_untouched(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    make_version(registry, "v1")
    registry.promote("v1")
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from riskpulse.models.serving.registry import Registry
        with Registry(Path({str(tmp_path)!r})).write("v2") as out:
            (out / "model.safetensors").write_bytes(b"half")
            os._exit(9)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 9
    assert registry.current() == "v1" and registry.versions() == ["v1"]
    with pytest.raises(RegistryError):
        registry.path("v2")


def test_errors_name_the_problem(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(RegistryError, match="riskpulse train"):
        registry.resolve(None)
    with pytest.raises(RegistryError, match="'nope'"):
        registry.promote("nope")
    make_version(registry, "v1")
    with pytest.raises(RegistryError, match="already exists"):
        make_version(registry, "v1")


def test_version_names_sort_by_creation() -> None:
    a = Registry.new_version_name("quick")
    assert "-quick-" in a and len(a.split("-")[0]) == 8


def test_disk_errors_name_the_path_and_keep_current(tmp_path: Path) -> None:
    """ENOSPC while a version is written, or a pointer that cannot be replaced: a RegistryError naming where,
    staging removed, `current` unchanged (the full-disk and read-only cases on real mounts are in tests/faults)."""
    import errno
    import os

    registry = Registry(tmp_path)
    make_version(registry, "v1")
    make_version(registry, "v2")
    registry.promote("v1")
    with pytest.raises(RegistryError, match=f"cannot write model version v3 under {tmp_path / 'versions'}: No space left"):
        with registry.write("v3") as out:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(out / "model.safetensors"))
    assert registry.versions() == ["v1", "v2"] and not list((tmp_path / "versions").glob(".staging-*"))
    registry.pointer.unlink()
    registry.pointer.mkdir()   # the pointer cannot be replaced (as with a read-only registry)
    with pytest.raises(RegistryError, match=f"cannot promote v2: {registry.pointer} is not writable"):
        registry.promote("v2")
    assert not list(tmp_path.glob(".current-*"))
