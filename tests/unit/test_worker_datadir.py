"""The worker checks its faust data dir before it starts (a read-only or full disk died inside faust with a
bare traceback); the real read-only directory is in tests/faults."""

from pathlib import Path

import pytest

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings
from riskpulse.streams.worker.app import check_writable, worker_datadir


def test_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    datadir = worker_datadir(Settings(home=tmp_path, consumer_group="g"))
    datadir.write_text("a file where the directory should be")
    with pytest.raises(RiskPulseError, match=f"faust data dir {datadir} is not writable"):
        check_writable(datadir)


def test_writable_data_dir_is_created_and_left_clean(tmp_path: Path) -> None:
    datadir = worker_datadir(Settings(home=tmp_path, consumer_group="g"))
    check_writable(datadir)
    assert datadir.is_dir() and list(datadir.iterdir()) == []
