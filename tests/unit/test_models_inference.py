"""Inference engine on the quick-trained model: contract, order, empties, truncation."""

from __future__ import annotations

import pytest

from models.data import SENTIMENT_LABELS, TOPIC_LABELS
from models.inference import EmptyTextError, Engine, Scores

TEXTS = [
    "$AAPL shares plunge after weak iPhone guidance",
    "Fed raises rates by 25 basis points",
    "I am still waiting on my card, it has been two weeks",
    "Debt collector keeps calling me about a debt I do not owe " * 3,
    "Oil prices climb as OPEC cuts output",
]


def test_classify_returns_scores_in_label_sets(engine: Engine) -> None:
    scores = engine.classify(TEXTS)
    assert len(scores) == len(TEXTS)
    for s in scores:
        assert isinstance(s, Scores)
        assert s.topic in TOPIC_LABELS and s.sentiment in SENTIMENT_LABELS
        assert 1 / len(TOPIC_LABELS) <= s.topic_prob <= 1 and 1 / 3 <= s.sentiment_prob <= 1
        assert s.model_version == engine.version


def test_batching_and_length_sorting_keep_input_order(engine: Engine) -> None:
    together = engine.classify(TEXTS)
    alone = [engine.classify([t])[0] for t in TEXTS]
    assert [s.topic for s in together] == [s.topic for s in alone]
    assert [s.sentiment for s in together] == [s.sentiment for s in alone]
    for a, b in zip(together, alone):
        assert a.topic_prob == pytest.approx(b.topic_prob, abs=1e-4)


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_text_is_an_error_not_a_guess(engine: Engine, bad: str) -> None:
    with pytest.raises(EmptyTextError, match=r"positions \[1\]"):
        engine.classify(["fine text", bad])


def test_empty_batch_gives_empty_result(engine: Engine) -> None:
    assert engine.classify([]) == []


def test_long_texts_are_truncated_and_counted(engine: Engine) -> None:
    before_seen, before_cut = engine.texts_seen, engine.texts_truncated
    long = "the bank charged me twice for the same payment and will not refund it " * 40
    scores = engine.classify([long, "short one"])
    assert len(scores) == 2
    assert engine.texts_seen - before_seen == 2 and engine.texts_truncated - before_cut == 1
