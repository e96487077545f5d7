"""Unit tier: pure tests that run in seconds.

May use: the code under test, ``tests/fakes.py`` (FakeEngine, FakeStore, FakeClock, …),
``MemoryStore``, ``tmp_path`` files (``data_root``'s CSVs, SQLite), short-lived ``python -c``
probes. May not use: model training or loading (``engine``, ``quick_registry``, ``train(...)``),
chDB (``chdb_store``, ``chdb_settings``, ``filled_store``), Streamlit's AppTest, servers, or waits
on wall-clock seconds (inject a clock). ``tests/unit/conftest.py`` fails a test that asks for a
fixture of another tier. Run: ``python -m pytest tests/unit -q`` (under a minute on 2 cores).
"""
