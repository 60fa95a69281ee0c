"""The API's publishing: one open transactional :class:`Publisher` per agency, reused by every POST.

Opening a publisher (topic check, transactional id registration) costs more than a small transaction,
so each agency keeps one, used by one request at a time (a lock per agency). Each POST is one Kafka
transaction of its events, validated first by :func:`~bus389.producers.publisher.prepare_events` and
:func:`~bus389.producers.publisher.check_sizes`: the rules of ``bus389 publish``, nothing of them
written again. A publisher that failed is closed and a new one opened for the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from bus389.agencies import Agency
from bus389.errors import BusError
from bus389.producers.publisher import ChunkReport, Publisher, check_routes, check_sizes, prepare_events
from bus389.producers.readers import SourceRecord
from bus389.routing.policy import Policy
from bus389.settings import Settings

__all__ = ["AgencyPublishers"]


class AgencyPublishers:
    """An open publisher per agency, made on first use with the agency's settings; :meth:`close` all."""

    def __init__(
        self, settings_for: Callable[[Agency], Settings], policy: Callable[[], Policy] | None = None
    ) -> None:
        self._settings_for = settings_for
        self._policy = policy
        self._publishers: dict[Agency, Publisher] = {}
        self._locks: dict[Agency, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, agency: Agency) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(agency, threading.Lock())

    def publish(
        self, agency: Agency, event_type: str, records: Sequence[SourceRecord], *, source: str
    ) -> tuple[str, ChunkReport]:
        """Validate every record, then publish them all in one transaction; returns (topic, committed).

        Raises :class:`~bus389.errors.InvalidRecordsError` (nothing sent) or
        :class:`~bus389.errors.PublishError` (nothing committed, or the commit unconfirmed).
        """
        settings = self._settings_for(agency)
        events = prepare_events(event_type, agency, records, source=source)
        if self._policy is not None:
            # The agency's publishing rights and where each event would go: as `bus389 publish` checks.
            check_routes(events, agency, self._policy(), source=source)
        check_sizes(settings, events, source)
        with self._lock(agency):
            publisher = self._publishers.get(agency)
            if publisher is None:
                publisher = Publisher(settings, agency)
                publisher.open()
                self._publishers[agency] = publisher
            try:
                return publisher.topic, publisher.publish(events)
            except BusError:
                # A failed transaction may leave the producer unusable: the next request opens anew.
                self._publishers.pop(agency, None)
                publisher.close()
                raise

    def close(self) -> None:
        with self._guard:
            publishers, self._publishers = list(self._publishers.values()), {}
        for publisher in publishers:
            try:
                publisher.close()
            except BusError:  # closing the others matters more than one failure
                continue
