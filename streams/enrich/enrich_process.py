"""Entity extraction and story sketches in a process of their own, beside the worker.

A worker's event loop (faust's per-record work, emits, acks) and its batch thread share one GIL. The
entity finder (~45 µs a message) and the story sketches (~50 µs: shingles, MinHash) are pure Python and
numpy that took turns with the event loop. In a child process they run on another core while the worker
classifies the same batch and the event loop gathers the next one, so with a real model they cost the
pipeline nothing measurable; with nothing to classify (a constant model) the child's work is the wall.
Matching sketches against the story index stays in the worker, which owns the index.

The child is a plain ``python -m`` subprocess (``multiprocessing``'s spawn would re-import the worker's
main script) that reads requests from its stdin and writes answers to its stdout, one pickled frame each.
It exits when its stdin closes, so it never outlives the worker, even after ``kill -9``.
"""

from __future__ import annotations

import json
import logging
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import IO, Any

from riskpulse.core import RiskPulseError
from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.entities import load_extractor, watchlist_path
from riskpulse.streams.enrich.stories import Sketcher, StoryParams, params_from

log = logging.getLogger("riskpulse.enrich")

_FRAME = struct.Struct("!Q")  # each message: its length, then the pickle
MAX_OUTSTANDING = 8  # requests whose answers are kept; the worker has two (entities, sketches) of one batch at a time


class EnrichProcessError(RiskPulseError):
    """The enrichment process died or failed a request; the batch it held is retried by the worker."""


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
    """The child's answer to one request, read when the worker needs it (meanwhile the child works)."""

    def __init__(self, owner: EnrichProcess, request: int, count: int) -> None:
        self._owner, self._request, self._count = owner, request, count

    def result(self) -> list[Any]:
        return self._owner._answer(self._request, self._count)


class _Remote:
    """One kind of work done by the child: ``submit`` is ``EntityExtractor.submit`` for "entities" and
    ``Sketcher.submit`` for "sketches"."""

    def __init__(self, owner: EnrichProcess, kind: str) -> None:
        self._owner, self._kind = owner, kind

    def submit(self, texts: Sequence[str]) -> _Reply:
        return self._owner._request(self._kind, texts)

    def sketch(self, texts: Sequence[str]) -> list[Any]:
        return self.submit(texts).result()


class EnrichProcess:
    """One child process that finds entities (``.entities``) and sketches stories (``.sketcher``) for the worker's
    batch thread. A reader thread takes every answer off the child's stdout as soon as it is written, so neither
    side ever blocks on a full pipe while the other waits for it; answers are collected in any order. If the
    child dies, the batch it held fails, the worker retries it, and the next request starts a new child."""

    def __init__(self, settings: Settings) -> None:
        params = params_from(settings)
        self._command = [sys.executable, "-m", __name__, str(watchlist_path(settings)),
                         "unlisted" if settings.entities_unlisted else "listed", json.dumps(asdict(params))]
        self._child: subprocess.Popen[bytes] | None = None
        self._next_request = 0
        self._answers: dict[int, Any] = {}
        self._sent_to: dict[int, subprocess.Popen[bytes]] = {}  # request → the child asked (a new child never answers it)
        self._arrived = threading.Condition()
        self.entities = _Remote(self, "entities")
        self.sketcher = _Remote(self, "sketches")
        self._started()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is not None and self._child.poll() is None:
            return self._child
        if self._child is not None:
            log.error("enrichment process exited with %s; starting a new one", self._child.returncode)
            self.close()
        started = time.perf_counter()
        child = subprocess.Popen(self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            ready = _receive(child.stdout)  # the child says so once its extractor is built
        except EOFError:
            child.wait()
            raise EnrichProcessError(f"enrichment process failed to start (exit {child.returncode}): "
                                     f"{' '.join(self._command[:3])}") from None
        threading.Thread(target=self._read_answers, args=(child,), name="riskpulse-enrich-reader", daemon=True).start()
        self._child = child
        log.info("enrichment process %s started in %.1f s (%s)", child.pid, time.perf_counter() - started, ready)
        return child

    def _read_answers(self, child: subprocess.Popen[bytes]) -> None:
        """The reader thread: every answer into ``_answers`` until the child's stdout closes."""
        try:
            while True:
                number, answer = _receive(child.stdout)
                with self._arrived:
                    if number in self._sent_to:  # not abandoned by a batch that failed before collecting it
                        self._answers[number] = answer
                    self._arrived.notify_all()
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            pass  # the child is gone (or closed by us): whoever waits for it sees that below
        finally:
            with self._arrived:
                self._arrived.notify_all()

    def _request(self, kind: str, texts: Sequence[str]) -> _Reply:
        child = self._started()
        request, self._next_request = self._next_request, self._next_request + 1
        with self._arrived:
            self._sent_to[request] = child
            for old in [n for n in self._sent_to if n < request - MAX_OUTSTANDING]:  # a failed batch's, never collected
                del self._sent_to[old]
                self._answers.pop(old, None)
        try:
            _send(child.stdin, (request, kind, list(texts)))
        except (BrokenPipeError, OSError, ValueError) as exc:
            self.close()
            raise EnrichProcessError(f"enrichment process is gone ({exc})") from exc
        return _Reply(self, request, len(texts))

    def _answer(self, request: int, count: int) -> list[Any]:
        with self._arrived:
            try:
                child = self._sent_to.get(request)
                while request not in self._answers:
                    if child is None:
                        raise EnrichProcessError(f"enrichment answer {request} is no longer held: the process was restarted, "
                                                 f"or more than {MAX_OUTSTANDING} newer requests came while it waited")
                    if child.poll() is not None:
                        raise EnrichProcessError(f"enrichment process died mid-batch (exit {child.returncode})")
                    self._arrived.wait(timeout=1.0)
                answer = self._answers[request]
            finally:
                self._sent_to.pop(request, None)
                self._answers.pop(request, None)
        if isinstance(answer, str) or len(answer) != count:
            raise EnrichProcessError(f"enrichment process failed a batch of {count}: {answer if isinstance(answer, str) else len(answer)}")
        return answer

    def close(self) -> None:
        """Close the child's stdin (it exits on its own) and reap it; answers not collected yet are dropped."""
        child, self._child = self._child, None
        with self._arrived:
            self._answers.clear()
            self._sent_to.clear()
        if child is None:
            return
        try:
            child.stdin.close()
        except OSError:
            pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _read_requests(requests: IO[bytes], waiting: queue.SimpleQueue) -> None:
    """The child's reader thread: takes each request off the pipe as soon as it is written, so the worker never waits
    on a full pipe for the child to finish the batch before (a batch's texts are ~1 MB; the pipe holds 64 KB): the
    worker sends a batch's entities and sketches requests back to back, then classifies while they are worked on.
    None when the worker has gone."""
    try:
        while True:
            waiting.put(_receive(requests))
    except (EOFError, OSError, ValueError, pickle.UnpicklingError):
        pass
    finally:
        waiting.put(None)


def serve(watchlist: str, unlisted: bool, params: StoryParams, requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child: build the extractor and sketcher, say so, then answer each request until the worker closes
    ``requests``. A request that fails is answered with its error's text, and the child goes on."""
    extractor = load_extractor(Settings(watchlist_file=watchlist, entities_unlisted=unlisted))
    sketcher = Sketcher(params)
    work = {"entities": extractor.extract_batch, "sketches": sketcher.sketch}
    _send(replies, f"watchlist {watchlist}, {len(extractor.catalogue.entities)} entities")
    waiting: queue.SimpleQueue[tuple[int, str, list[str]] | None] = queue.SimpleQueue()
    threading.Thread(target=_read_requests, args=(requests, waiting), name="riskpulse-enrich-requests", daemon=True).start()
    while (item := waiting.get()) is not None:
        request, kind, texts = item
        try:
            answer = work[kind](texts)
        except Exception as exc:  # noqa: BLE001 - reported to the worker, which fails (and retries) that batch
            log.exception("enrichment request %s (%s, %d texts) failed", request, kind, len(texts))
            answer = f"{kind}: {exc.__class__.__name__}: {exc}"
        _send(replies, (request, answer))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group; the worker decides
    try:
        serve(sys.argv[1], sys.argv[2] == "unlisted", StoryParams(**json.loads(sys.argv[3])), sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:
        pass  # the worker went away mid-batch
