"""An alert explained from what chDB holds: counts, entities, sources, terms and examples of its window."""

from tests.explain_store_checks import check_explanation


def test_alert_explanation_on_chdb(chdb_store):
    check_explanation(chdb_store)
