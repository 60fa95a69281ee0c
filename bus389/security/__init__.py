"""Per-agency identity and least privilege: the ACL spec, its application, SCRAM credentials, local TLS.

:mod:`.acl` derives the ACL spec from the agency list (pure); :mod:`.admin` applies it to a cluster;
:mod:`.credentials` issues SCRAM credentials and writes an agency's ``--config`` file;
:mod:`.localbroker` and :mod:`.tls` make the local Kafka secure (``bus389 kafka up --secure``).
"""

from bus389.security.acl import (
    ADMIN_USER,
    BROKER_USER,
    ROUTER_USER,
    SUPER_USERS,
    AclEntry,
    allows,
    client_principals,
    derive_acl_spec,
    load_spec_file,
    render_spec_yaml,
    topic_matrix,
)

__all__ = [
    "ADMIN_USER",
    "BROKER_USER",
    "ROUTER_USER",
    "SUPER_USERS",
    "AclEntry",
    "allows",
    "client_principals",
    "derive_acl_spec",
    "load_spec_file",
    "render_spec_yaml",
    "topic_matrix",
]
