"""Negative-sentiment spike alerts: rules, detection, grouping and signed webhook delivery.

The alert tables belong to :mod:`riskpulse.streams.store.alerts`; importing this package stays
light (no faust, no HTTP client).
"""
