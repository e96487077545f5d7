"""Deployment files shipped with the package: Kafka and ClickHouse configs, the default alert
rules, the bootstrap and test scripts. Found through :mod:`riskpulse.core.resources`."""
