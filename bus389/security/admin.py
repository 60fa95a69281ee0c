"""Applying the ACL spec to a cluster, idempotently: create what is missing, delete stale bus389 ACLs.

Run as the admin (a super user). An ACL is *managed* by bus389 under prefix ``<p>`` when its resource
name starts with ``<p>.`` (topics, groups, transactional ids), or when it is a CLUSTER ACL of one of
the bus's principals; a managed ACL that the spec does not contain is stale and deleted. ACLs of other
prefixes and of other principals are left alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from bus389.errors import BrokerError
from bus389.kafka import kafka_errors, make_admin
from bus389.security.acl import (
    CLUSTER_RESOURCE,
    ROUTER_USER,
    AclEntry,
    Operation,
    PatternType,
    Permission,
    ResourceKind,
    client_principals,
    derive_acl_spec,
    principal,
)
from bus389.settings import Settings

__all__ = ["AclReport", "apply_acls", "identity_warnings", "is_managed", "read_acls"]

_PROPAGATION_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AclReport:
    """What :func:`apply_acls` did (or, with ``dry_run``, would do)."""

    created: list[AclEntry] = field(default_factory=list)
    deleted: list[AclEntry] = field(default_factory=list)
    kept: list[AclEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def is_managed(entry: AclEntry, prefix: str) -> bool:
    """Is ``entry`` one that bus389 owns under ``prefix`` (and may delete when the spec drops it)?"""
    if entry.resource_type == "CLUSTER":
        return entry.name == CLUSTER_RESOURCE and entry.principal in {
            principal(u) for u in client_principals()
        }
    return entry.name.startswith(prefix + ".")


def identity_warnings(settings: Settings) -> list[str]:
    """Settings that put the router outside the identity its ACLs allow (it would be refused)."""
    own = f"{settings.topic_prefix}.{ROUTER_USER}"
    warnings = []
    for name, value in (
        ("BUS389_ROUTER__GROUP_ID", settings.router.group_id),
        ("BUS389_ROUTER__TRANSACTIONAL_ID", settings.router.transactional_id),
    ):
        if not value.startswith(own):
            warnings.append(
                f"{name}={value} is outside the router's ACL prefix {own}: the router must run with "
                f"{name}={own} (its config from `bus389 security issue router` sets it)"
            )
    return warnings


def _to_kafka(entry: AclEntry) -> Any:
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    return ACL(
        principal=entry.principal,
        host="*",
        operation=ACLOperation[entry.operation],
        permission_type=ACLPermissionType[entry.permission],
        resource_pattern=ResourcePattern(
            ResourceType[entry.resource_type], entry.name, ACLResourcePatternType[entry.pattern_type]
        ),
    )


def _from_kafka(acl: Any) -> AclEntry:
    pattern = acl.resource_pattern
    return AclEntry(
        principal=str(acl.principal),
        resource_type=cast(ResourceKind, pattern.resource_type.name),
        pattern_type=cast(PatternType, pattern.pattern_type.name),
        name=str(pattern.resource_name),
        operation=cast(Operation, acl.operation.name),
        permission=cast(Permission, acl.permission_type.name),
    )


def read_acls(admin: Any) -> list[AclEntry]:
    """Every ACL on the cluster (host ``*`` or not), as :class:`AclEntry`."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    every = ACLFilter(
        principal=None,
        host=None,
        operation=ACLOperation.ANY,
        permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )
    try:
        with kafka_errors():
            acls, _error = admin.describe_acls(every)
    except BrokerError as exc:
        if type(exc.__cause__).__name__ == "SecurityDisabledError":
            raise BrokerError(
                f"{exc}: ACLs need a secure cluster (`bus389 kafka up --secure`) and the admin's --config"
            ) from exc.__cause__
        raise
    return sorted(_from_kafka(a) for a in acls)


def _create(admin: Any, entries: list[AclEntry]) -> None:
    with kafka_errors():
        result = admin.create_acls([_to_kafka(e) for e in entries])
    failed = result.get("failed", [])
    if failed:
        names = sorted({getattr(f, "__name__", str(f)) for f in failed})
        raise BrokerError(f"the cluster refused {len(failed)} of {len(entries)} ACLs: {', '.join(names)}")


def _delete(admin: Any, entries: list[AclEntry]) -> None:
    import kafka.errors as kafka_errors_module
    from kafka.admin import ACLFilter

    filters = []
    for entry in entries:
        acl = _to_kafka(entry)
        filters.append(
            ACLFilter(acl.principal, "*", acl.operation, acl.permission_type, acl.resource_pattern)
        )
    with kafka_errors():
        results = admin.delete_acls(filters)
    problems = [err.__name__ for _f, _m, err in results if err is not kafka_errors_module.NoError]
    if problems:
        raise BrokerError(f"the cluster refused to delete stale ACLs: {', '.join(sorted(set(problems)))}")


def _await(admin: Any, want: Iterable[AclEntry], gone: Iterable[AclEntry]) -> None:
    """Wait until the broker answering us shows the new ACLs (KRaft applies them asynchronously)."""
    want_set, gone_set = set(want), set(gone)
    deadline = time.monotonic() + _PROPAGATION_TIMEOUT_S
    while True:
        now = set(read_acls(admin))
        if want_set <= now and not (gone_set & now):
            return
        if time.monotonic() >= deadline:
            raise BrokerError("the ACLs were accepted but did not show up within 30 s", retriable=True)
        time.sleep(0.2)


def apply_acls(settings: Settings, *, dry_run: bool = False) -> AclReport:
    """Make the cluster's bus389 ACLs under ``settings.topic_prefix`` exactly the derived spec.

    Idempotent: a second run creates and deletes nothing. Needs a super user's settings (the admin's
    ``--config``); raises :class:`BrokerError` when the cluster refuses (not a super user, no
    authorizer configured).
    """
    prefix = settings.topic_prefix
    desired = derive_acl_spec(prefix)
    admin = make_admin(settings)
    try:
        current = read_acls(admin)
        current_set = set(current)
        desired_set = set(desired)
        missing = [e for e in desired if e not in current_set]
        stale = [e for e in current if is_managed(e, prefix) and e not in desired_set]
        kept = [e for e in desired if e in current_set]
        if not dry_run:
            if missing:
                _create(admin, missing)
            if stale:
                _delete(admin, stale)
            _await(admin, missing, stale)
    finally:
        admin.close()
    return AclReport(created=missing, deleted=stale, kept=kept, warnings=identity_warnings(settings))
