"""PII masking: the labelled synthetic set's bars, each detector's edge cases, messages, dead letters, the CLI."""

from __future__ import annotations

import base64
import json

import pytest
import typer
from typer.testing import CliRunner

from riskpulse.core.schema import dead_letter, parse_message
from riskpulse.streams.enrich.pii import PiiMasker, app, mask_dead_letter, mask_message
from tests import pii_corpus

MASKER = PiiMasker()


def found(text: str) -> list[tuple[str, str]]:
    return [(span.type, text[span.start:span.end]) for span in MASKER.find(text)]


@pytest.fixture(scope="module")
def corpus_score():
    messages = pii_corpus.build(1000)
    return messages, pii_corpus.score(messages, [[(s.type, s.start, s.end) for s in MASKER.find(m.text)] for m in messages])


def test_labelled_set_meets_the_recall_and_precision_bars(corpus_score):
    _, score = corpus_score
    per_type = score.per_type
    assert all(per_type[kind].gold >= 70 for kind in pii_corpus.TYPES), score.as_dict()
    for kind in ("card", "iban", "email", "cn_id"):
        assert per_type[kind].recall >= 0.99, (kind, score.as_dict()[kind])
    assert per_type["phone"].recall >= 0.95, score.as_dict()["phone"]
    for kind in pii_corpus.TYPES:
        assert per_type[kind].precision >= 0.95, (kind, score.as_dict()[kind])
    assert score.leaked == []  # every planted value was masked, as its own type or another


def test_no_planted_value_survives_in_the_masked_text(corpus_score):
    messages, _ = corpus_score
    for message in messages:
        masked = MASKER.mask(message.text).text
        assert not [value for value in message.values() if value in masked], message.text


def test_spans_index_the_original_text_and_tokens_replace_them():
    text = "卡号：４１１１ １１１１ １１１１ １１１１，邮箱 li.wei@qq.com"
    masked = MASKER.mask(text)
    assert masked.text == "卡号：[CARD]，邮箱 [EMAIL]"
    assert [(s.type, text[s.start:s.end]) for s in masked.spans] == [
        ("card", "４１１１ １１１１ １１１１ １１１１"), ("email", "li.wei@qq.com")]
    assert masked.types == ["card", "email"]


@pytest.mark.parametrize("text, expected", [
    ("card 4111 1111 1111 1111 declined", [("card", "4111 1111 1111 1111")]),
    ("card 4111-1111-1111-1111 declined", [("card", "4111-1111-1111-1111")]),
    ("amex 3782 822463 10005 ok", [("card", "3782 822463 10005")]),
    ("card 4111 1111 1111 1111 123 (cvv)", [("card", "4111 1111 1111 1111")]),
    ("card 4111 1111 1111 1112 is wrong", []),  # Luhn fails
    ("serial 9111111111111111 is no card", []),  # Luhn holds, but no issuer starts with 9
])
def test_cards_need_luhn_and_an_issuer_range(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("pay GB82 WEST 1234 5698 7654 32 today", [("iban", "GB82 WEST 1234 5698 7654 32")]),
    ("pay GB82 WEST 1234 5698 7654 32 AND more", [("iban", "GB82 WEST 1234 5698 7654 32")]),
    ("汇到DE89370400440532013000的账户", [("iban", "DE89370400440532013000")]),
    ("pay GB83 WEST 1234 5698 7654 32 today", []),  # mod-97 fails
])
def test_ibans_need_the_mod97_check(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("身份证11010519491231002X丢了", [("cn_id", "11010519491231002X")]),
    ("身份证 110101 19900307 7715", [("cn_id", "110101 19900307 7715")]),
    ("身份证110101199003077716", []),  # wrong check digit, and not taken for a card either
    ("身份证110101199013077715", []),  # month 13
    ("老身份证号码 110101900307771", [("cn_id", "110101900307771")]),  # 15-digit legacy, labelled
    ("编号 110101900307771", []),  # 15 digits without an ID label
])
def test_chinese_resident_ids_need_the_iso7064_check_digit(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("我的手机号是13812345678，请回电", [("phone", "13812345678")]),
    ("call (415) 555-2671 or +44 20 7946 0958", [("phone", "(415) 555-2671"), ("phone", "+44 20 7946 0958")]),
    ("+852 9978 6196 (a range not yet allocated)", [("phone", "+852 9978 6196")]),
    ("order number 4155552671 is late", []),  # a valid US number, labelled as an order
    ("tracking ORD-2026-818215 stuck", []),
    ("due 13.10.2024 or 2024-10-13", []),
    ("resistance at 72850-72855, then 103.45-103.49 and .74475-.74480", []),  # price ranges
    ("Net profit 25.1 25.4 14 4.0 EPS", []),  # a table row
    ("电话(617) 445-4404。", [("phone", "(617) 445-4404")]),  # not a range: the groups differ in length
    ("订单号202611271234567890 和 13812345678", [("phone", "13812345678")]),
])
def test_phones_skip_dates_and_order_numbers(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("SSN 536-22-1234 and ssn: 536221234", [("ssn", "536-22-1234"), ("ssn", "536221234")]),
    ("SSN 666-22-1234 or 000-12-3456", []),
    ("my account number is 12345678", [("account", "12345678")]),
    ("acc no. 12345678 please", [("account", "12345678")]),
    ("according to 12345678 people", []),
    ("账户 12345678元", []),  # an amount
    ("card number 4111 1111 1111 1112 (typo)", [("account", "4111 1111 1111 1112")]),
    ("email zhang.san@qq.com谢谢, handle @zhang", [("email", "zhang.san@qq.com")]),
    ("AAPL up 3.2% at $189.50 on 2026-11-27, 600519.SH flat", []),
])
def test_ssns_accounts_emails_and_plain_finance_text(text, expected):
    assert found(text) == expected


def test_message_text_and_meta_are_masked_and_the_id_kept():
    raw = json.dumps({"source": "customer", "ts": "2026-11-27T08:00:00Z", "text": "call me 13812345678",
                      "meta": {"contact": {"mail": "x@y.cn"}, "url": "https://bank.cn/case/13812345678"}}).encode()
    message = parse_message(raw)
    masked, types = mask_message(message, MASKER)
    assert (masked.id, masked.text, types) == (message.id, "call me [PHONE]", ["phone", "email"])
    assert masked.meta == {"contact": {"mail": "[EMAIL]"}, "url": "https://bank.cn/case/13812345678"}
    assert mask_message(parse_message(raw.replace(b"13812345678", b"soon").replace(b"x@y.cn", b"-")), MASKER)[1] == []


def test_dead_letter_bytes_are_masked_and_invalid_bytes_kept():
    letter = dead_letter("not valid UTF-8", b'\xff{"text": "card 4111111111111111"', "riskpulse.raw", 2, 9)
    masked = mask_dead_letter(letter, MASKER)
    assert masked.raw == b'\xff{"text": "card [CARD]"'
    assert (masked.topic, masked.partition, masked.offset, masked.reason) == ("riskpulse.raw", 2, 9, "not valid UTF-8")
    clean = dead_letter("x", b"no numbers", "t", 0, 0)
    assert mask_dead_letter(clean, MASKER) is clean and base64.b64decode(clean.raw_b64) == b"no numbers"


def test_unknown_phone_region_is_refused():
    with pytest.raises(ValueError, match="XX"):
        PiiMasker(["CN", "XX"])


def riskpulse(*args: str, stdin: str | None = None):
    """`riskpulse pii …` as the top-level CLI composes it."""
    root = typer.Typer()
    root.add_typer(app, name="pii")
    root.command("other")(lambda: None)  # a second command keeps `pii` a sub-command, as in riskpulse.cli
    return CliRunner().invoke(root, ["pii", *args], input=stdin)


def test_cli_prints_id_masked_text_and_spans_per_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "m1", "text": "mail a.b@c.com"}) + "\n\n"
                    + json.dumps({"id": "m2", "text": "nothing here"}) + "\n", encoding="utf-8")
    result = riskpulse("mask", str(path))
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"id": "m1", "text": "mail [EMAIL]", "spans": [{"type": "email", "start": 5, "end": 14}]},
        {"id": "m2", "text": "nothing here", "spans": []},
    ]


def test_cli_reads_stdin_and_fails_on_bad_lines():
    result = riskpulse("mask", "-", stdin='{"id": 1, "text": "13812345678"}\n[1]\n')
    assert result.exit_code == 1
    assert json.loads(result.stdout.splitlines()[0])["text"] == "[PHONE]"
    assert "-:2:" in result.stderr
