"""Mask personal data in message text before it is stored, emitted or shown.

A bank may not spread what a customer writes about themselves: card numbers, IBANs, account
numbers, e-mail addresses, phone numbers and national IDs (the Chinese resident ID, US SSN).
:meth:`PiiMasker.mask` returns the text with each such span replaced by its type in brackets
(``[CARD]``) and the spans as they lay in the original text, so a labelled set can be scored
against them and the stored record keeps which kinds of data were removed.

Checks come from maintained libraries where they exist: Luhn, IBAN mod-97 (with each country's
length and BBAN layout), the resident ID's ISO 7064 check digit and SSN rules from python-stdnum;
phone numbers from phonenumbers (Google's libphonenumber metadata). Regexes only find candidates.
Detectors run from the strongest evidence to the weakest (e-mail, IBAN, resident ID, card, SSN,
account, phone); a span taken by one is blanked for the rest, so spans never overlap. A number
labelled as an order, reference or tracking number is not masked as a card, account or phone
(10-digit order numbers are valid US and Chinese phone numbers about half the time), nor are
dates, amounts, decimals and price ranges taken for phones. IBAN and resident-ID shapes that fail
their check are left as they are and not read as cards or phones either.

Presidio was not used: its analyzer needs spaCy and a spaCy model, which is published outside PyPI
(only unofficial re-uploads are there), it has no Chinese resident ID, and its phone recognizer is
phonenumbers' matcher, used here directly.

Full-width digits and letters (``１３８…``, typed by Chinese input methods) are folded to ASCII
one character for one, so spans index the original text.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
import typer
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.cn import ric
from stdnum.us import ssn as stdnum_ssn

from riskpulse.core.schema import DeadLetter, Message
from riskpulse.core.settings import Settings, get_settings

TYPES = ("email", "iban", "cn_id", "card", "ssn", "account", "phone")
DEFAULT_PHONE_REGIONS = ("CN", "US")

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space, one character for one.
_FOLD = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_FOLDABLE = re.compile("[\uff01-\uff5e\u3000]")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]*@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}"
    r"(?![A-Za-z0-9\-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}")
_CN_ID = re.compile(r"(?<![0-9A-Za-z])\d{6} ?\d{8} ?\d{3}[0-9Xx](?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){12,18}(?![0-9A-Za-z])")
_SSN = re.compile(r"(?<![\d-])\d{3}([- ])\d{2}\1\d{4}(?![\d-])")
_DIGIT_RUN = r"\d(?:[ -]?\d){%d,%d}(?![0-9A-Za-z])"
_WORTH_A_LOOK = re.compile("[0-9@\uff10-\uff19\uff20]")  # every kind needs a digit or an @
# Every number kind has at least seven digits in a row, give or take separators; most news has none.
_SEVEN_DIGITS = re.compile(r"\d(?:[\s\-().]{0,3}\d){6,}")
_INTERNATIONAL_PHONE = re.compile(r"(?<![0-9A-Za-z+])\+\d(?:[ \-.]?\d){6,14}(?![0-9A-Za-z])")
# What no phone number is, blanked before the (costly) phone matcher sees the text.
_NOT_A_PHONE = re.compile(
    r"(?:19|20)\d\d([./-])\d{1,2}\1\d{1,2}|\d{1,2}([./-])\d{1,2}\2(?:19|20)\d\d"  # dates
    r"|\d+(?:[.,]\d+)*\s?(?:元|块|万|亿|%)|[$¥€£]\s?\d[\d,.]*"  # amounts
    r"|(?<![\d.])\d*\.\d+(?![\d.])"  # decimals (prices, table figures): one dot, unlike 415.555.2671
    r"|(?<![\d+])\d{16,}"  # longer than any phone number
    r"|[A-Za-z][-_/#]?\d[\d-]*"  # digits glued to a code: ORD-2026-818215, A12345678
)
_RANGE = re.compile(r"(?<![\d.-])(\d{3,8})-(\d{3,8})(?![\d-])")  # 72850-72855, if both ends agree
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")

# What may stand between a label and its number: "account no.: ", "账号是", "number is #".
_FILLER = r"(?:\s|[:：#=.,，]|no\b|nr\b|num(?:ber)?\b|is\b|号码|号|码|是|为)*"
_ACCOUNT_LABEL = (
    r"(?<![A-Za-z])(?:bank\s+)?(?:account|acct|acc\b\.?|a/c)|(?<![A-Za-z])card\s*(?:no\b|nr\b|num(?:ber)?\b)|"
    r"银行账号|银行卡号|账号|帐号|账户|帐户|卡号|户号"
)
_ACCOUNT = re.compile(
    rf"(?i)(?:{_ACCOUNT_LABEL}){_FILLER}({_DIGIT_RUN % (7, 33)})(?!\s*(?:元|块|万|yuan|rmb|usd|dollars?\b))"
)
_SSN_LABELLED = re.compile(rf"(?i)(?:ssn|social\s+security(?:\s+number)?){_FILLER}(\d{{9}})(?!\d)")
_LEGACY_CN_ID = re.compile(
    rf"(?i)(?:身份证|证件号|居民身份证|id\s*card|identity\s*card|id\s*(?:no\b|number)){_FILLER}(\d{{15}})(?![0-9A-Za-z])"
)
# Labels of numbers that identify a thing, not a person: their number is left as it is.
_NOT_PERSONAL_LABEL = re.compile(
    rf"(?i)(?<![A-Za-z])(?:order(?:\s*id)?|ref(?:erence)?|tracking|transaction(?:\s*id)?|txn|invoice|ticket|case|confirmation|"
    rf"booking|parcel|shipment|"
    rf"订单编号|订单号|订单|快递单号|运单号|工单号|单号|流水号|交易编号|交易号|发票号|受理号|投诉号|编号){_FILLER}"
    rf"([+(]?\d(?:-?\d)*)"
)

# Province-level codes that open a resident ID (GB/T 2260).
_CN_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83".split()
)


@dataclass(frozen=True)
class Span:
    """One masked piece of the original text: ``text[start:end]`` was a ``type``."""

    type: str
    start: int
    end: int


@dataclass(frozen=True)
class Masked:
    """A text with its PII replaced by tokens, and where each piece was in the original."""

    text: str
    spans: tuple[Span, ...]

    @property
    def types(self) -> list[str]:
        """The kinds of data removed, one per span in text order (what the stored record keeps)."""
        return [span.type for span in self.spans]


def token(kind: str) -> str:
    """What replaces a span of ``kind`` in the masked text."""
    return f"[{kind.upper()}]"


def card_prefix_ok(digits: str) -> bool:
    """Payment-card issuer ranges: 3 (Amex, JCB, Diners), 4 (Visa), 5 (Mastercard, Maestro), 6 (Discover,
    UnionPay) and Mastercard's 2221-2720; numbers opening otherwise are not cards whatever their Luhn digit."""
    return digits[0] in "3456" or 2221 <= int(digits[:4]) <= 2720


def is_card(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and card_prefix_ok(digits) and luhn.is_valid(digits)


def is_cn_resident_id(number: str) -> bool:
    """18 characters: province code, birth date, sequence, ISO 7064 MOD 11-2 check digit (0-9 or X)."""
    number = number.upper()
    if len(number) != 18 or number[:2] not in _CN_PROVINCES or not _valid_date(number[6:14]):
        return False
    return ric.calc_check_digit(number) == number[-1]


def looks_like_cn_resident_id(number: str) -> bool:
    """Province code and birth date in place but a wrong check digit: a mistyped ID, not a card."""
    return len(number) == 18 and number[:2] in _CN_PROVINCES and _valid_date(number[6:14])


def is_legacy_cn_resident_id(number: str) -> bool:
    """15 digits (issued before 1999): province code and a yymmdd birth date, no check digit."""
    return len(number) == 15 and number[:2] in _CN_PROVINCES and _valid_date("19" + number[6:12])


def _valid_date(yyyymmdd: str) -> bool:
    try:
        born = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return born.year >= 1900


def fold(text: str) -> str:
    """Full-width ASCII to ASCII, same length, so offsets found in the result index ``text``."""
    return text.translate(_FOLD) if _FOLDABLE.search(text) else text


class PiiMasker:
    """Finds and masks personal data; one instance is immutable and safe to share between threads."""

    def __init__(self, phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> None:
        unknown = [region for region in phone_regions if region.upper() not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone region(s) {unknown}: use ISO 3166 codes such as CN, US, GB")
        self.phone_regions = tuple(region.upper() for region in phone_regions)

    def find(self, text: str) -> list[Span]:
        """Every PII span in ``text``, in text order, none overlapping."""
        if not _WORTH_A_LOOK.search(text):
            return []
        folded = fold(text)
        numbers = _SEVEN_DIGITS.search(folded) is not None
        spans: list[Span] = []
        remaining = folded
        for kind, detect in (
            ("email", self._emails), ("iban", self._ibans), ("cn_id", self._cn_ids), ("label", self._not_personal),
            ("card", self._cards), ("ssn", self._ssns), ("account", self._accounts), ("phone", self._phones),
        ):
            if kind != "email" and not numbers:
                break
            found = list(detect(remaining))
            if found:
                spans.extend(Span(kind, start, end) for start, end, masked in found if masked)
                remaining = _blank(remaining, found)
        return sorted(spans, key=lambda span: span.start)

    def mask(self, text: str) -> Masked:
        spans = self.find(text)
        if not spans:
            return Masked(text, ())
        pieces, cursor = [], 0
        for span in spans:
            pieces += [text[cursor:span.start], token(span.type)]
            cursor = span.end
        pieces.append(text[cursor:])
        return Masked("".join(pieces), tuple(spans))

    def mask_value(self, value: Any) -> tuple[Any, list[str]]:
        """Mask every string inside a JSON-like value (a message's ``meta``); URLs are left whole."""
        if isinstance(value, str):
            if value.startswith(("http://", "https://")):
                return value, []
            masked = self.mask(value)
            return masked.text, masked.types
        if isinstance(value, dict):
            types: list[str] = []
            out = {}
            for key, item in value.items():
                out[key], found = self.mask_value(item)
                types += found
            return out, types
        if isinstance(value, list):
            pairs = [self.mask_value(item) for item in value]
            return [item for item, _ in pairs], [kind for _, found in pairs for kind in found]
        return value, []

    # --- detectors: each yields (start, end, masked) over the text with earlier finds blanked; a span
    # --- not masked is a near miss (an IBAN or ID shape failing its check) that later detectors skip.

    @staticmethod
    def _emails(text: str) -> Iterator[tuple[int, int, bool]]:
        if "@" in text:
            yield from (match.span() + (True,) for match in _EMAIL.finditer(text))

    @staticmethod
    def _ibans(text: str) -> Iterator[tuple[int, int, bool]]:
        for match in _IBAN.finditer(text):
            # The pattern may run on into the next word ("… 7654 32 AND"): keep the longest valid prefix.
            for end in range(match.end(), match.start() + 14, -1):
                if (end == len(text) or not _ascii_alnum(text[end])) and text[end - 1] != " ":
                    if stdnum_iban.is_valid(text[match.start():end].replace(" ", "").upper()):
                        yield match.start(), end, True
                        break
            else:
                shape = _IBAN_SHAPE.match(text, match.start())
                if shape:
                    yield shape.start(), shape.end(), False

    @staticmethod
    def _cn_ids(text: str) -> Iterator[tuple[int, int, bool]]:
        for match in _CN_ID.finditer(text):
            number = match.group().replace(" ", "")
            if is_cn_resident_id(number):
                yield match.span() + (True,)
            elif looks_like_cn_resident_id(number):
                yield match.span() + (False,)
        for match in _LEGACY_CN_ID.finditer(text):
            if is_legacy_cn_resident_id(match.group(1)):
                yield match.span(1) + (True,)

    @staticmethod
    def _not_personal(text: str) -> Iterator[tuple[int, int, bool]]:
        yield from (match.span(1) + (False,) for match in _NOT_PERSONAL_LABEL.finditer(text))

    @staticmethod
    def _cards(text: str) -> Iterator[tuple[int, int, bool]]:
        for match in _CARD.finditer(text):
            yield from _card_in_groups(match.group(), match.start())

    @staticmethod
    def _ssns(text: str) -> Iterator[tuple[int, int, bool]]:
        for match in _SSN.finditer(text):
            if stdnum_ssn.is_valid(match.group().replace(" ", "-")):
                yield match.span() + (True,)
        for match in _SSN_LABELLED.finditer(text):
            if stdnum_ssn.is_valid(match.group(1)):
                yield match.span(1) + (True,)

    @staticmethod
    def _accounts(text: str) -> Iterator[tuple[int, int, bool]]:
        yield from (match.span(1) + (True,) for match in _ACCOUNT.finditer(text))

    def _phones(self, text: str) -> Iterator[tuple[int, int, bool]]:
        """Numbers valid in a region's numbering plan (national or international format), and any
        number written with + and a country code that is possible there (plans gain new ranges
        faster than metadata). Dates, amounts and numbers glued to a code ("ORD-2026-818215") are not."""
        candidates: list[tuple[int, int]] = []
        unclaimed = _blank(text, [match.span() for match in _NOT_A_PHONE.finditer(text)] + list(_ranges(text)))
        for region in self.phone_regions:  # the next region only looks at numbers the last one left
            if not _SEVEN_DIGITS.search(unclaimed):
                break
            found = [(match.start, match.end) for match in
                     phonenumbers.PhoneNumberMatcher(unclaimed, region, leniency=phonenumbers.Leniency.VALID)]
            candidates += found
            unclaimed = _blank(unclaimed, found)
        if "+" in unclaimed:
            candidates += [match.span() for match in _INTERNATIONAL_PHONE.finditer(unclaimed) if _possible_number(match.group())]
        taken: list[tuple[int, int]] = []
        for start, end in sorted(candidates, key=lambda span: (span[0], -span[1])):
            if not any(s < end and start < e for s, e in taken):
                taken.append((start, end))
                yield start, end, True


DEFAULT_MASKER = PiiMasker()


def masker_for(settings: Settings) -> PiiMasker | None:
    """The masker the settings ask for (RISKPULSE_PII_MASK, RISKPULSE_PII_PHONE_REGIONS); None = masking off."""
    if not settings.pii_mask:
        return None
    regions = tuple(region.upper() for region in settings.pii_phone_regions)
    return DEFAULT_MASKER if regions == DEFAULT_MASKER.phone_regions else PiiMasker(regions)


def mask_message(message: Message, masker: PiiMasker) -> tuple[Message, list[str]]:
    """The message with its text and meta masked (same id: it names the message as the producer sent
    it, and masked texts of two customers can be equal), and the kinds removed, text first."""
    text = masker.mask(message.text)
    meta, meta_types = masker.mask_value(message.meta)
    types = text.types + meta_types
    if not types:
        return message, []
    return message.model_copy(update={"text": text.text, "meta": meta}), types


def mask_dead_letter(letter: DeadLetter, masker: PiiMasker) -> DeadLetter:
    """A dead letter's bytes with personal data masked: a record that failed to parse is still a
    customer's message. Bytes that are not UTF-8 pass through unchanged around the masked spans."""
    text = letter.raw.decode("utf-8", "surrogateescape")
    masked = masker.mask(text)
    if not masked.spans:
        return letter
    raw = masked.text.encode("utf-8", "surrogateescape")
    return letter.model_copy(update={"raw_b64": base64.b64encode(raw).decode("ascii")})


def _ranges(text: str) -> Iterator[tuple[int, int]]:
    """Price and level ranges ("support at 68390-68400"): two ends of one length and the same first
    two digits, which a local phone number's groups (445-4404) are not."""
    for match in _RANGE.finditer(text):
        low, high = match.groups()
        if len(low) == len(high) and low[:2] == high[:2]:
            yield match.span()


def _possible_number(candidate: str) -> bool:
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(candidate, None))
    except phonenumbers.NumberParseException:
        return False


def _ascii_alnum(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _blank(text: str, spans: Iterable[tuple[int, ...]]) -> str:
    """``text`` with each ``(start, end, …)`` span turned to spaces, so later detectors neither see nor overlap it."""
    chars = list(text)
    for start, end, *_ in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _card_in_groups(candidate: str, offset: int) -> Iterator[tuple[int, int, bool]]:
    """The card inside a run of digit groups (at most 19 digits, so one card): the whole run, else the
    longest run of whole groups that checks out ("4111 1111 1111 1111 123" is a card and its CVV)."""
    groups = [(match.start(), match.end()) for match in re.finditer(r"\d+", candidate)]
    windows = sorted(
        ((first, last) for first in range(len(groups)) for last in range(first, len(groups))),
        key=lambda window: (window[0] - window[1], window[0]),
    )
    for first, last in windows:
        start, end = groups[first][0], groups[last][1]
        digits = re.sub(r"\D", "", candidate[start:end])
        if is_card(digits):
            yield offset + start, offset + end, True
            return


app = typer.Typer(no_args_is_help=True, help="Personal data in message texts.")


@app.command("mask")
def mask_command(
    file: str = typer.Argument(..., help="JSONL with an id and a text per line, or - for standard input."),
) -> None:
    """Print each line's id, masked text and PII spans (type, start, end in the original text) as one JSON object."""
    masker = PiiMasker(get_settings().pii_phone_regions)  # asked for by name: masks even with RISKPULSE_PII_MASK off
    failed = 0
    with (contextlib.nullcontext(sys.stdin) if file == "-" else open(file, encoding="utf-8")) as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ValueError("expected an object with a string 'text'")
            except ValueError as exc:
                typer.echo(f"{file}:{number}: {exc}", err=True)
                failed += 1
                continue
            masked = masker.mask(record["text"])
            spans = [{"type": span.type, "start": span.start, "end": span.end} for span in masked.spans]
            typer.echo(json.dumps({"id": record.get("id"), "text": masked.text, "spans": spans}, ensure_ascii=False))
    if failed:
        typer.echo(f"{failed} line(s) skipped", err=True)
        raise typer.Exit(1)
