"""Topic names and identity prefixes derived from the agency list (the contract's names)."""

from __future__ import annotations

import pytest

from bus389.agencies import Agency, Topics


def test_topic_names_follow_the_contract() -> None:
    topics = Topics("bus389")
    assert topics.outbox(Agency.TAX) == "bus389.outbox.tax"
    assert topics.inbox("ict") == "bus389.inbox.ict"
    assert (topics.dlq, topics.audit) == ("bus389.dlq", "bus389.audit")
    assert len(topics.all()) == 2 * len(Agency) + 3
    assert topics.keys == "bus389.keys"


def test_sender_of_names_only_real_outboxes() -> None:
    topics = Topics("p")
    assert topics.sender_of("p.outbox.police") is Agency.POLICE
    assert topics.sender_of("p.inbox.police") is None
    assert topics.sender_of("p.outbox.nobody") is None
    assert topics.sender_of("q.outbox.police") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("t_1.ict.blocklist", "t_1.ict.blocklist"),
        ("bus389.ict.blocklist", "t_1.ict.blocklist"),
        ("operator", "t_1.ict.operator"),
    ],
)
def test_agency_ids_stay_under_the_identity_prefix(name: str, expected: str) -> None:
    assert Topics("t_1").agency_id(Agency.ICT, name) == expected


def test_agency_parse_takes_a_code_and_names_the_valid_ones_otherwise() -> None:
    from bus389.errors import InputError

    assert Agency.parse("tax") is Agency.TAX
    assert Agency.parse(Agency.ICT) is Agency.ICT
    with pytest.raises(InputError, match=r"unknown agency 'cong_an': use one of police, border_guard"):
        Agency.parse("cong_an")
