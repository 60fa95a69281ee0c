"""The ACL spec: derived from the agency list, equal to deploy/security/acl-spec.yaml, least privilege."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus389.agencies import Agency, Topics
from bus389.errors import ConfigError
from bus389.security.acl import (
    CLUSTER_RESOURCE,
    SUPER_USERS,
    AclEntry,
    allows,
    client_principals,
    derive_acl_spec,
    load_spec_file,
    render_spec_yaml,
    topic_matrix,
)
from bus389.security.admin import identity_warnings, is_managed
from bus389.settings import RouterSettings, Settings

PREFIX = "bus389"
TOPICS = Topics(PREFIX)
SPEC = derive_acl_spec(PREFIX)
ROUTER = "User:router"

SPEC_PATH = Path(__file__).resolve().parents[2] / "deploy" / "security" / "acl-spec.yaml"


def user(agency: Agency) -> str:
    return f"User:{agency.value}"


def test_the_deploy_file_is_what_the_code_derives() -> None:
    prefix, acls = load_spec_file(SPEC_PATH)
    assert prefix == PREFIX
    assert acls == SPEC
    # Byte for byte too: the file is regenerated, never edited (`security show --format yaml`).
    assert SPEC_PATH.read_text(encoding="utf-8") == render_spec_yaml(PREFIX, SPEC)


def test_a_changed_spec_file_is_noticed(tmp_path: Path) -> None:
    text = SPEC_PATH.read_text(encoding="utf-8")
    widened = tmp_path / "acl-spec.yaml"
    widened.write_text(
        text + f"  - {{principal: User:tax, resource_type: TOPIC, pattern_type: LITERAL, "
        f"name: {TOPICS.inbox(Agency.POLICE)}, operation: READ, permission: ALLOW}}\n"
    )
    assert load_spec_file(widened)[1] != SPEC


@pytest.mark.parametrize(
    "mutation",
    [
        ("operation: READ,", "operation: READ_EVERYTHING,"),
        ("version: 1", "version: 2"),
        ("super_users: [User:admin, User:broker]", "super_users: [User:admin, User:tax]"),
        ("permission: ALLOW}", "permission: ALLOW, host: '*'}"),
    ],
)
def test_an_invalid_spec_file_is_refused(tmp_path: Path, mutation: tuple[str, str]) -> None:
    bad = tmp_path / "acl-spec.yaml"
    bad.write_text(SPEC_PATH.read_text(encoding="utf-8").replace(*mutation, 1))
    with pytest.raises(ConfigError):
        load_spec_file(bad)


def test_render_and_load_round_trip_for_any_prefix(tmp_path: Path) -> None:
    spec = derive_acl_spec("t_1234abcd")
    path = tmp_path / "spec.yaml"
    path.write_text(render_spec_yaml("t_1234abcd", spec))
    assert load_spec_file(path) == ("t_1234abcd", spec)


def test_every_acl_is_an_allow_for_a_bus_principal_without_wildcards() -> None:
    principals = {f"User:{u}" for u in client_principals()}
    assert {a.principal for a in SPEC} == principals
    assert all(a.permission == "ALLOW" for a in SPEC)
    assert not [a for a in SPEC if a.name in ("*", "")]
    assert not [a for a in SPEC if a.principal in SUPER_USERS]
    assert len(SPEC) == len(set(SPEC))
    # Every TOPIC ACL names one of the bus's topics, literally: no prefix grants on topics.
    topic_acls = [a for a in SPEC if a.resource_type == "TOPIC"]
    assert all(a.pattern_type == "LITERAL" and a.name in TOPICS.all() for a in topic_acls)


@pytest.mark.parametrize("agency", list(Agency))
def test_an_agency_writes_only_its_outbox_and_reads_only_its_own_topics(agency: Agency) -> None:
    me = user(agency)
    for topic in TOPICS.all():
        may_write = allows(SPEC, me, "TOPIC", topic, "WRITE")
        may_read = allows(SPEC, me, "TOPIC", topic, "READ")
        assert may_write == (topic == TOPICS.outbox(agency)), topic
        # Its inbox, its own outbox (the ICT service and the tax producer scan theirs), the key registry.
        assert may_read == (topic in (TOPICS.inbox(agency), TOPICS.outbox(agency), TOPICS.keys)), topic
    assert allows(SPEC, me, "CLUSTER", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE")
    for operation in ("ALTER", "CREATE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "CLUSTER_ACTION"):
        assert not allows(SPEC, me, "CLUSTER", CLUSTER_RESOURCE, operation)
    for operation in ("DELETE", "ALTER_CONFIGS", "DESCRIBE_CONFIGS", "CREATE"):
        assert not allows(SPEC, me, "TOPIC", TOPICS.outbox(agency), operation)


def test_the_ict_and_tax_services_can_scan_their_own_outbox() -> None:
    for agency in (Agency.ICT, Agency.TAX):
        assert allows(SPEC, user(agency), "TOPIC", TOPICS.outbox(agency), "READ")
        assert allows(SPEC, user(agency), "TOPIC", TOPICS.outbox(agency), "DESCRIBE")


@pytest.mark.parametrize("agency", list(Agency))
def test_groups_and_transactional_ids_only_under_the_agency_prefix(agency: Agency) -> None:
    me = user(agency)
    mine = f"{PREFIX}.{agency.value}.publish.1f0c"
    assert allows(SPEC, me, "GROUP", f"{PREFIX}.{agency.value}.store", "READ")
    assert allows(SPEC, me, "TRANSACTIONAL_ID", mine, "WRITE")
    assert allows(SPEC, me, "TRANSACTIONAL_ID", mine, "DESCRIBE")
    for other in Agency:
        if other is not agency:
            assert not allows(SPEC, me, "GROUP", f"{PREFIX}.{other.value}.store", "READ")
            assert not allows(SPEC, me, "TRANSACTIONAL_ID", f"{PREFIX}.{other.value}.x", "WRITE")
    for foreign in (f"{PREFIX}.router", f"{PREFIX}.router.dlq-replay", f"{PREFIX}.{agency.value}", "bus389x"):
        assert not allows(SPEC, me, "GROUP", foreign, "READ")
        assert not allows(SPEC, me, "TRANSACTIONAL_ID", foreign, "WRITE")
    # The trailing dot: "tax." does not cover "taxi.".
    assert not allows(SPEC, me, "GROUP", f"{PREFIX}.{agency.value}x.store", "READ")


def test_the_router_reads_outboxes_and_writes_inboxes_dlq_and_audit() -> None:
    for agency in Agency:
        assert allows(SPEC, ROUTER, "TOPIC", TOPICS.outbox(agency), "READ")
        assert not allows(SPEC, ROUTER, "TOPIC", TOPICS.outbox(agency), "WRITE")
        assert allows(SPEC, ROUTER, "TOPIC", TOPICS.inbox(agency), "WRITE")
        assert not allows(SPEC, ROUTER, "TOPIC", TOPICS.inbox(agency), "READ")
    assert allows(SPEC, ROUTER, "TOPIC", TOPICS.dlq, "WRITE")
    assert not allows(SPEC, ROUTER, "TOPIC", TOPICS.dlq, "READ")
    assert allows(SPEC, ROUTER, "TOPIC", TOPICS.audit, "WRITE")
    assert allows(SPEC, ROUTER, "TOPIC", TOPICS.audit, "READ")
    assert allows(SPEC, ROUTER, "GROUP", f"{PREFIX}.router", "READ")
    assert allows(SPEC, ROUTER, "TRANSACTIONAL_ID", f"{PREFIX}.router", "WRITE")
    assert not allows(SPEC, ROUTER, "GROUP", f"{PREFIX}.police.x", "READ")
    assert not allows(SPEC, ROUTER, "CLUSTER", CLUSTER_RESOURCE, "ALTER")


def test_allows_follows_kafka_matching() -> None:
    spec = [
        AclEntry("User:a", "TOPIC", "PREFIXED", "p.", "READ"),
        AclEntry("User:a", "TOPIC", "LITERAL", "p.secret", "READ", "DENY"),
        AclEntry("User:a", "TOPIC", "LITERAL", "*", "WRITE"),
    ]
    assert allows(spec, "User:a", "TOPIC", "p.x", "READ")
    assert allows(spec, "User:a", "TOPIC", "p.x", "DESCRIBE")  # READ implies DESCRIBE
    assert not allows(spec, "User:a", "TOPIC", "p.secret", "READ")  # DENY wins
    assert not allows(spec, "User:a", "TOPIC", "q.x", "READ")
    assert allows(spec, "User:a", "TOPIC", "anything", "WRITE")  # literal * is every name
    assert not allows(spec, "User:b", "TOPIC", "p.x", "READ")
    assert not allows(spec, "User:a", "GROUP", "p.x", "READ")


def test_the_matrix_shows_r_and_w() -> None:
    matrix = topic_matrix(SPEC, TOPICS, [user(Agency.TAX), ROUTER])
    assert matrix[TOPICS.outbox(Agency.TAX)] == {user(Agency.TAX): "RW", ROUTER: "R"}
    assert matrix[TOPICS.inbox(Agency.TAX)] == {user(Agency.TAX): "R", ROUTER: "W"}
    assert matrix[TOPICS.outbox(Agency.POLICE)] == {user(Agency.TAX): "-", ROUTER: "R"}
    assert matrix[TOPICS.audit] == {user(Agency.TAX): "-", ROUTER: "RW"}
    assert matrix[TOPICS.dlq] == {user(Agency.TAX): "-", ROUTER: "W"}


def test_managed_acls_are_those_of_the_prefix_and_the_bus_principals() -> None:
    assert is_managed(AclEntry("User:x", "TOPIC", "LITERAL", "bus389.outbox.tax", "READ"), PREFIX)
    assert is_managed(AclEntry("User:tax", "CLUSTER", "LITERAL", CLUSTER_RESOURCE, "ALTER"), PREFIX)
    assert not is_managed(AclEntry("User:ops", "CLUSTER", "LITERAL", CLUSTER_RESOURCE, "ALTER"), PREFIX)
    assert not is_managed(AclEntry("User:tax", "TOPIC", "LITERAL", "other.outbox.tax", "READ"), PREFIX)
    assert not is_managed(AclEntry("User:tax", "TOPIC", "LITERAL", "bus389x.outbox.tax", "READ"), PREFIX)


def test_a_router_outside_its_prefix_is_warned_about() -> None:
    settings = Settings(topic_prefix="t_1", router=RouterSettings())
    warnings = identity_warnings(settings)
    assert len(warnings) == 2 and all("t_1.router" in w for w in warnings)
    inside = Settings(
        topic_prefix="t_1", router=RouterSettings(group_id="t_1.router", transactional_id="t_1.router")
    )
    assert identity_warnings(inside) == []


def test_every_principal_reads_the_key_registry_and_none_writes_it() -> None:
    """Only the admin (a super user, named by no ACL) may write ``<p>.keys``: a key is trusted because
    the admin registered it, so no agency or router can slip in a key of its own."""
    for who in [*(user(a) for a in Agency), ROUTER]:
        assert allows(SPEC, who, "TOPIC", TOPICS.keys, "READ")
        assert not allows(SPEC, who, "TOPIC", TOPICS.keys, "WRITE")
    assert topic_matrix(SPEC, TOPICS, [user(Agency.TAX), ROUTER])[TOPICS.keys] == {
        user(Agency.TAX): "R",
        ROUTER: "R",
    }
