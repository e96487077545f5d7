"""RiskPulse's ground floor: what every other part shares and nothing else.

The root error, the settings, the message schema, time helpers, retry delays and where the
packaged files are. It imports no other RiskPulse package.
"""

import logging

logger = logging.getLogger("riskpulse")


class RiskPulseError(Exception):
    """Root of RiskPulse's own errors; the message says what is wrong and what to do."""
