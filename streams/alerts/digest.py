"""The daily digest: per watchlist entity and per topic, yesterday against the week before.

For each watched institution (``deploy/watchlist.yaml``) and each topic: the day's messages and negative
share, the seven days before as a daily average, how the share and the volume moved, and the alerts
opened that day on it. Written as an e-mail-ready HTML page (inline styles, one table per kind) and a CSV
under ``<home>/digests``, and sent by SMTP when ``RISKPULSE_SMTP_HOST`` and ``RISKPULSE_DIGEST_TO`` are
set. ``riskpulse scheduler`` runs it daily (``RISKPULSE_DIGEST_CRON``); the dashboard offers the same
table as CSV or XLSX.
"""

from __future__ import annotations

import csv
import html
import io
import json
import logging
import smtplib
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

from riskpulse.core.settings import Settings
from riskpulse.streams.enrich.entities import Catalogue, watchlist_path
from riskpulse.streams.store import digest as queries
from riskpulse.streams.store.backends import Queryable

log = logging.getLogger("riskpulse.alerts")


@dataclass(frozen=True)
class DigestRow:
    """One watched entity or topic on the digest's day."""

    kind: str  # entity | topic
    id: str
    name: str
    messages: int
    negatives: int
    negative_share: float
    week_messages_per_day: float
    week_negative_share: float
    share_change: float  # the day's share minus the week's, in points of share
    volume_change: float | None  # the day's messages over the week's daily average, minus 1; None without a week
    alerts: int


@dataclass(frozen=True)
class Digest:
    day: date
    rows: tuple[DigestRow, ...]
    made_at: datetime


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _row(kind: str, id_: str, name: str, counts: dict, alerts: int) -> DigestRow:
    messages, negatives = int(counts.get("messages", 0)), int(counts.get("negatives", 0))
    week, week_neg = int(counts.get("week_messages", 0)), int(counts.get("week_negatives", 0))
    share, week_share = _share(negatives, messages), _share(week_neg, week)
    per_day = week / 7
    return DigestRow(
        kind=kind, id=id_, name=name, messages=messages, negatives=negatives, negative_share=share,
        week_messages_per_day=round(per_day, 2), week_negative_share=week_share,
        share_change=round(share - week_share, 4), volume_change=round(messages / per_day - 1, 4) if per_day else None,
        alerts=alerts,
    )


def watched_entities(settings: Settings) -> dict[str, str]:
    """Watchlist entity id → display name."""
    catalogue = Catalogue.load(watchlist=watchlist_path(settings))
    return {e.id: e.name for e in catalogue.entities.values() if e.watched}


def build_digest(store: Queryable, day: date, watched: dict[str, str], now: datetime | None = None) -> Digest:
    """The digest of ``day`` (UTC): watched entities first (most negative first), then topics."""
    start = int(datetime.combine(day, time(), timezone.utc).timestamp())
    by_entity = {r["entity_id"]: r for r in queries.entity_days(store, start, sorted(watched))}
    by_topic = {r["topic"]: r for r in queries.topic_days(store, start)}
    raised: Counter[tuple[str, str]] = Counter()
    for alert in queries.alerts_opened(store, start):
        labels = json.loads(alert["labels"] or "{}")
        for kind in ("entity", "topic"):
            if kind in labels:
                raised[(kind, labels[kind])] += 1
    entities = [_row("entity", e, watched[e], by_entity.get(e, {}), raised[("entity", e)]) for e in watched]
    topics = [_row("topic", t, t, counts, raised[("topic", t)]) for t, counts in by_topic.items()]
    order = lambda r: (-r.alerts, -r.share_change, -r.messages, r.id)  # noqa: E731 - one sort key, two lists
    entities = sorted((r for r in entities if r.messages or r.week_messages_per_day or r.alerts), key=order)
    return Digest(day, tuple(entities + sorted(topics, key=order)), now or datetime.now(timezone.utc))


COLUMNS = tuple(f.name for f in fields(DigestRow))


def to_csv(digest: Digest) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=("day", *COLUMNS))
    writer.writeheader()
    for row in digest.rows:
        writer.writerow({"day": digest.day.isoformat(), **asdict(row)})
    return out.getvalue()


def _pct(value: float | None, signed: bool = False) -> str:
    return "–" if value is None else f"{value:+.0%}" if signed else f"{value:.0%}"


CELL = "padding:4px 8px;border-bottom:1px solid #ddd;text-align:right"
HEAD = "padding:4px 8px;border-bottom:2px solid #333;text-align:right;background:#f4f4f4"


def _table(title: str, rows: list[DigestRow]) -> str:
    heads = ["", "messages", "negative", "week: msgs/day", "week: negative", "share change", "volume change", "alerts"]
    head = "".join(f'<th style="{HEAD}{";text-align:left" if not h else ""}">{h}</th>' for h in heads)
    body = []
    for r in rows:
        alarm = "color:#b00020;font-weight:bold" if r.alerts or r.share_change >= 0.15 else ""
        cells = [html.escape(r.name if r.name == r.id else f"{r.name} ({r.id})"), f"{r.messages:,}", _pct(r.negative_share),
                 f"{r.week_messages_per_day:,.1f}", _pct(r.week_negative_share), _pct(r.share_change, signed=True),
                 _pct(r.volume_change, signed=True), str(r.alerts)]
        body.append("<tr>" + "".join(
            f'<td style="{CELL}{";text-align:left" if i == 0 else ""};{alarm}">{c}</td>' for i, c in enumerate(cells)) + "</tr>")
    if not body:
        body = [f'<tr><td colspan="8" style="{CELL};text-align:left">Nothing stored.</td></tr>']
    return (f'<h2 style="font-size:16px;margin:20px 0 6px">{title}</h2>'
            f'<table style="border-collapse:collapse;font-size:13px">{head and "<tr>" + head + "</tr>"}{"".join(body)}</table>')


def to_html(digest: Digest) -> str:
    """One self-contained page, inline styles only (what mail clients render)."""
    entities = [r for r in digest.rows if r.kind == "entity"]
    topics = [r for r in digest.rows if r.kind == "topic"]
    alerts = sum(r.alerts for r in digest.rows)
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>RiskPulse daily digest {digest.day.isoformat()}</title></head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;color:#222">'
        f'<h1 style="font-size:20px">RiskPulse daily digest — {digest.day.isoformat()} (UTC)</h1>'
        f"<p>{alerts} alert(s) opened. Each row: the day against the seven days before it (daily average). "
        "Red: an alert, or a negative share up 15 points or more.</p>"
        + _table("Watchlist", entities) + _table("Topics", topics)
        + f'<p style="color:#777;font-size:11px">Made {digest.made_at:%Y-%m-%d %H:%M} UTC by RiskPulse.</p></body></html>'
    )


def to_xlsx(digest: Digest) -> bytes:
    """The CSV's table as an Excel workbook (needs openpyxl)."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = f"digest {digest.day.isoformat()}"
    sheet.append(["day", *COLUMNS])
    for row in digest.rows:
        sheet.append([digest.day.isoformat(), *asdict(row).values()])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def digest_dir(settings: Settings) -> Path:
    return settings.digest_dir or settings.home / "digests"


def write_digest(digest: Digest, folder: Path) -> tuple[Path, Path]:
    """``digest-<day>.html`` and ``.csv`` in ``folder`` (written whole, then renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in ((".html", to_html(digest)), (".csv", to_csv(digest))):
        path = folder / f"digest-{digest.day.isoformat()}{suffix}"
        tmp = path.with_suffix(suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths.append(path)
    return paths[0], paths[1]


def mail(digest: Digest, settings: Settings) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"RiskPulse daily digest {digest.day.isoformat()}: {sum(r.alerts for r in digest.rows)} alert(s)"
    msg["From"] = settings.digest_from
    msg["To"] = ", ".join(settings.digest_to)
    msg.set_content("The RiskPulse daily digest is attached as HTML and CSV; an HTML mail client shows it inline.")
    msg.add_alternative(to_html(digest), subtype="html")
    msg.add_attachment(to_csv(digest).encode(), maintype="text", subtype="csv", filename=f"digest-{digest.day}.csv")
    return msg


def send(digest: Digest, settings: Settings) -> bool:
    """Mail the digest when SMTP and recipients are configured; False when they are not."""
    if not settings.smtp_host or not settings.digest_to:
        return False
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value() if settings.smtp_password else "")
        smtp.send_message(mail(digest, settings))
    log.info("digest %s mailed to %s via %s", digest.day, settings.digest_to, settings.smtp_host)
    return True


def run_digest(settings: Settings, day: date | None = None, store: Queryable | None = None) -> tuple[Path, Path]:
    """Build yesterday's (or ``day``'s) digest from the store, write it, mail it if configured."""
    from riskpulse.streams.store.backends import open_store

    day = day or (datetime.now(timezone.utc) - timedelta(days=1)).date()
    own = store is None
    store = store or open_store(settings)
    try:
        digest = build_digest(store, day, watched_entities(settings))
    finally:
        if own:
            store.close()
    html_path, csv_path = write_digest(digest, digest_dir(settings))
    log.info("digest %s: %d rows, %d alerts → %s", day, len(digest.rows), sum(r.alerts for r in digest.rows), html_path)
    send(digest, settings)
    return html_path, csv_path
