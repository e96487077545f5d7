"""Entity extraction in a process of its own, beside the worker.

A worker's event loop (faust's per-record work, emits, acks) and its batch thread share one GIL. The
entity finder costs ~50 µs a message of pure Python, and in that thread it took turns with the event loop:
with a constant classifier, enrichment cut a worker's throughput by a third. In a child process it runs on
another core while the worker classifies the same batch and the event loop gathers the next one.

The child is a plain ``python -m`` subprocess (``multiprocessing``'s spawn would re-import the worker's
main script) that reads batches of texts from its stdin and writes their mentions to its stdout, one
pickled frame each. It exits when its stdin closes, so it never outlives the worker, even after ``kill -9``.
"""

from __future__ import annotations

import logging
import pickle
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.entities import EntityExtractor, Mention, load_extractor, watchlist_path

log = logging.getLogger("riskpulse.entities")

_FRAME = struct.Struct("!Q")  # each message: its length, then the pickle


class EntityProcessError(RiskPulseError):
    """The entity finder's process died or answered nonsense; the batch it held is retried by the worker."""


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next frame's value; EOFError when the other side has gone."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    size = _FRAME.unpack(head)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class _Reply:
    """The child's answer to one batch, read when the worker needs it (meanwhile the child works)."""

    def __init__(self, owner: EntityProcess, count: int) -> None:
        self._owner, self._count = owner, count

    def result(self) -> list[list[Mention]]:
        return self._owner._read_reply(self._count)


class EntityProcess:
    """``EntityExtractor.submit`` run in one child process, one batch at a time (the worker's batch thread is its
    only caller). If the child dies, the batch it held fails, the worker retries it, and that ``submit`` starts
    a new child."""

    def __init__(self, settings: Settings, start_timeout_s: float = 120.0) -> None:
        self._command = [sys.executable, "-m", __name__, str(watchlist_path(settings)),
                         "unlisted" if settings.entities_unlisted else "listed"]
        self._start_timeout_s = start_timeout_s
        self._child: subprocess.Popen[bytes] | None = None
        self._started()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        if self._child is not None:
            log.error("entity finder process exited with %s; starting a new one", self._child.returncode)
            self.close()
        started = time.perf_counter()
        self._child = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ready = _receive(self._child.stdout)  # the child says so once its extractor is built
        except EOFError:
            self.close()
            raise EntityProcessError(f"entity finder process failed to start: {' '.join(self._command)}") from None
        log.info("entity finder process %s started in %.1f s (%s)", self._child.pid, time.perf_counter() - started, ready)
        return self._child

    def submit(self, texts: Sequence[str]) -> _Reply:
        """The mentions of each text, found in the child while the caller goes on."""
        child = self._started()
        try:
            _send(child.stdin, list(texts))
        except (BrokenPipeError, OSError) as exc:
            self.close()
            raise EntityProcessError(f"entity finder process is gone ({exc})") from exc
        return _Reply(self, len(texts))

    def _read_reply(self, count: int) -> list[list[Mention]]:
        try:
            found = _receive(self._child.stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            self.close()
            raise EntityProcessError(f"entity finder process died mid-batch ({exc.__class__.__name__})") from exc
        if len(found) != count:
            self.close()
            raise EntityProcessError(f"entity finder process answered {len(found)} texts' mentions for {count}")
        return found

    def close(self) -> None:
        """Close the child's stdin (it exits on its own) and reap it."""
        child, self._child = self._child, None
        if child is None:
            return
        for stream in (child.stdin, child.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def entity_finder(settings: Settings) -> EntityExtractor | EntityProcess | None:
    """The worker's entity finder as the settings ask: none, in its own process, or in the worker's batch thread."""
    if not settings.entities:
        return None
    return EntityProcess(settings) if settings.entities_process else load_extractor(settings)


def serve(watchlist: str, unlisted: bool, requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child: build the extractor, say so, then answer each batch of texts until the worker closes ``requests``."""
    extractor = load_extractor(Settings(watchlist_file=watchlist, entities_unlisted=unlisted))
    _send(replies, f"watchlist {watchlist}, {len(extractor.catalogue.entities)} entities")
    while True:
        try:
            texts = _receive(requests)
        except EOFError:
            return
        _send(replies, extractor.extract_batch(texts))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group; the worker decides
    try:
        serve(sys.argv[1], sys.argv[2] == "unlisted", sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:
        pass  # the worker went away mid-batch
