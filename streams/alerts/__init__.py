"""Negative-sentiment spike alerts: rules, detection, grouping and signed webhook delivery.

``DDL`` lists the alert tables for ``riskpulse db migrate``; importing this package stays
light (no faust, no HTTP client).
"""

from streams.alerts.store import DDL

__all__ = ["DDL"]
