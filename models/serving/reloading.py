"""Hot reload: an Engine that follows the registry's ``current`` pointer between batches.

Workers build a :class:`ReloadingEngine` where they would build an ``Engine`` and call
``classify`` as before. Before each batch it looks at the pointer (at most every
``settings.model_reload_check_s``) and, when a new version was promoted, loads it and swaps;
a batch is always scored by one version, whose name every :class:`Scores` carries. Nothing is
dropped or scored twice by a switch, because the switch happens between two ``classify`` calls.
A version that fails to load is logged once and skipped; the old model keeps serving.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from riskpulse.models.serving.registry import Registry
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.models")


def _load(settings: Settings, version: str | None):
    from riskpulse.models.serving.inference import Engine

    return Engine.load(settings, version)


class ReloadingEngine:
    def __init__(
        self,
        settings: Settings,
        engine: Any | None = None,
        loader: Callable[[Settings, str | None], Any] = _load,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.registry = Registry(settings.registry_root)
        self._loader = loader
        self._clock = clock
        self._engine = engine if engine is not None else loader(settings, None)
        self._next_check = clock() + settings.model_reload_check_s
        self._bad_version: str | None = None

    @property
    def version(self) -> str:
        return self._engine.version

    @property
    def engine(self) -> Any:
        return self._engine

    def maybe_reload(self, force: bool = False) -> bool:
        """Swap to the registry's current version if it changed; True when a swap happened."""
        now = self._clock()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.settings.model_reload_check_s
        current = self.registry.current()
        if current is None or current == self._engine.version or current == self._bad_version:
            return False
        try:
            fresh = self._loader(self.settings, current)
        except Exception:  # noqa: BLE001 - a bad version must not stop scoring
            log.exception("model %s was promoted but failed to load; still serving %s", current, self._engine.version)
            self._bad_version = current
            return False
        log.info("hot reload: model %s -> %s", self._engine.version, fresh.version)
        self._engine = fresh
        return True

    def classify(self, texts: Sequence[str]) -> list:
        """Score one batch with one model version (reloading first if a new one was promoted)."""
        self.maybe_reload()
        return self._engine.classify(texts)

    def __getattr__(self, name: str) -> Any:
        if name == "_engine":
            raise AttributeError(name)
        return getattr(self._engine, name)
