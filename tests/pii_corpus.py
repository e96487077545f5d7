"""A labelled synthetic PII set: customer complaints in English and Chinese with the PII spans known.

Values are made from the numbering rules themselves (issuer ranges and the Luhn digit, IBAN layouts and
mod-97, the resident ID's ISO 7064 check digit computed here, national phone plans), not from the masker's
libraries, so the set measures the masker instead of agreeing with it. Near misses are planted beside
them and are not PII: order and tracking numbers (some Luhn-valid, some valid as phone numbers),
dates, amounts, tickers, cards, IBANs and IDs with a wrong check digit, SSNs in unissued ranges.

:func:`build` returns the messages; :func:`score` compares spans found with the known ones, per type.
Used by tests/unit/test_pii.py, the integration test and bench/pii.py.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

TYPES = ("card", "iban", "account", "email", "phone", "cn_id", "ssn")


@dataclass(frozen=True)
class Labelled:
    id: str
    lang: str
    text: str
    spans: tuple[tuple[str, int, int], ...]  # (type, start, end) in text

    def values(self) -> list[str]:
        return [self.text[start:end] for _, start, end in self.spans]


# --- values ---------------------------------------------------------------------------------------

def luhn_digit(partial: str) -> str:
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return str((10 - total % 10) % 10)


def digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


CARD_BRANDS = (  # (prefix chooser, length, grouping)
    (lambda r: "4", 16, (4, 4, 4, 4)),
    (lambda r: str(r.randint(51, 55)), 16, (4, 4, 4, 4)),
    (lambda r: str(r.randint(2221, 2720)), 16, (4, 4, 4, 4)),
    (lambda r: r.choice(["34", "37"]), 15, (4, 6, 5)),
    (lambda r: "62", 16, (4, 4, 4, 4)),
    (lambda r: "62", 19, (4, 4, 4, 4, 3)),
    (lambda r: "35", 16, (4, 4, 4, 4)),
    (lambda r: "6011", 16, (4, 4, 4, 4)),
)


def grouped(number: str, sizes: Sequence[int], sep: str) -> str:
    parts, cursor = [], 0
    for size in sizes:
        parts.append(number[cursor:cursor + size])
        cursor += size
    return sep.join(parts)


def card_number(rng: random.Random, valid: bool = True) -> str:
    prefix_of, length, sizes = rng.choice(CARD_BRANDS)
    partial = prefix_of(rng)
    partial += digits(rng, length - 1 - len(partial))
    check = luhn_digit(partial)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    number = partial + check
    return grouped(number, sizes, rng.choice(["", " ", " ", "-"]))


IBAN_LAYOUTS = {  # country: BBAN as (kind, count) parts; a = upper-case letters, n = digits
    "DE": (("n", 18),), "GB": (("a", 4), ("n", 14)), "NL": (("a", 4), ("n", 10)),
    "CH": (("n", 17),), "AT": (("n", 16),), "IE": (("a", 4), ("n", 14)),
}


def iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(sorted(IBAN_LAYOUTS))
    bban = "".join(
        "".join(rng.choice(string.ascii_uppercase) for _ in range(count)) if kind == "a" else digits(rng, count)
        for kind, count in IBAN_LAYOUTS[country]
    )
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 50)) % 97 + 2
    compact = f"{country}{check:02d}{bban}"
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4)) if rng.random() < 0.6 else compact


CN_PROVINCES = ("11", "12", "13", "31", "32", "33", "37", "42", "44", "50", "51", "61", "65")


def cn_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 as GB 11643 states it: weights 2^(17-i) mod 11."""
    total = sum(int(char) * (2 ** (17 - index) % 11) for index, char in enumerate(first17))
    return "10X98765432"[total % 11]


def cn_resident_id(rng: random.Random, valid: bool = True) -> str:
    born = f"{rng.randint(1945, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = rng.choice(CN_PROVINCES) + f"{rng.randint(1, 20):02d}{rng.randint(1, 30):02d}" + born + digits(rng, 3)
    check = cn_check_digit(first17)
    if not valid:
        check = rng.choice([c for c in "0123456789X" if c != check])
    return first17 + check


CN_MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155",
                      "156", "157", "158", "159", "166", "176", "177", "180", "181", "185", "186", "187", "188",
                      "189", "191", "198", "199")
CN_AREA_CODES = ("010", "021", "020", "0755", "0571", "025", "028", "027")
US_AREA_CODES = ("212", "415", "312", "617", "646", "202", "305", "713", "206", "408", "650", "917", "718", "213")


def phone(rng: random.Random, lang: str) -> str:
    kind = rng.choice(["cn_mobile", "cn_mobile", "cn_landline", "us", "intl"] if lang == "zh"
                      else ["us", "us", "cn_mobile", "intl", "intl"])
    if kind == "cn_mobile":
        number = rng.choice(CN_MOBILE_PREFIXES) + digits(rng, 8)
        return rng.choice([number, grouped(number, (3, 4, 4), " "), grouped(number, (3, 4, 4), "-"),
                           "+86 " + grouped(number, (3, 4, 4), " "), "+86" + number, "+86-" + number])
    if kind == "cn_landline":
        area = rng.choice(CN_AREA_CODES)
        local = str(rng.randint(2, 8)) + digits(rng, 7)
        return rng.choice([f"{area}-{local}", f"({area}){local}", f"+86 {area[1:]} {local}"])
    if kind == "us":
        area, exchange = rng.choice(US_AREA_CODES), f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(2, 9)}"
        line = digits(rng, 4)
        return rng.choice([f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}",
                           f"+1 {area} {exchange} {line}", f"+1-{area}-{exchange}-{line}"])
    return rng.choice([
        f"+44 20 7{digits(rng, 3)} {digits(rng, 4)}", f"+44 7{rng.randint(400, 999)} {digits(rng, 6)}",
        f"+852 {rng.choice('569')}{digits(rng, 3)} {digits(rng, 4)}", f"+65 {rng.choice('89')}{digits(rng, 3)} {digits(rng, 4)}",
        f"+49 30 {digits(rng, 8)}",
    ])


def ssn(rng: random.Random, valid: bool = True) -> str:
    if valid:
        area = rng.choice([n for n in range(1, 900) if n != 666])
        return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    area = rng.choice([0, 666, rng.randint(900, 999)])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


GIVEN = ("john", "mary", "li.wei", "zhang.san", "wang_fang", "chen", "j.smith", "anna-maria", "liu.yang88", "bob+bank")
DOMAINS = ("gmail.com", "qq.com", "163.com", "outlook.com", "yahoo.co.uk", "mail.example-bank.cn", "126.com", "icloud.com")


def email(rng: random.Random) -> str:
    local = rng.choice(GIVEN) + (str(rng.randint(1, 9999)) if rng.random() < 0.5 else "")
    if rng.random() < 0.2:
        local = digits(rng, rng.randint(6, 10))  # QQ mail addresses are numbers
    return f"{local}@{rng.choice(DOMAINS)}"


def account(rng: random.Random) -> str:
    return digits(rng, rng.choice([8, 8, 10, 11, 12]))


# --- near misses: numbers that are not personal data -----------------------------------------------

def order_number(rng: random.Random) -> str:
    return rng.choice([
        digits(rng, 10),                                            # often a valid phone number
        f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{digits(rng, rng.choice([10, 11]))}",
        card_number(rng).replace(" ", "").replace("-", ""),         # Luhn-valid
        f"A{digits(rng, 8)}", f"ORD-2026-{digits(rng, 6)}",
    ])


def amount(rng: random.Random, lang: str) -> str:
    value = rng.randint(10, 9_999_999)
    if lang == "zh":
        return rng.choice([f"{value}元", f"¥{value:,}", f"{value / 100:.2f}元", f"{rng.randint(1, 500)}万元"])
    return rng.choice([f"${value:,}", f"${value / 100:,.2f}", f"USD {value:,}", f"{value:,} dollars"])


def date(rng: random.Random, lang: str) -> str:
    y, m, d = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
    if lang == "zh":
        return rng.choice([f"{y}年{m}月{d}日", f"{y}-{m:02d}-{d:02d}", f"{m}月{d}日{rng.randint(0, 23)}点"])
    return rng.choice([f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}", f"March {d}, {y}"])


TICKERS = ("AAPL", "TSLA", "600519.SH", "0700.HK", "BABA", "601398", "$NVDA", "000001.SZ", "HSBA.L")


# --- templates: {slot} is filled; PII slots are labelled, the rest are near misses ---------------

PII_SLOTS: dict[str, Callable[[random.Random, str], str]] = {
    "card": lambda r, lang: card_number(r),
    "iban": lambda r, lang: iban(r),
    "account": lambda r, lang: account(r),
    "email": lambda r, lang: email(r),
    "phone": phone,
    "cn_id": lambda r, lang: cn_resident_id(r),
    "ssn": lambda r, lang: ssn(r),
    # A number the customer labels as their card number is theirs whatever its check digit (one digit
    # off a real card): masked as an account-like number.
    "card_typo": lambda r, lang: card_number(r, valid=False),
}
SLOT_TYPE = {"card_typo": "account"}
NEAR_MISS_SLOTS: dict[str, Callable[[random.Random, str], str]] = {
    "order": lambda r, lang: order_number(r),
    "amount": amount,
    "date": date,
    "ticker": lambda r, lang: r.choice(TICKERS),
    "bad_card": lambda r, lang: card_number(r, valid=False),
    "bad_iban": lambda r, lang: iban(r, valid=False),
    "bad_cn_id": lambda r, lang: cn_resident_id(r, valid=False),
    "bad_ssn": lambda r, lang: ssn(r, valid=False),
    "last4": lambda r, lang: digits(r, 4),
    "pct": lambda r, lang: f"{r.randint(1, 99)}.{r.randint(0, 9)}%",
}

TEMPLATES = {
    "en": (
        "My card {card} was charged twice for order {order}, {amount} each time. Please refund.",
        "Please call me back on {phone}; I have been waiting since {date}.",
        "The transfer to IBAN {iban} failed but you still took a fee of {amount}.",
        "You can reach me at {email} or on {phone} after 6pm.",
        "Why does the app show my SSN {ssn} on the statement page?? Fix this.",
        "My account number is {account} and it has been frozen since {date}.",
        "Card ending {last4} declined at checkout, order {order}. Contact {email}.",
        "I was told my card {bad_card} is invalid, which is right, I mistyped it. Reference {order}.",
        "Transaction on {date} for {amount} never arrived in {iban}. My phone: {phone}",
        "Your hotline hung up on me three times. Reach me at {phone} or {email}, not {email}.",
        "Bought {ticker} through your app on {date}, the order {order} shows {pct} fee, way too high.",
        "Sent {amount} from acct {account} to {iban} on {date}, still pending.",
        "Replace my card {card}, it was stolen on {date}. My number is {phone}.",
        "The IBAN {bad_iban} your agent gave me bounces, the right one is {iban}.",
        "The form rejected SSN {bad_ssn}, that is not mine anyway, mine is {ssn}.",
        "Your fees went up {pct} on {date}; I moved my {ticker} shares elsewhere.",
        "Chinese ID {cn_id} was used to open an account I never opened. Email {email}.",
        "Order {order} placed on {date}: charged {amount} to {card} instead of my other card.",
        "I entered {bad_cn_id} as ID but it was a typo; tracking number {order}.",
        "The card number {card_typo} was rejected, I swapped two digits. Gift code {bad_card} fails too.",
        "Stop calling {phone}! I already paid {amount} on {date}.",
    ),
    "zh": (
        "我的银行卡{card}被重复扣款{amount}，订单号{order}，请尽快退款。",
        "请给我回电{phone}，我从{date}等到现在。",
        "往{iban}的汇款失败了，但是手续费{amount}照扣。",
        "联系我：{email}，或者打{phone}。",
        "身份证号{cn_id}实名认证一直失败，客服也不处理。",
        "我的账号是{account}，从{date}起被冻结了。",
        "尾号{last4}的卡在{date}被盗刷{amount}，我的手机{phone}。",
        "客服说卡号{card_typo}无效，确实是我输错了。工单号{order}",
        "礼品卡兑换码{bad_card}用不了，订单{order}。",
        "{date}买了{ticker}，订单{order}的手续费{pct}太高了。",
        "我老婆的身份证{cn_id}也被冒用了，邮箱{email}。",
        "请把{amount}退到卡{card}，不要退到{iban}。",
        "快递单号{order}，{date}到现在还没收到新卡，电话{phone}。",
        "身份证号输成了{bad_cn_id}，现在正确的是{cn_id}。",
        "你们的APP把我的手机号{phone}和邮箱{email}都显示出来了！",
        "账户{account}在{date}被扣了{amount}，流水号{order}。",
        "{ticker}跌了{pct}，理财经理还推荐我买，投诉！电话{phone}",
        "信用卡{card}的账单日是{date}，但是{date}就扣款了。",
        "转账到{bad_iban}被退回，{amount}到现在没到账。",
        "交易号{order}，金额{amount}，日期{date}，请核实。",
        "我的美国社保号{ssn}不应该出现在对账单上。",
    ),
}

_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, rng: random.Random, lang: str) -> tuple[str, list[tuple[str, int, int]]]:
    """The template with every slot filled, and the spans of its PII slots."""
    pieces: list[str] = []
    spans: list[tuple[str, int, int]] = []
    cursor = length = 0
    for match in _SLOT.finditer(template):
        pieces.append(template[cursor:match.start()])
        length += match.start() - cursor
        slot = match.group(1)
        value = (PII_SLOTS.get(slot) or NEAR_MISS_SLOTS[slot])(rng, lang)
        if slot in PII_SLOTS:
            spans.append((SLOT_TYPE.get(slot, slot), length, length + len(value)))
        pieces.append(value)
        length += len(value)
        cursor = match.end()
    pieces.append(template[cursor:])
    return "".join(pieces), spans


def build(count: int = 1000, seed: int = 13) -> list[Labelled]:
    """``count`` messages, half English half Chinese, every template used in turn."""
    rng = random.Random(seed)
    messages = []
    for index in range(count):
        lang = "en" if index % 2 == 0 else "zh"
        templates = TEMPLATES[lang]
        text, spans = fill(templates[(index // 2) % len(templates)], rng, lang)
        messages.append(Labelled(f"pii-{index:05d}", lang, text, tuple(spans)))
    return messages


@dataclass
class TypeScore:
    gold: int = 0
    found: int = 0
    correct: int = 0

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 1.0


@dataclass
class Score:
    per_type: dict[str, TypeScore] = field(default_factory=dict)
    leaked: list[tuple[str, str]] = field(default_factory=list)  # (message id, value) of gold spans left unmasked

    def as_dict(self) -> dict[str, dict[str, float | int]]:
        return {
            kind: {"gold": s.gold, "found": s.found, "correct": s.correct,
                   "precision": round(s.precision, 4), "recall": round(s.recall, 4)}
            for kind, s in sorted(self.per_type.items())
        }


def score(messages: Iterable[Labelled], found: Iterable[Sequence[tuple[str, int, int]]]) -> Score:
    """Exact matching: a found span counts only with the gold span's type, start and end. A gold span
    that no found span overlaps at all is a leak (its value would be stored)."""
    result = Score({kind: TypeScore() for kind in TYPES})
    for message, spans in zip(messages, found, strict=True):
        gold = set(message.spans)
        for kind, start, end in message.spans:
            result.per_type[kind].gold += 1
            if not any(s < end and start < e for _, s, e in spans):
                result.leaked.append((message.id, message.text[start:end]))
        for span in spans:
            result.per_type.setdefault(span[0], TypeScore()).found += 1
            result.per_type[span[0]].correct += span in gold
    return result
