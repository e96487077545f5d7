"""Inference engine on the quick-trained model: contract, order, empties, truncation."""

from __future__ import annotations

import pytest

from riskpulse.models.training.data import SENTIMENT_LABELS, TOPIC_LABELS
from riskpulse.models.serving.inference import EmptyTextError, Engine, Scores

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


def test_forked_model_round_trips_through_save_and_load(tmp_path) -> None:
    """A model whose top encoder layers are per task saves, reloads as forked, and scores the same."""
    import torch

    from riskpulse.models.serving.network import build_model, bundled_base_model, load_model, save_model

    model, tokenizer = build_model(bundled_base_model(), 4, 3, forked_layers=2)
    with torch.no_grad():  # make the branches differ, as training would
        for p in model.encoder.encoder.layer[-1].sentiment.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    save_model(tmp_path, model, tokenizer, {"topic": list("abcd"), "sentiment": ["negative", "neutral", "positive"]})
    loaded, _, _ = load_model(tmp_path)
    batch = tokenizer(["card declined again", "rates unchanged"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        before = model(batch["input_ids"], batch["attention_mask"])
        after = loaded(batch["input_ids"], batch["attention_mask"])
        topic_vec, sentiment_vec = loaded.pooled(batch["input_ids"], batch["attention_mask"])
    assert loaded.forked_layers == 2 and len(loaded.encoder.encoder.layer) == 5
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(before, after))
    assert not torch.allclose(topic_vec, sentiment_vec)


def test_forked_layers_work_with_encoders_whose_layers_return_tuples(tmp_path) -> None:
    """MPNet layers return tuples (BERT's return tensors); forking must keep every row, not row 0."""
    import torch
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from riskpulse.models.serving.network import build_model, bundled_base_model

    config = MPNetConfig(vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    MPNetModel(config, add_pooling_layer=False).save_pretrained(str(tmp_path))
    AutoTokenizer.from_pretrained(str(bundled_base_model())).save_pretrained(str(tmp_path))
    shared, tokenizer = build_model(tmp_path, 4, 3, forked_layers=0)
    forked, _ = build_model(tmp_path, 4, 3, forked_layers=1)
    batch = tokenizer(["card declined", "rates unchanged again today"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected, _ = shared.eval().pooled(batch["input_ids"], batch["attention_mask"])
        topic, sentiment = forked.eval().pooled(batch["input_ids"], batch["attention_mask"])
    assert topic.shape == (2, 32)
    assert torch.allclose(topic, expected, atol=1e-5) and torch.allclose(sentiment, expected, atol=1e-5)


def test_cpu_bf16_autocast_keeps_the_labels(engine: Engine) -> None:
    """bf16 inference is a speed setting: on these texts it must pick the fp32 labels."""
    from riskpulse.models.serving.precision import choose_precision

    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    fast = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device,
                  precision=choose_precision(engine.device, "bf16"))
    exact = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device,
                   precision=choose_precision(engine.device, "fp32"))
    assert fast.precision.name == "bf16" and exact.precision.name == "fp32"
    for a, b in zip(fast.classify(TEXTS), exact.classify(TEXTS)):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert abs(a.sentiment_prob - b.sentiment_prob) < 0.05


def test_small_batches_give_the_scores_of_one_big_batch(engine: Engine) -> None:
    """Batches of 2 (several forward passes, results collected one batch behind) equal one pass."""
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    small = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                   batch_size=2, precision=engine.precision, temperatures=engine.temperatures)
    for a, b in zip(small.classify(TEXTS), engine.classify(TEXTS)):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert a.sentiment_prob == pytest.approx(b.sentiment_prob, abs=1e-4)


def test_cost_planned_batches_give_the_scores_of_fixed_batches(engine: Engine) -> None:
    """Cutting by cost (the CPU default) moves texts between forward passes, never changes what they score."""
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    fixed, planned = (Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                             batch_size=4, precision=engine.precision, temperatures=engine.temperatures, pass_tokens=tokens)
                      for tokens in (0, 1e-6))
    assert fixed.pass_tokens is None and planned.pass_tokens == 1e-6  # 0 turns the plan off; ~0 cuts at every new width
    texts = TEXTS + ["the bank charged me twice for the same payment " * 40, "fees again"]
    for a, b in zip(planned.classify(texts), fixed.classify(texts), strict=True):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert a.sentiment_prob == pytest.approx(b.sentiment_prob, abs=2e-3)  # other widths: bf16 on CPUs that compute it natively


def test_chunked_tokenization_gives_the_scores_of_one_call(engine: Engine) -> None:
    """Tokenizing ahead in chunks (the GPU path, forced here on the CPU with chunks of 2 texts, the
    last one short and cut) scores every text as one call does, in input order, and counts the cut."""
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    chunked = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                     batch_size=2, precision=engine.precision, temperatures=engine.temperatures, tokenize_chunk=2)
    texts = TEXTS + ["the bank charged me twice for the same payment " * 40]
    for a, b in zip(chunked.classify(texts), engine.classify(texts), strict=True):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert a.sentiment_prob == pytest.approx(b.sentiment_prob, abs=1e-4)
    assert chunked.texts_seen == len(texts) and chunked.texts_truncated == 1


def test_widths_padded_to_a_multiple_score_as_exact_widths_and_warm_up_leaves_no_trace(engine: Engine) -> None:
    """The GPU path's padding (widths rounded up to 8) and its warm-up at load, forced here on the CPU."""
    labels = {"topic": engine.topics, "sentiment": engine.sentiments}
    padded = Engine(engine.model, engine.tokenizer, labels, engine.version, engine.device, engine.max_length,
                    batch_size=2, precision=engine.precision, temperatures=engine.temperatures)
    padded.pad_multiple = 8
    seconds = padded.warm_up(rows=(2,))
    assert seconds > 0 and padded.texts_seen == 0 and padded.texts_truncated == 0
    for a, b in zip(padded.classify(TEXTS), engine.classify(TEXTS), strict=True):
        assert (a.topic, a.sentiment) == (b.topic, b.sentiment)
        assert a.sentiment_prob == pytest.approx(b.sentiment_prob, abs=2e-3)  # bf16 on CPUs that compute it natively


def test_truncation_keeps_the_closing_token(engine: Engine) -> None:
    """A cut text ends with the tokenizer's closing token, as an uncut one does, and is max_length long."""
    from riskpulse.models.serving.network import pad_ids

    encoded, cut = engine._encode(["word " * 500, "short"])
    ids, mask = pad_ids(encoded, engine.pad_id)
    assert cut == 1 and ids.shape[1] == engine.max_length
    sep = engine.tokenizer.sep_token_id
    assert ids[0, -1] == sep and int(mask[0].sum()) == engine.max_length
    assert ids[1, int(mask[1].sum()) - 1] == sep
