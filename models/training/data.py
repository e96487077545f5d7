"""Labeled data: one loader per dataset in the shared data folder, mapped onto RiskPulse's label sets.

RiskPulse has two tasks. **Sentiment** is negative / neutral / positive. **Topic** is the 20 news
topics of twitter-financial-news-topic (spelled exactly as its SOURCE.md) plus a customer-topic
taxonomy (``Customer | …``) built from the CFPB products and the BANKING77 intents, so a complaint
and a chat message about the same problem land on the same topic:

- ``Customer | Cards`` — card delivery, activation, PIN, virtual/physical cards, acceptance
  (BANKING77 card intents; CFPB "Credit card (or prepaid card)", "Prepaid card").
- ``Customer | Payments & Transfers`` — transfers, card payments and cash withdrawals pending,
  declined or failed (BANKING77; CFPB "Money transfer, virtual currency, or money service").
- ``Customer | Top-ups & Currency`` — top-ups, exchange and currency support (BANKING77).
- ``Customer | Fees & Charges`` — fees charged, wrong exchange rates applied (BANKING77).
- ``Customer | Fraud & Disputes`` — unrecognised transactions, compromised/lost cards, refunds,
  double charges (BANKING77).
- ``Customer | Account & Identity`` — identity checks, passcodes, personal details, closing an
  account (BANKING77; CFPB "Checking or savings account", "Bank account or service").
- ``Customer | Credit Reporting`` — CFPB's three "Credit reporting …" product names.
- ``Customer | Debt Collection`` — CFPB "Debt collection".
- ``Customer | Loans & Mortgages`` — CFPB mortgage, student, vehicle, payday and consumer loans.

Official splits are kept. Sets without a validation split (BANKING77, CFPB) get a deterministic
held-out slice of their *train* file for early stopping; their test files are never trained on.
Financial PhraseBank is licensed non-commercial and is therefore evaluation-only.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from riskpulse.core import RiskPulseError

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")

NEWS_TOPICS: tuple[str, ...] = (
    "Analyst Update", "Fed | Central Banks", "Company | Product News", "Treasuries | Corporate Debt",
    "Dividend", "Earnings", "Energy | Oil", "Financials", "Currencies", "General News | Opinion",
    "Gold | Metals | Materials", "IPO", "Legal | Regulation", "M&A | Investments", "Macro", "Markets",
    "Politics", "Personnel Change", "Stock Commentary", "Stock Movement",
)

_BANKING77_GROUPS: dict[str, tuple[str, ...]] = {
    "Customer | Cards": (
        "activate_my_card", "apple_pay_or_google_pay", "atm_support", "card_about_to_expire", "card_acceptance",
        "card_arrival", "card_delivery_estimate", "card_linking", "card_not_working", "card_swallowed",
        "change_pin", "contactless_not_working", "disposable_card_limits", "get_disposable_virtual_card",
        "get_physical_card", "getting_spare_card", "getting_virtual_card", "order_physical_card", "pin_blocked",
        "virtual_card_not_working", "visa_or_mastercard", "supported_cards_and_currencies",
    ),
    "Customer | Payments & Transfers": (
        "balance_not_updated_after_bank_transfer", "balance_not_updated_after_cheque_or_cash_deposit",
        "beneficiary_not_allowed", "cancel_transfer", "declined_card_payment", "declined_cash_withdrawal",
        "declined_transfer", "failed_transfer", "pending_card_payment", "pending_cash_withdrawal",
        "pending_transfer", "receiving_money", "transfer_into_account", "transfer_not_received_by_recipient",
        "transfer_timing",
    ),
    "Customer | Top-ups & Currency": (
        "automatic_top_up", "pending_top_up", "top_up_by_cash_or_cheque", "top_up_failed", "top_up_limits",
        "top_up_reverted", "topping_up_by_card", "verify_top_up", "exchange_rate", "exchange_via_app",
        "fiat_currency_support",
    ),
    "Customer | Fees & Charges": (
        "card_payment_fee_charged", "cash_withdrawal_charge", "exchange_charge", "extra_charge_on_statement",
        "top_up_by_bank_transfer_charge", "top_up_by_card_charge", "transfer_fee_charged",
        "card_payment_wrong_exchange_rate", "wrong_exchange_rate_for_cash_withdrawal",
    ),
    "Customer | Fraud & Disputes": (
        "card_payment_not_recognised", "cash_withdrawal_not_recognised", "compromised_card",
        "direct_debit_payment_not_recognised", "lost_or_stolen_card", "lost_or_stolen_phone",
        "transaction_charged_twice", "request_refund", "Refund_not_showing_up", "reverted_card_payment?",
        "wrong_amount_of_cash_received",
    ),
    "Customer | Account & Identity": (
        "age_limit", "country_support", "edit_personal_details", "passcode_forgotten", "terminate_account",
        "unable_to_verify_identity", "verify_my_identity", "verify_source_of_funds", "why_verify_identity",
    ),
}

_CFPB_GROUPS: dict[str, tuple[str, ...]] = {
    "Customer | Cards": ("Credit card or prepaid card", "Credit card", "Prepaid card"),
    "Customer | Payments & Transfers": ("Money transfer, virtual currency, or money service",),
    "Customer | Account & Identity": ("Checking or savings account", "Bank account or service"),
    "Customer | Credit Reporting": (
        "Credit reporting, credit repair services, or other personal consumer reports",
        "Credit reporting or other personal consumer reports", "Credit reporting",
    ),
    "Customer | Debt Collection": ("Debt collection",),
    "Customer | Loans & Mortgages": (
        "Mortgage", "Student loan", "Vehicle loan or lease", "Payday loan, title loan, or personal loan",
        "Consumer Loan", "Payday loan",
    ),
}

CUSTOMER_TOPICS: tuple[str, ...] = (
    "Customer | Cards", "Customer | Payments & Transfers", "Customer | Top-ups & Currency",
    "Customer | Fees & Charges", "Customer | Fraud & Disputes", "Customer | Account & Identity",
    "Customer | Credit Reporting", "Customer | Debt Collection", "Customer | Loans & Mortgages",
)
TOPIC_LABELS: tuple[str, ...] = NEWS_TOPICS + CUSTOMER_TOPICS
TASK_LABELS: dict[str, tuple[str, ...]] = {"sentiment": SENTIMENT_LABELS, "topic": TOPIC_LABELS}


def _invert(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {source: target for target, sources in groups.items() for source in sources}


LABEL_MAPS: dict[str, dict[str, str]] = {
    "twitter-financial-news-sentiment": {"bearish": "negative", "bullish": "positive", "neutral": "neutral"},
    "financial-phrasebank": {label: label for label in SENTIMENT_LABELS},
    "twitter-financial-news-topic": {topic: topic for topic in NEWS_TOPICS},
    "banking77": _invert(_BANKING77_GROUPS),
    "cfpb-complaints-sample": _invert(_CFPB_GROUPS),
}
DATASET_TASK: dict[str, str] = {
    "twitter-financial-news-sentiment": "sentiment", "financial-phrasebank": "sentiment",
    "twitter-financial-news-topic": "topic", "banking77": "topic", "cfpb-complaints-sample": "topic",
}
CUSTOMER_DATASETS: tuple[str, ...] = ("banking77", "cfpb-complaints-sample")
TRAIN_DATASETS: tuple[str, ...] = (
    "twitter-financial-news-sentiment", "twitter-financial-news-topic", "banking77", "cfpb-complaints-sample",
)


class DataError(RiskPulseError):
    """A dataset file is missing, lacks a column or carries labels RiskPulse cannot map."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # in RiskPulse's label set for `task`
    task: str  # "sentiment" | "topic"
    source: str  # dataset name


def read_csv(path: Path, label_column: str | None = None) -> list[tuple[str, str]]:
    """(text, label) pairs from a CSV with a ``text`` column and ``label`` (or `label_column`, or a task-named column)."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist; check the path (or RISKPULSE_SHARED_DATA)")
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        candidates = [label_column] if label_column else ["label", "topic", "sentiment"]
        column = next((c for c in candidates if c in columns), None)
        if "text" not in columns or column is None:
            raise DataError(
                f"{path} has columns {columns}; it needs 'text' and "
                f"{' or '.join(repr(c) for c in candidates)} — rename the columns or pass the label column"
            )
        return [(row["text"], row[column]) for row in reader]


def map_labels(pairs: list[tuple[str, str]], mapping: dict[str, str], where: str) -> list[tuple[str, str]]:
    """Apply a source→RiskPulse label map; any label outside it is an error naming the labels."""
    unknown = sorted({label for _, label in pairs if label not in mapping})
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:8]) + (" …" if len(unknown) > 8 else "")
        raise DataError(f"{where}: {len(unknown)} unknown label(s) {shown}; expected one of {sorted(set(mapping))[:30]}")
    return [(text, mapping[label]) for text, label in pairs]


def load_dataset(root: Path, name: str, split: str) -> list[Example]:
    """One dataset split as RiskPulse examples; `split` is a file stem (train, validation, test)."""
    if name not in LABEL_MAPS:
        raise DataError(f"unknown dataset {name!r}; known: {sorted(LABEL_MAPS)}")
    path = root / name / f"{split}.csv"
    pairs = map_labels(read_csv(path), LABEL_MAPS[name], str(path))
    return [Example(text, label, DATASET_TASK[name], name) for text, label in pairs if text.strip()]


def split_holdout(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Deterministic (train, held-out) split by hashing text, for sets without a validation file."""
    def bucket(ex: Example) -> float:
        digest = hashlib.sha256(f"{seed}:{ex.text}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64
    keep = [ex for ex in examples if bucket(ex) >= fraction]
    held = [ex for ex in examples if bucket(ex) < fraction]
    return keep, held


@dataclass
class TrainingData:
    train: list[Example]
    validation: dict[str, list[Example]]  # dataset name -> held-out rows
    fingerprints: dict[str, str]  # file -> sha256


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def training_data(root: Path, holdout: float = 0.1, seed: int = 13) -> TrainingData:
    """The default training mix and its validation sets (official validation where one exists)."""
    train: list[Example] = []
    validation: dict[str, list[Example]] = {}
    fingerprints: dict[str, str] = {}
    for name in TRAIN_DATASETS:
        rows = load_dataset(root, name, "train")
        fingerprints[f"{name}/train.csv"] = fingerprint(root / name / "train.csv")
        if (root / name / "validation.csv").is_file():
            validation[name] = load_dataset(root, name, "validation")
            fingerprints[f"{name}/validation.csv"] = fingerprint(root / name / "validation.csv")
        else:
            rows, validation[name] = split_holdout(rows, holdout, seed)
        train.extend(rows)
    return TrainingData(train, validation, fingerprints)


def subsample(examples: list[Example], per_source: int | None, seed: int, fraction: float = 1.0) -> list[Example]:
    """At most `per_source` rows (and at most `fraction`) of each dataset, chosen reproducibly."""
    rng = random.Random(seed)
    out: list[Example] = []
    for source in sorted({ex.source for ex in examples}):
        rows = [ex for ex in examples if ex.source == source]
        k = min(len(rows) if per_source is None else per_source, max(1, round(fraction * len(rows))))
        out.extend(rng.sample(rows, min(k, len(rows))))
    return out
