"""``bus389 security``: apply and show the ACLs of the bus, and issue an agency's credentials."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bus389.cli._context import pass_settings
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.security.acl import AclEntry

__all__ = ["security"]


@click.group("security")
def security() -> None:
    """Per-agency identity and least privilege on a secure cluster (SASL_SSL, SCRAM-SHA-512, ACLs).

    Each agency may write only its own outbox and read only its own inbox; the router reads every
    outbox and writes every inbox, the DLQ and the audit log; the admin (a super user) manages topics,
    ACLs and credentials. apply and issue run as the admin: pass the admin's config file, written by
    `bus389 kafka up --secure` to <data_dir>/security/admin.env.

    \b
    Example:
      bus389 kafka up --secure
      export BUS389_CONFIG=~/.local/state/bus389/kafka/security/admin.env
      bus389 topics apply && bus389 security apply
      bus389 security issue tax --out ~/.config/bus389/tax.env
      export BUS389_CONFIG=~/.config/bus389/tax.env
      bus389 publish tax_discrepancy --as tax --file examples/tax_discrepancy.jsonl
    """


@security.command("apply")
@click.option("--dry-run", is_flag=True, help="Show what would be created and deleted; change nothing.")
@pass_settings
def apply(settings: Settings, dry_run: bool) -> None:
    """Make the cluster's ACLs under the topic prefix exactly the spec derived from the agency list.

    Creates the missing ACLs and deletes stale bus389 ACLs of this prefix (resources named
    <prefix>.*, and the bus principals' cluster ACLs); other ACLs are left alone. Idempotent.
    Runs as the admin; exits 3 when the cluster refuses.

    \b
    Example:
      bus389 --config ~/.local/state/bus389/kafka/security/admin.env security apply
      bus389 --config admin.env security apply --dry-run
    """
    from bus389.security.admin import apply_acls

    report = apply_acls(settings, dry_run=dry_run)
    verb = "would create" if dry_run else "created"
    gone = "would delete" if dry_run else "deleted"
    for entry in report.created:
        click.echo(f"{verb}: {_line(entry)}")
    for entry in report.deleted:
        click.echo(f"{gone}: {_line(entry)}")
    click.echo(
        f"ACLs under {settings.topic_prefix}: {len(report.created)} {verb}, {len(report.deleted)} {gone}, "
        f"{len(report.kept)} already in place"
    )
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


def _line(entry: AclEntry) -> str:
    pattern = "*" if entry.pattern_type == "PREFIXED" else ""
    return (
        f"{entry.permission} {entry.principal} {entry.operation} {entry.resource_type} {entry.name}{pattern}"
    )


@security.command("show")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "yaml"]),
    default="table",
    show_default=True,
    help="table: the topic matrix and the group/transactional-id grants; yaml: the spec as in deploy/.",
)
@pass_settings
def show(settings: Settings, fmt: str) -> None:
    """Print the ACL spec for the topic prefix: who may read (R) and write (W) each topic, and who may
    publish which event type inside its own outbox (the routing policy's rights).

    Derived from the agency list, without a broker; `--format yaml` prints the spec file
    (deploy/security/acl-spec.yaml is this output for the prefix bus389).

    \b
    Example:
      bus389 security show
      BUS389_TOPIC_PREFIX=bus389 bus389 security show --format yaml > deploy/security/acl-spec.yaml
    """
    from bus389.security.acl import derive_acl_spec, render_spec_yaml

    spec = derive_acl_spec(settings.topic_prefix)
    if fmt == "yaml":
        click.echo(render_spec_yaml(settings.topic_prefix, spec), nl=False)
        return
    click.echo(_render_matrix(settings, spec))
    click.echo(_render_rights(settings))


def _render_rights(settings: Settings) -> str:
    """Inside its own outbox, what each agency may say: the routing policy's rights (the router enforces)."""
    from bus389.routing.policy import load_policy

    policy = load_policy(settings.router.policy_path)
    lines = ["", f"publishing rights (the router dead-letters the rest; {policy.source}):"]
    for right in policy.rights:
        who = ", ".join(a.value for a in right.publishers) or "the router only"
        lines.append(f"  {right.event_type}: {who} ({right.plan_section})")
    return "\n".join(lines)


def _render_matrix(settings: Settings, entries: list[AclEntry]) -> str:
    from bus389.security.acl import SUPER_USERS, client_principals, principal, topic_matrix

    users = client_principals()
    who = [principal(u) for u in users]
    matrix = topic_matrix(entries, settings.topics, who)
    head = len(settings.topic_prefix) + 1
    first = max(len(t) - head for t in matrix)
    widths = [max(len(u), 2) for u in users]
    lines = [
        f"ACLs under prefix {settings.topic_prefix} (R = READ, W = WRITE; "
        f"{', '.join(SUPER_USERS)} are super users)",
        "topic".ljust(first) + "  " + "  ".join(u.ljust(w) for u, w in zip(users, widths, strict=True)),
    ]
    for topic, row in matrix.items():
        cells = "  ".join(row[p].ljust(w) for p, w in zip(who, widths, strict=True))
        lines.append(topic[head:].ljust(first) + "  " + cells.rstrip())
    lines.append("")
    lines.append("groups (READ) and transactional ids (WRITE), by prefix; cluster:")
    for user, p in zip(users, who, strict=True):
        groups = sorted({e.name for e in entries if e.principal == p and e.resource_type == "GROUP"})
        txns = sorted({e.name for e in entries if e.principal == p and e.resource_type == "TRANSACTIONAL_ID"})
        cluster = sorted({e.operation for e in entries if e.principal == p and e.resource_type == "CLUSTER"})
        lines.append(
            f"  {user}: groups {', '.join(g + '*' for g in groups)}; "
            f"transactional ids {', '.join(t + '*' for t in txns)}; cluster {', '.join(cluster)}"
        )
    return "\n".join(lines)


@security.command("issue")
@click.argument("principal_name", metavar="AGENCY")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the agency's client config file (mode 0600; replaced if it exists); refused "
    "inside a git work tree unless git ignores it [e.g. ~/.config/bus389/AGENCY.env].",
)
@pass_settings
def issue(settings: Settings, principal_name: str, out: Path) -> None:
    """Create or rotate the SCRAM credentials and the signing key of AGENCY (an agency code or `router`).

    The file holds the bootstrap, topic prefix, SASL_SSL, SCRAM-SHA-512, the username, a new random
    password and the CA certificate path: give it to the agency, who runs every command with
    `--config FILE`. Issuing again rotates the password (the old one stops working for new
    connections). Beside it, FILE.signing.pem (0600) holds a new Ed25519 signing key, registered in
    <prefix>.keys (the older key stays valid for what it signed before now), and the config names it.
    Runs as the admin; neither the password nor the private key is ever printed. A path inside a git
    work tree that git does not ignore is refused: credentials belong outside any repository.

    \b
    Example:
      bus389 --config admin.env security issue tax --out /secure/tax.env
      bus389 --config admin.env security issue router --out /secure/router.env
      bus389 --config /secure/tax.env tax publish-alerts sellers.xlsx
    """
    from bus389.security.credentials import _check_admin_settings, issue_credentials
    from bus389.security.secret_paths import check_secret_path
    from bus389.signing.registry_topic import signing_key_path

    _check_owner(principal_name, "credentials")
    check_secret_path(out.expanduser())  # before anything else: credentials never land in a repository
    _check_admin_settings(settings)
    # the signing key is written beside the credentials, before them: their folder exists first (0700)
    out.expanduser().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = _issue_key(settings, principal_name, signing_key_path(out.expanduser()))
    issued = issue_credentials(settings, principal_name, out, signing_key_file=key)
    what = "rotated" if issued.rotated else "created"
    click.echo(f"{what} the SCRAM-SHA-512 credentials of User:{issued.username} on {issued.bootstrap}")
    click.echo(f"  client config (0600): {issued.path}")
    click.echo(f"  use: bus389 --config {issued.path} <command>")


def _check_owner(owner: str, what: str = "a signing key") -> None:
    from bus389.errors import ConfigError
    from bus389.security.acl import client_principals

    allowed = client_principals()
    if owner not in allowed:
        raise ConfigError(f"cannot issue {what} for {owner!r}: choose one of {', '.join(allowed)}")


def _issue_key(settings: Settings, owner: str, path: Path) -> Path:
    from bus389.signing.registry_topic import issue_signing_key

    key = issue_signing_key(settings, owner, path)
    what = f"rotated (replaces {', '.join(key.rotated)})" if key.rotated else "created"
    click.echo(f"signing key {key.kid} of {owner} {what}; registered in {settings.topics.keys}")
    click.echo(f"  private key (0600): {key.path}")
    return key.path


@security.group("keys")
def keys() -> None:
    """The signing keys: Ed25519 public keys with validity periods, on <prefix>.keys (admin writes).

    \b
    Example:
      bus389 --config admin.env security keys issue tax --key-file /secure/tax.signing.pem
      bus389 --config admin.env security keys revoke 3f1c...   (a stolen key)
      bus389 security keys export --out keys.json             (for offline checks)
    """


@keys.command("issue")
@click.argument("owner", metavar="AGENCY")
@click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the private key (0600; replaced if it exists: a rotation).",
)
@pass_settings
def keys_issue(settings: Settings, owner: str, key_file: Path) -> None:
    """Create or rotate AGENCY's (or `router`'s) signing key without touching its Kafka credentials.

    Older keys of AGENCY stop signing now but keep verifying what they signed before. Give the file to
    the agency: BUS389_SIGNING__KEY_FILE=FILE makes every publish sign.
    """
    _check_owner(owner)
    _issue_key(settings, owner, key_file)


@keys.command("revoke")
@click.argument("kid")
@pass_settings
def keys_revoke(settings: Settings, kid: str) -> None:
    """Revoke key KID from now on: what it signs from now on is refused (a stolen or lost key)."""
    from datetime import UTC, datetime

    from bus389.signing.registry_topic import read_registry, write_entries

    registry = read_registry(settings)
    entry = registry.revoke(kid, datetime.now(UTC))
    write_entries(settings, [entry])
    click.echo(f"key {kid} of {entry.owner} revoked at {entry.to_json()['revoked_at']}")


@keys.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The registry file to write (public keys only: not secret).",
)
@pass_settings
def keys_export(settings: Settings, out: Path) -> None:
    """Write the key registry to a file, for checks with no broker (BUS389_SIGNING__REGISTRY_FILE)."""
    from bus389.atomic_files import write_file
    from bus389.signing.registry_topic import read_registry

    registry = read_registry(settings)
    out = out.expanduser()
    # An exclusive temporary file in the target's folder, renamed into place: never through a planted link.
    write_file(out, registry.to_text().encode("utf-8"))
    click.echo(f"{len(registry)} key(s) of {settings.topics.keys} written to {out}")


@keys.command("list")
@pass_settings
def keys_list(settings: Settings) -> None:
    """Show every registered key: id, owner, validity."""
    from bus389.signing.registry_topic import load_registry

    for entry in load_registry(settings).entries():
        data = entry.to_json()
        until = f"revoked {data['revoked_at']}" if data["revoked_at"] else (data["not_after"] or "now")
        click.echo(f"{entry.kid}  {entry.owner:<20} {data['not_before']} → {until}")
