import pytest

from riskpulse.streams.alerts.rules import DEFAULT_RULES, RulesError, load_rules, load_rules_text, parse_key

GOOD = """rules:
  - name: spikes
    key: [topic, channel]
    group_by: [topic]
    window_s: 5
    webhooks:
      - url: http://127.0.0.1:9/hook
        format: slack
"""


def test_default_rules_file_loads():
    rules = load_rules(None)
    assert DEFAULT_RULES.exists()
    assert {r.name for r in rules.rules} == {"topic-negative-spike", "customer-channel-negative-spike",
                                             "watchlist-entity-negative-spike"}


def test_good_rules_and_keys():
    rule = load_rules_text(GOOD).rules[0]
    assert rule.grouping == ("topic",)
    assert rule.webhooks[0].format == "slack"
    key = rule.key_of({"topic": "Company | Product News", "source": "news", "channel": "a=b"})
    assert parse_key(key) == {"topic": "Company | Product News", "channel": "a=b"}
    assert list(parse_key(key)) == ["topic", "channel"]


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (("    key: [topic, channel]", "    key: [topic, colour]"), 3, "rules.0.key.1", "'topic', 'source', 'channel' or 'entity'"),
        (("    window_s: 5", "    window_s: -5"), 5, "rules.0.window_s", "greater than 0"),
        (("      - url: http://127.0.0.1:9/hook\n        format", "      - format"), 7, "rules.0.webhooks.0.url", "Field required"),
        (("    window_s: 5", "    window_s: 5\n    treshold_z: 3"), 6, "rules.0.treshold_z", "unknown field"),
        (("url: http://127.0.0.1:9/hook", "url: ftp://x"), 7, "rules.0.webhooks.0.url", "http"),
        (("    group_by: [topic]", "    group_by: [source]"), 2, "rules.0", "subset of key"),
    ],
)
def test_bad_rules_name_line_and_field(change, line, field, words, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(RulesError) as err:
        load_rules(path)
    text = str(err.value)
    assert f"{path}:{line}: field {field}:" in text, text
    assert words in text


def test_several_problems_reported_together():
    bad = GOOD.replace("window_s: 5", "window_s: -1\n    colour: red")
    with pytest.raises(RulesError) as err:
        load_rules_text(bad, "r.yaml")
    assert "r.yaml:5: field rules.0.window_s" in str(err.value)
    assert "r.yaml:6: field rules.0.colour: unknown field" in str(err.value)


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules_text("rules: [\n", "r.yaml")
    with pytest.raises(RulesError, match="RISKPULSE_RULES_FILE"):
        load_rules(tmp_path / "missing.yaml")
    with pytest.raises(RulesError, match="rules"):
        load_rules_text("- 1\n", "r.yaml")
