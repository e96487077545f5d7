"""RiskPulse streaming side: schema, settings, topics, agents, sinks, alerts, producers, CLI."""

import logging

logger = logging.getLogger("riskpulse")


class RiskPulseError(Exception):
    """Root of RiskPulse's own errors; the message says what is wrong and what to do."""
