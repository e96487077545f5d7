"""PII masking on real text: the 51,000 messages of the shared sets (news tweets, Financial PhraseBank,
banking77 queries, CFPB complaints, which the CFPB redacts) hold no personal data except the press
contacts' phone numbers in PhraseBank, so anything else found there is a false positive."""

from __future__ import annotations

import csv

from riskpulse.streams.enrich.pii import PiiMasker
from tests.fixtures.models import shared_data

SETS = ("banking77", "cfpb-complaints-sample", "financial-phrasebank", "twitter-financial-news-sentiment",
        "twitter-financial-news-topic")


def test_real_financial_texts_mask_nothing_but_press_contact_phones():
    masker, texts = PiiMasker(), []
    for name in SETS:
        for path in sorted((shared_data() / name).glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                texts += [row["text"] for row in csv.DictReader(handle)]
    assert len(texts) > 50_000
    found = [(span.type, text[span.start:span.end]) for text in texts for span in masker.find(text)]
    assert found and all(kind == "phone" and value.startswith("+") for kind, value in found), found
