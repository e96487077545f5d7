"""Local tier: tests that need only this machine, no servers.

May use: chDB (``chdb_settings``, ``chdb_store``, ``filled_store``), the quick model (``engine``,
``quick_registry``: trained once, then cached under ``.riskpulse/test-cache/``), tiny trainings on
``data_root``, Streamlit's AppTest, and ``tests/fakes.py``. Not a Kafka broker, a ClickHouse
server, an HTTP receiver or a browser (those are tests/integration). Run:
``python -m pytest tests/local -q`` (a few minutes; more the first time, to train the quick model).
"""
