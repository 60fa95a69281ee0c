"""Fuzzing the router's per-record handling (``RecordRouter.route``) and the agency services' handlers.

For any outbox record — random bytes, damaged frames, valid frames over the wrong schema, records that
decode but break the models' rules, arbitrary headers — the router must return, never raise: either a
routed event (one copy per recipient, one audit record, every copy decodable and redacted as its
header says), or exactly one dead letter carrying the original bytes, a known reason and the origin.
Poison records must not disturb the routing of the good records around them.

The agency services' handlers get what the router could forward: they may refuse a record only with
a :class:`~bus389.errors.BusError` (which the shared loop records as poison), never anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _fuzz_inputs import (
    EVENT_TYPES,
    NOW,
    RECEIVED,
    TOPICS,
    FakeRecord,
    check_invariants,
    encoded_sample,
    entry_of,
    frame,
    new_router,
    outbox_record,
    plausible_record,
    random_record,
    sample_event,
    sample_source,
    write_body,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus389.agencies import Agency
from bus389.codec import decode_event, decode_value
from bus389.consumers.router.records import RecordRouter, Routed
from bus389.errors import BusError

pytestmark = pytest.mark.timeout(300)

AGENCIES = list(Agency)


def route(router: RecordRouter, raw: FakeRecord) -> Routed:
    """Route one record and check what must hold of any answer (a hang is pytest-timeout's to catch)."""
    routed = router.route(raw, received_at=RECEIVED, now=lambda: RECEIVED)
    check_invariants(raw, routed)
    return routed


outboxes = st.sampled_from(AGENCIES).map(TOPICS.outbox)
header_lists = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(["ce_type", "ce_id", "bus389_rule", "bus389_dlq_reason", "x"]),
            st.text(max_size=8),
        ),
        st.one_of(st.none(), st.binary(max_size=40)),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(
    outboxes,
    st.one_of(st.none(), st.binary(max_size=600)),
    header_lists,
    st.one_of(st.none(), st.binary(max_size=20)),
)
def test_random_records_end_in_the_dlq_with_a_reason(
    topic: str, value: bytes | None, headers: list[tuple[str, bytes | None]], key: bytes | None
) -> None:
    routed = route(new_router(), FakeRecord(topic, value, headers, key=key, offset=7))
    assert not routed.routed or value is not None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_frames_of_every_type(data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    raw = outbox_record(event_type)
    value = bytearray(raw.value or b"")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(value) - 1))
        op = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if op == "set":
            value[at] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del value[at:]
        else:
            value[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        if not value:
            break
    route(new_router(), FakeRecord(raw.topic, bytes(value), raw.headers, key=raw.key))


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_records_that_decode_but_break_the_rules(data: st.DataObject) -> None:
    """Type-correct Avro, rule-blind content, from the right outbox or another one (a spoof)."""
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record = data.draw(st.one_of(random_record(event_type), plausible_record(event_type)))
    entry = entry_of(event_type)
    value = frame(entry.schema_id, write_body(record, entry))
    topic = data.draw(st.one_of(st.just(TOPICS.outbox(record["meta"]["source"])), outboxes))
    headers = data.draw(st.sampled_from([encoded_sample(event_type).headers, []]))
    route(new_router(), FakeRecord(topic, value, list(headers)))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_valid_samples_are_routed(event_type: str) -> None:
    router = new_router()
    if event_type == "domain_block_result":
        request = sample_event(event_type).meta.in_reply_to or ""
        router.replies.record(request, Agency.MARKET_SURVEILLANCE, [Agency.ICT])
        router.replies.commit()
    assert route(router, outbox_record(event_type)).routed


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_a_valid_event_from_another_outbox_is_a_spoof(event_type: str) -> None:
    other = next(a for a in AGENCIES if a != sample_source(event_type))
    routed = route(new_router(), outbox_record(event_type, topic=TOPICS.outbox(other)))
    assert routed.dlq_reason == "spoofed_source"


@pytest.mark.parametrize(
    "topic", ["fuzz.inbox.police", "fuzz.dlq", "fuzz.audit", "fuzz.outbox.nobody", "other.outbox.police", ""]
)
def test_records_from_topics_that_are_not_outboxes(topic: str) -> None:
    assert route(new_router(), outbox_record("law_gap_proposal", topic=topic)).dlq_reason == "not_an_outbox"


@pytest.mark.timeout(120)  # bounded time: a quadratic redaction would hang here (speed: `make bench`)
def test_enormous_events_route_in_bounded_time() -> None:
    """Large, honest events (a 1 MB summary, 20 000 evidence links) are routed, redacted copies included."""
    event = sample_event("suspect_seller")
    record = event.to_avro()
    record["summary"] = "Hàng giả " * 100_000
    record["evidence_urls"] = [f"https://example.vn/{i}" for i in range(20_000)]
    entry = entry_of("suspect_seller")
    raw = outbox_record("suspect_seller", value=frame(entry.schema_id, write_body(record, entry)))
    routed = route(new_router(), raw)
    assert routed.routed, f"an honest enormous event dead-lettered: {routed.dlq_detail}"
    assert routed.decision is not None
    copies = [out for out in routed.outgoing if out.topic != TOPICS.audit]
    assert len(copies) == len(routed.decision.deliveries) > 0
    redacted = [d for d in routed.decision.deliveries if d.redacted]
    assert redacted, "the sample seller carries personal data: some copy is redacted (re-encoded)"
    for out in copies:
        copy = decode_value(out.value).record
        assert copy["summary"] == record["summary"]
        assert copy["evidence_urls"] == record["evidence_urls"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(st.data())
def test_poison_does_not_disturb_the_good_records_around_it(data: st.DataObject) -> None:
    """One router, a stream of good and bad records: every good one is routed as if it were alone."""
    router = new_router()
    stream: list[tuple[bool, FakeRecord]] = []
    for i in range(data.draw(st.integers(4, 16))):
        kind = data.draw(st.sampled_from(["good", "bytes", "decodes", "spoof"]))
        event_type = data.draw(st.sampled_from([t for t in EVENT_TYPES if t != "domain_block_result"]))
        if kind == "good":
            raw = outbox_record(event_type, offset=i)
        elif kind == "bytes":
            raw = FakeRecord(data.draw(outboxes), data.draw(st.binary(max_size=200)), offset=i)
        elif kind == "decodes":
            record = data.draw(random_record(event_type))
            entry = entry_of(event_type)
            raw = FakeRecord(data.draw(outboxes), frame(entry.schema_id, write_body(record, entry)), offset=i)
        else:
            other = next(a for a in AGENCIES if a != sample_source(event_type))
            raw = outbox_record(event_type, topic=TOPICS.outbox(other), offset=i)
        stream.append((kind == "good", raw))
    routed_ids: set[str] = set()
    for good, raw in stream:
        routed = route(router, raw)
        router.replies.commit()  # as the service does once the batch's transaction commits
        if good:
            event_id = decode_event(raw.value, raw.headers).event_id
            if event_id in routed_ids:  # the same event again: a duplicate, delivered once
                assert routed.duplicate and routed.outgoing == ()
                continue
            routed_ids.add(event_id)
            alone = new_router().route(raw, received_at=RECEIVED, now=lambda: RECEIVED)
            assert routed.routed
            assert routed.outgoing == alone.outgoing


# --- the agency services: what the router forwards must never crash them ------------------------------------


class _NoProducer:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"handle() must not use the producer ({name})")


def _inbox_message(agency: Agency, record: dict[str, Any], event_type: str) -> Any:
    from bus389.runtime.inbox_loop import InboxMessage

    entry = entry_of(event_type)
    value = frame(entry.schema_id, write_body(record, entry))
    decoded = decode_value(value)
    return InboxMessage(
        topic=TOPICS.inbox(agency),
        partition=0,
        offset=0,
        key=b"k",
        value=value,
        headers={"bus389_redacted": b""},
        timestamp_ms=int(NOW.timestamp() * 1000),
        schema=decoded.schema,
        record=decoded.record,
    )


@pytest.fixture(scope="module")
def ict_service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from bus389.consumers.ict.service import IctService
    from bus389.consumers.ict.store import open_store
    from bus389.settings import IctSettings, Settings, StoreSettings

    where: Path = tmp_path_factory.mktemp("ict")
    settings = Settings(
        topic_prefix="fuzz",
        store=StoreSettings(ict_url=f"sqlite:///{where / 'ict.sqlite3'}"),
        ict=IctSettings(auto_approve_senders=tuple(Agency), output_dir=where / "blocklist"),
    )
    store = open_store(settings.store.ict_url)
    yield IctService(settings, store, producer_factory=_NoProducer)
    store.close()


@pytest.fixture(scope="module")
def standing_office(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from bus389.consumers.standing_office.service import StandingOfficeService
    from bus389.consumers.standing_office.store import StandingOfficeStore

    where: Path = tmp_path_factory.mktemp("so")
    with StandingOfficeStore.open(f"sqlite:///{where / 'so.sqlite3'}") as store:
        yield StandingOfficeService(store)


request_strings = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "xn--",
            "xn--zz",
            "ÀÁ.vn",
            "a..b.vn",
            "-a.vn",
            "a" * 64 + ".vn",
            ("a" * 63 + ".") * 5 + "vn",
            "http://",
            "https://[::1]/x",
            "https://user:pw@x.vn:99999/",
            "//x.vn",
            "1.2.3.4/33",
            "::ffff:1.2.3.4",
            "fe80::1%eth0",
            "203.0.113.0/24",
            "0.0.0.0/0",
            "*.vn",
            "\u0000",
            "ß.vn",
            "xn--nxasmq6b.vn",
            "gov.vn",
        ]
    ),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.data())
def test_the_ict_service_refuses_any_request_only_with_a_bus_error(
    ict_service: Any, data: st.DataObject
) -> None:
    """Domains, URLs and IPs are free text in the schema: screening must survive any of them."""
    record = sample_event("domain_block_request").to_avro()
    record["meta"]["event_id"] = str(data.draw(st.uuids()))
    record["domains"] = data.draw(st.lists(request_strings, max_size=4))
    record["urls"] = data.draw(st.lists(request_strings, max_size=3))
    record["ip_addresses"] = data.draw(st.lists(request_strings, max_size=3))
    record["action"] = data.draw(
        st.sampled_from(["BLOCK", "UNBLOCK", "REVOKE_VN_DOMAIN", "SUSPEND_LICENCE", "UNKNOWN"])
    )
    message = _inbox_message(Agency.ICT, record, "domain_block_request")
    try:
        ict_service.handle(message)
    except BusError as exc:
        assert not exc.retriable, f"a bad request must be poison, not retried forever: {exc}"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(st.data())
def test_the_ict_service_refuses_rule_breaking_records_only_with_a_bus_error(
    ict_service: Any, data: st.DataObject
) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record = data.draw(st.one_of(random_record(event_type), plausible_record(event_type)))
    try:
        ict_service.handle(_inbox_message(Agency.ICT, record, event_type))
    except BusError as exc:
        assert not exc.retriable, str(exc)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(st.data())
def test_the_standing_office_refuses_only_with_a_bus_error(standing_office: Any, data: st.DataObject) -> None:
    event_type = data.draw(st.sampled_from(EVENT_TYPES))
    record = data.draw(st.one_of(random_record(event_type), plausible_record(event_type)))
    message = _inbox_message(Agency.MARKET_SURVEILLANCE, record, event_type)
    try:
        standing_office.handle(message)
    except BusError as exc:
        assert not exc.retriable, str(exc)
