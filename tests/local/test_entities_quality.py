"""Cashtags and tickers in the shared tweets: precision and recall ≥ 0.95 (issue 14's bar), see bench/entities.py."""

from __future__ import annotations

import pytest

from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.entities import Catalogue, EntityExtractor
from tests.entities_sets import bare_ticker_cases, cashtag_cases, score_bare_tickers, score_cashtags


@pytest.fixture(scope="module")
def extractor() -> EntityExtractor:
    return EntityExtractor(Catalogue.load())


def test_cashtags_in_the_shared_tweets(extractor):
    cases = cashtag_cases(Settings().shared_data, extractor.catalogue)
    assert len(cases) > 8000
    score = score_cashtags(cases, extractor)
    assert score.precision >= 0.95 and score.recall >= 0.95, score.as_dict()


def test_tickers_without_their_dollar_sign(extractor):
    cases = bare_ticker_cases(Settings().shared_data, extractor.catalogue)
    assert len(cases) > 2000
    score = score_bare_tickers(cases, extractor)
    assert score.precision >= 0.95 and score.recall >= 0.95, score.as_dict()
