"""The bundled sample stream (``messages.jsonl``, see ``SOURCE.md``), shipped as package data."""
