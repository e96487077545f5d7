"""The worker's batch function and the offline scorer mask personal data before anything sees it."""

from __future__ import annotations

import base64
import csv
import json

from riskpulse.core.settings import Settings
from riskpulse.streams.store.messages import DEAD_LETTERS_TABLE, MESSAGES_TABLE
from riskpulse.streams.worker.batching import process_batch
from riskpulse.streams.worker.score import score_file
from tests.fakes import FakeEngine, FakeStore, good, record

CARD, PHONE, MAIL = "4111 1111 1111 1111", "13812345678", "li.wei@qq.com"


def test_classifier_store_and_emitted_records_see_only_masked_text():
    store, engine = FakeStore(), FakeEngine()
    batch = [record(good(0, f"card {CARD} charged twice, call {PHONE}"), 0), record(good(1, "rates unchanged"), 1)]
    result = process_batch(batch, engine, store)
    assert engine.calls == [["card [CARD] charged twice, call [PHONE] 0", "rates unchanged 1"]]
    rows = store.tables[MESSAGES_TABLE]
    assert [row["text"] for row in rows] == engine.calls[0] and [row["pii"] for row in rows] == [["card", "phone"], []]
    assert [(m.text, m.pii) for m in result.scored] == [(row["text"], row["pii"]) for row in rows]
    assert result.scored[0].id == "m-0" and "mask" in result.seconds


def test_dead_letters_are_masked_whether_unparsable_or_unscorable():
    store = FakeStore()
    batch = [record(f'{{"text": "cut off, card {CARD}'.encode(), 0), record(good(1, f"POISON mail {MAIL}"), 1)]
    result = process_batch(batch, FakeEngine(), store)
    raws = [letter.raw for letter in result.dead]
    assert len(raws) == 2 and len(store.tables[DEAD_LETTERS_TABLE]) == 2
    assert b"[CARD]" in raws[0] and b"[EMAIL]" in raws[1]
    assert not [raw for raw in raws if CARD.encode() in raw or MAIL.encode() in raw]


def test_masking_off_keeps_the_text():
    store, engine = FakeStore(), FakeEngine()
    result = process_batch([record(good(0, f"call {PHONE}"), 0)], engine, store, masker=None)
    assert engine.calls == [[f"call {PHONE} 0"]] and result.scored[0].pii == []


def test_offline_score_masks_rows_and_skipped_rows(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": "a", "ts": "2026-03-01T09:00:00Z", "text": f"mail {MAIL} please"}) + "\n"
        + json.dumps({"id": "b", "ts": "2026-03-01T09:00:00", "text": f"naive time, phone {PHONE}"}) + "\n")
    out = tmp_path / "scored.csv"
    report = score_file(source, Settings(), FakeEngine(), out=out)
    assert (report.scored, report.skipped) == (1, 1)
    with out.open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["text"], json.loads(row["pii"])) == ("mail [EMAIL] please", ["email"])
    with out.with_suffix(".dead-letters.csv").open(newline="") as handle:
        (letter,) = list(csv.DictReader(handle))
    raw = base64.b64decode(letter["raw_b64"])
    assert b"[PHONE]" in raw and PHONE.encode() not in raw
