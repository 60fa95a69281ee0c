"""Which alert ids are already on the tax outbox: what makes re-publishing a file publish no duplicates.

Before a publish, the tax outbox is read from its beginning up to the end offsets taken when the read
starts, ``read_committed`` (only events of committed transactions count; with ``read_committed`` the
end offset is the last stable offset, so an open transaction is neither waited for nor counted).
The event id is taken from the CloudEvents ``ce_id`` header (the value is decoded only when a record
lacks it). No consumer group is used and nothing is committed: the read leaves no trace.

The dedup window is the outbox's retention: an alert published longer ago than that has left the
topic, and publishing its row again publishes it again (with the same event id, which every consumer
treats as the same event: they are idempotent by event id). Two clerks publishing the same file at the
same moment are not protected from each other: each reads the outbox before the other commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import closing
from typing import Any

from bus389.agencies import Agency
from bus389.codec import decode_value
from bus389.errors import CodecError
from bus389.settings import Settings
from bus389.topic_scan import scan_topic

__all__ = ["published_event_ids"]

log = logging.getLogger(__name__)

_POLL_MS = 500


def _event_id(record: Any) -> str | None:
    for key, value in record.headers or ():
        if key == "ce_id" and value:
            return bytes(value).decode("utf-8", errors="replace")
    try:
        return decode_value(record.value).event_id or None
    except CodecError as exc:
        log.warning(
            "outbox record %s/%s/%s unreadable: %s", record.topic, record.partition, record.offset, exc
        )
        return None


def published_event_ids(
    settings: Settings, *, agency: Agency = Agency.TAX, among: Iterable[str] | None = None
) -> set[str]:
    """The event ids committed on ``agency``'s outbox (only those in ``among``, when given).

    Raises :class:`BrokerError` when the outbox does not exist or cannot be read to its end within
    ``settings.tax.dedup_timeout_s``.
    """
    wanted = None if among is None else set(among)
    found: set[str] = set()
    records = scan_topic(
        settings,
        settings.topics.outbox(agency),
        timeout_s=settings.tax.dedup_timeout_s,
        timeout_hint="BUS389_TAX__DEDUP_TIMEOUT_S",
        enable_auto_commit=False,
    )
    with closing(records):
        for record in records:
            event_id = _event_id(record)
            if event_id and (wanted is None or event_id in wanted):
                found.add(event_id)
    return found
