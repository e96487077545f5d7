"""Negative-sentiment spike alerts: rules, detection, grouping and signed webhook delivery.

``DDL`` lists the alert tables for ``riskpulse db migrate``; importing this package stays
light (no faust, no HTTP client).
"""

from riskpulse.streams.store.alerts import DDL

__all__ = ["DDL"]
