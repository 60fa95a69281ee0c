"""The ACL spec of the bus: which principal may do what on which resource, derived from the agency list.

One source of truth: :func:`derive_acl_spec` computes the spec from :class:`~bus389.agencies.Agency`
and the topic prefix; ``deploy/security/acl-spec.yaml`` is that spec rendered for the default prefix
(``bus389 security show --format yaml``) and a unit test proves the two are equal.

Least privilege, per principal (``<p>`` is the topic prefix):

- ``User:<agency>``: WRITE, DESCRIBE and READ on its own outbox (READ because the ICT service and the
  tax producer scan their own outbox for what they already published; every agency gets it, so that
  any agency's producer can do the same); IDEMPOTENT_WRITE on the cluster; READ and DESCRIBE on its own
  inbox; READ on consumer groups and WRITE, DESCRIBE on transactional ids prefixed ``<p>.<agency>.``.
  READ and DESCRIBE on the key registry ``<p>.keys`` (to verify signatures). Nothing on other
  agencies' topics, the DLQ or the audit log.
- ``User:router``: READ, DESCRIBE on every outbox; WRITE, DESCRIBE on every inbox, the DLQ and the
  audit log; READ on the audit log (its reply index) and the key registry; READ on groups and
  WRITE, DESCRIBE on transactional ids prefixed ``<p>.router``; IDEMPOTENT_WRITE on the cluster.
- ``User:admin`` and ``User:broker`` are super users (``super.users`` of the brokers): the admin
  creates topics, manages ACLs, credentials and the key registry (the only writer of ``<p>.keys``),
  replays dead letters; no ACL names them.

Every ACL is an ALLOW: with ``allow.everyone.if.no.acl.found=false`` whatever is not allowed is denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from bus389.agencies import ROUTER, Agency, Topics
from bus389.errors import ConfigError

__all__ = [
    "ADMIN_USER",
    "BROKER_USER",
    "CLUSTER_RESOURCE",
    "ROUTER_USER",
    "SUPER_USERS",
    "AclEntry",
    "Operation",
    "PatternType",
    "Permission",
    "ResourceKind",
    "allows",
    "client_principals",
    "derive_acl_spec",
    "load_spec_file",
    "principal",
    "render_spec_yaml",
    "topic_matrix",
]

ADMIN_USER = "admin"
BROKER_USER = "broker"
ROUTER_USER = ROUTER
SUPER_USERS: tuple[str, ...] = (f"User:{ADMIN_USER}", f"User:{BROKER_USER}")
CLUSTER_RESOURCE = "kafka-cluster"
"""The name of the one CLUSTER resource (as Kafka names it)."""

ResourceKind = Literal["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
PatternType = Literal["LITERAL", "PREFIXED"]
Operation = Literal["READ", "WRITE", "DESCRIBE", "IDEMPOTENT_WRITE"]
Permission = Literal["ALLOW", "DENY"]


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ACL: ``principal`` may (``permission``) do ``operation`` on the resource.

    Names follow kafka-python's enums (``ResourceType``, ``ACLResourcePatternType``, ``ACLOperation``,
    ``ACLPermissionType``); the host is always ``*``.
    """

    principal: str
    resource_type: ResourceKind
    pattern_type: PatternType
    name: str
    operation: Operation
    permission: Permission = "ALLOW"

    def matches(self, resource_type: str, name: str) -> bool:
        """Does this ACL's resource pattern cover the resource ``name`` (Kafka's matching rules)?"""
        if self.resource_type != resource_type:
            return False
        if self.pattern_type == "PREFIXED":
            return name.startswith(self.name)
        return self.name in ("*", name)


def principal(user: str) -> str:
    """``User:<user>``, the principal Kafka gives a client authenticated by SCRAM as ``user``."""
    return f"User:{user}"


def client_principals(agencies: Iterable[Agency] = Agency) -> list[str]:
    """The SCRAM users ``bus389 security issue`` makes credentials for: every agency and the router."""
    return [*(a.value for a in agencies), ROUTER_USER]


def _agency_acls(topics: Topics, agency: Agency) -> list[AclEntry]:
    who = principal(agency.value)
    outbox = topics.outbox(agency)
    inbox = topics.inbox(agency)
    own = f"{topics.prefix}.{agency.value}."
    return [
        AclEntry(who, "TOPIC", "LITERAL", outbox, "WRITE"),
        AclEntry(who, "TOPIC", "LITERAL", outbox, "DESCRIBE"),
        AclEntry(who, "TOPIC", "LITERAL", outbox, "READ"),
        AclEntry(who, "CLUSTER", "LITERAL", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"),
        AclEntry(who, "TOPIC", "LITERAL", inbox, "READ"),
        AclEntry(who, "TOPIC", "LITERAL", inbox, "DESCRIBE"),
        AclEntry(who, "TOPIC", "LITERAL", topics.keys, "READ"),
        AclEntry(who, "TOPIC", "LITERAL", topics.keys, "DESCRIBE"),
        AclEntry(who, "GROUP", "PREFIXED", own, "READ"),
        AclEntry(who, "TRANSACTIONAL_ID", "PREFIXED", own, "WRITE"),
        AclEntry(who, "TRANSACTIONAL_ID", "PREFIXED", own, "DESCRIBE"),
    ]


def _router_acls(topics: Topics, agencies: Sequence[Agency]) -> list[AclEntry]:
    who = principal(ROUTER_USER)
    acls: list[AclEntry] = []
    for agency in agencies:
        outbox = topics.outbox(agency)
        acls += [
            AclEntry(who, "TOPIC", "LITERAL", outbox, "READ"),
            AclEntry(who, "TOPIC", "LITERAL", outbox, "DESCRIBE"),
        ]
    for topic in [*(topics.inbox(a) for a in agencies), topics.dlq, topics.audit]:
        acls += [
            AclEntry(who, "TOPIC", "LITERAL", topic, "WRITE"),
            AclEntry(who, "TOPIC", "LITERAL", topic, "DESCRIBE"),
        ]
    own = f"{topics.prefix}.{ROUTER_USER}"
    acls += [
        AclEntry(who, "TOPIC", "LITERAL", topics.audit, "READ"),
        AclEntry(who, "TOPIC", "LITERAL", topics.keys, "READ"),
        AclEntry(who, "TOPIC", "LITERAL", topics.keys, "DESCRIBE"),
        AclEntry(who, "CLUSTER", "LITERAL", CLUSTER_RESOURCE, "IDEMPOTENT_WRITE"),
        AclEntry(who, "GROUP", "PREFIXED", own, "READ"),
        AclEntry(who, "TRANSACTIONAL_ID", "PREFIXED", own, "WRITE"),
        AclEntry(who, "TRANSACTIONAL_ID", "PREFIXED", own, "DESCRIBE"),
    ]
    return acls


def derive_acl_spec(prefix: str, agencies: Iterable[Agency] = Agency) -> list[AclEntry]:
    """Every ACL of the bus under topic prefix ``prefix``: each agency's, then the router's (pure)."""
    members = list(agencies)
    topics = Topics(prefix)
    acls: list[AclEntry] = []
    for agency in members:
        acls += _agency_acls(topics, agency)
    acls += _router_acls(topics, members)
    return acls


def allows(spec: Iterable[AclEntry], who: str, resource_type: str, name: str, operation: str) -> bool:
    """Would the spec let ``who`` do ``operation`` on the resource (as the StandardAuthorizer decides)?

    A DENY that matches wins; otherwise an ALLOW of the operation must match. As in Kafka, READ,
    WRITE (and DELETE, ALTER) imply DESCRIBE.
    """
    implied = {operation}
    if operation == "DESCRIBE":
        implied |= {"READ", "WRITE"}
    matching = [a for a in spec if a.principal == who and a.matches(resource_type, name)]
    if any(a.permission == "DENY" and a.operation == operation for a in matching):
        return False
    return any(a.permission == "ALLOW" and a.operation in implied for a in matching)


def topic_matrix(spec: Sequence[AclEntry], topics: Topics, who: Sequence[str]) -> dict[str, dict[str, str]]:
    """For each topic of the bus and each principal: ``R``, ``W``, ``RW`` or ``-`` (READ / WRITE)."""
    matrix: dict[str, dict[str, str]] = {}
    for topic in topics.all():
        row: dict[str, str] = {}
        for p in who:
            cell = ("R" if allows(spec, p, "TOPIC", topic, "READ") else "") + (
                "W" if allows(spec, p, "TOPIC", topic, "WRITE") else ""
            )
            row[p] = cell or "-"
        matrix[topic] = row
    return matrix


# --- the spec as data (deploy/security/acl-spec.yaml) -----------------------------------------------


class _AclRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    principal: str
    resource_type: ResourceKind
    pattern_type: PatternType
    name: str
    operation: Operation
    permission: Permission = "ALLOW"


class _SpecDocument(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1]
    topic_prefix: str
    super_users: list[str]
    acls: list[_AclRow]


_HEADER = """\
The ACL spec of bus389 for the topic prefix `{prefix}`: generated from the agency list by
`bus389 security show --format yaml` (bus389/security/acl.py); tests/unit/test_security_acl.py
proves this file equals what the code derives. Do not edit by hand: change the code, regenerate.
Applied by `bus389 --config ADMIN_FILE security apply`; super users need no ACL (broker setting).
"""


def render_spec_yaml(prefix: str, spec: Sequence[AclEntry]) -> str:
    """The spec as YAML: one flow mapping per ACL, in derivation order (stable, diffable)."""
    lines = [f"# {line}".rstrip() for line in _HEADER.format(prefix=prefix).splitlines()]
    lines += [
        "version: 1",
        f"topic_prefix: {prefix}",
        "super_users: [" + ", ".join(SUPER_USERS) + "]",
        "acls:",
    ]
    for entry in spec:
        fields = ", ".join(f"{key}: {value}" for key, value in asdict(entry).items())
        lines.append(f"  - {{{fields}}}")
    return "\n".join(lines) + "\n"


def load_spec_file(path: Path) -> tuple[str, list[AclEntry]]:
    """The prefix and ACLs of a spec file, validated (ConfigError naming the problem)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the ACL spec {path}: {exc}") from exc
    try:
        document = _SpecDocument.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid ACL spec {path}: {exc}") from exc
    if tuple(document.super_users) != SUPER_USERS:
        raise ConfigError(f"{path}: super_users must be {list(SUPER_USERS)}")
    return document.topic_prefix, [AclEntry(**row.model_dump()) for row in document.acls]
