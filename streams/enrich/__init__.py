"""Per-message enrichment between parsing and classification: PII masking, entities, near-duplicate stories.

Each module here is a pure, synchronous transform over a batch of parsed messages, so the worker, the
offline ``riskpulse score`` path and the CLIs that expose each one share a single implementation.
"""
