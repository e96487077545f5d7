"""The daily digest from chDB: the real queries, files written under home."""

from tests.digest_store_checks import check_digest


def test_daily_digest_on_chdb(chdb_store, tmp_path):
    check_digest(chdb_store, tmp_path / "home")
