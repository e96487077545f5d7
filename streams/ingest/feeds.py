"""Poll RSS/Atom feeds and publish each new item once.

Item ids already sent are remembered in a JSON state file under ``settings.home``;
the state is saved only after the broker acknowledged the batch, so a crash can
repeat an item (the idempotent messages table absorbs it) but never loses one.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from riskpulse.core import RiskPulseError
from riskpulse.core.schema import Message, content_id
from riskpulse.core.settings import Settings

log = logging.getLogger("riskpulse.feeds")

_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


class FeedError(RiskPulseError):
    """A feed that could not be fetched or parsed."""


def state_path(settings: Settings) -> Path:
    return settings.home / "feeds-sent.json"


def load_sent(path: Path) -> set[str]:
    if not path.exists():
        return set()
    return set(json.loads(path.read_text(encoding="utf-8")))


def save_sent(path: Path, sent: set[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(sent)), encoding="utf-8")
    tmp.replace(path)


def _plain(text: str) -> str:
    return _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", text or ""))).strip()


def _entry_time(entry) -> datetime:
    for key in ("published_parsed", "updated_parsed"):
        parsed = entry.get(key)
        if parsed:
            return datetime(*parsed[:6], tzinfo=timezone.utc)
    return datetime.now(timezone.utc)


def feed_messages(url_or_file: str) -> list[Message]:
    """The items of one feed as messages (source ``news``, channel = feed title)."""
    import feedparser

    parsed = feedparser.parse(url_or_file)
    if parsed.bozo and not parsed.entries:
        raise FeedError(f"{url_or_file}: not a readable RSS/Atom feed ({parsed.get('bozo_exception')})")
    channel = _plain(parsed.feed.get("title", ""))[:128] or url_or_file[:128]
    messages = []
    for entry in parsed.entries:
        title, summary = _plain(entry.get("title", "")), _plain(entry.get("summary", ""))
        text = f"{title}. {summary}" if title and summary and summary != title else (title or summary)
        if not text:
            continue
        item_id = entry.get("id") or entry.get("link") or content_id("news", channel, text)
        messages.append(
            Message(
                id=item_id if len(item_id) <= 128 else content_id("news", channel, item_id),
                source="news",
                channel=channel,
                ts=_entry_time(entry),
                text=text[: 32 * 1024],
                meta={"link": entry.get("link", ""), "feed": url_or_file[:256]},
            )
        )
    return messages


def new_messages(sources: Iterable[str], sent: set[str]) -> list[Message]:
    """Items of all feeds whose id was not sent before (each id once, even across feeds)."""
    fresh: dict[str, Message] = {}
    for src in sources:
        for msg in feed_messages(src):
            if msg.id not in sent and msg.id not in fresh:
                fresh[msg.id] = msg
    return list(fresh.values())


def poll_once(sources: Iterable[str], settings: Settings, producer=None) -> int:
    """Publish the feeds' new items; returns how many were sent."""
    from riskpulse.streams.ingest.producers import send_messages

    path = state_path(settings)
    sent = load_sent(path)
    fresh = new_messages(sources, sent)
    if fresh:
        send_messages(fresh, settings, total=len(fresh), producer=producer)
        save_sent(path, sent | {m.id for m in fresh})
    log.info("feeds: %d new items published, %d known", len(fresh), len(sent))
    return len(fresh)
