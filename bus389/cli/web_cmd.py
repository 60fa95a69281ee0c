"""``bus389 web``: the console's users and API tokens; ``bus389 serve web`` runs the console."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bus389.cli._context import pass_settings
from bus389.cli._service import service_options
from bus389.errors import InputError
from bus389.settings import Settings

if TYPE_CHECKING:
    from bus389.web.store import WebStore
    from bus389.web.users import UserDirectory

__all__ = ["serve_web", "web"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group("web")
def web() -> None:
    """The web console's users and the agencies' API tokens (stored in BUS389_WEB__USERS_DB).

    \b
    Example:
      bus389 web user add thu.nguyen --agency tax --roles clerk --password-out thu.pw
      bus389 web token add tax --name ke-khai --scopes publish,read --out tax.token
    """


@web.group("user")
def user() -> None:
    """Add a user, change a password, disable a user."""


def _read_password(password_file: Path | None, prompt: bool) -> str | None:
    if password_file is not None:
        mode = password_file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise InputError(
                f"{password_file}: a password file must be readable by its owner only (chmod 600)"
            )
        return password_file.read_text(encoding="utf-8").strip("\n")
    if prompt:
        return str(click.prompt("Mật khẩu", hide_input=True, confirmation_prompt=True))
    return None


def _write_secret(path: Path, text: str) -> None:
    from bus389.config_file import write_private_file

    write_private_file(path, text + "\n")


_PASSWORD_OPTIONS = [
    click.option(
        "--password-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        default=None,
        help="Read the password from this 0600 file.",
    ),
    click.option("--prompt", is_flag=True, help="Ask for the password (hidden, typed twice)."),
    click.option(
        "--password-out",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="Without --password-file or --prompt: generate one and write it to this file (0600) "
        "[default: <users db folder>/<name>.password].",
    ),
]


def _password_options(f: F) -> F:
    for option in reversed(_PASSWORD_OPTIONS):
        f = option(f)
    return f


def _password(
    settings: Settings, name: str, password_file: Path | None, prompt: bool, password_out: Path | None
) -> tuple[str, Path | None]:
    from bus389.web.users import generate_password

    given = _read_password(password_file, prompt)
    if given is not None:
        return given, None
    target = password_out or settings.web.users_db.expanduser().parent / f"{name}.password"
    return generate_password(), target


def _directory(settings: Settings) -> tuple[WebStore, UserDirectory]:
    from bus389.web.store import WebStore
    from bus389.web.users import UserDirectory

    store = WebStore(settings.web.users_db.expanduser())
    return store, UserDirectory(
        store, max_failed=settings.web.max_failed_logins, lockout_s=settings.web.lockout_s
    )


@user.command("add")
@click.argument("name")
@click.option("--agency", required=True, metavar="AGENCY", help="The user's agency (one only).")
@click.option(
    "--roles", required=True, metavar="ROLES", help="Comma-separated: clerk, operator, viewer, admin."
)
@_password_options
@pass_settings
def user_add(
    settings: Settings,
    name: str,
    agency: str,
    roles: str,
    password_file: Path | None,
    prompt: bool,
    password_out: Path | None,
) -> None:
    """Add user NAME of AGENCY with ROLES; the password is read, asked, or generated into a 0600 file.

    \b
    Example:
      bus389 web user add thu.nguyen --agency tax --roles clerk
      bus389 web user add ict.op --agency ict --roles operator,viewer --password-file op.pw
    """
    from bus389.agencies import Agency
    from bus389.web.users import parse_roles

    code = Agency.parse(agency)
    wanted = parse_roles(roles)
    password, target = _password(settings, name, password_file, prompt, password_out)
    store, users = _directory(settings)
    with store:
        users.add(name, code, wanted, password)
    if target is not None:
        _write_secret(target, password)
        click.echo(
            f"added {name} ({code.value}: {', '.join(r.value for r in wanted)}); password in {target} (0600)"
        )
    else:
        click.echo(f"added {name} ({code.value}: {', '.join(r.value for r in wanted)})")


@user.command("passwd")
@click.argument("name")
@_password_options
@pass_settings
def user_passwd(
    settings: Settings, name: str, password_file: Path | None, prompt: bool, password_out: Path | None
) -> None:
    """Set NAME's password (it also ends NAME's sessions and lifts a lock-out).

    \b
    Example:
      bus389 web user passwd thu.nguyen --prompt
    """
    password, target = _password(settings, name, password_file, prompt, password_out)
    store, users = _directory(settings)
    with store:
        users.set_password(name, password)
    if target is not None:
        _write_secret(target, password)
        click.echo(f"new password of {name} in {target} (0600)")
    else:
        click.echo(f"changed the password of {name}")


@user.command("disable")
@click.argument("name")
@pass_settings
def user_disable(settings: Settings, name: str) -> None:
    """Disable NAME: sign-in refused, open sessions end at their next request.

    \b
    Example:
      bus389 web user disable thu.nguyen
    """
    store, users = _directory(settings)
    with store:
        users.set_disabled(name)
    click.echo(f"disabled {name}")


@web.group("token")
def token() -> None:
    """API tokens of an agency's systems (stored hashed)."""


@token.command("add")
@click.argument("agency")
@click.option("--name", required=True, help="What the token is for (shown in lists and logs).")
@click.option("--scopes", default="publish,read", show_default=True, help="publish, read or both.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Write the token to this file (0600); it is shown nowhere else.",
)
@pass_settings
def token_add(settings: Settings, agency: str, name: str, scopes: str, out: Path) -> None:
    """Issue an API token for AGENCY's systems.

    \b
    Example:
      bus389 web token add police --name ho-so-vu-an --scopes read --out police.token
    """
    from bus389.agencies import Agency
    from bus389.web.store import WebStore
    from bus389.web.tokens import TokenRegistry, parse_scopes

    code = Agency.parse(agency)
    wanted = parse_scopes(scopes)
    with WebStore(settings.web.users_db.expanduser()) as store:
        issued, text = TokenRegistry(store).issue(code, name, wanted)
    _write_secret(out, text)
    click.echo(
        f"token {issued.token_id} of {code.value} ({', '.join(s.value for s in wanted)}) in {out} (0600)"
    )


@token.command("revoke")
@click.argument("token_id")
@pass_settings
def token_revoke(settings: Settings, token_id: str) -> None:
    """Revoke token TOKEN_ID: refused from the next request on.

    \b
    Example:
      bus389 web token revoke 3fa2c1d9e0b4
    """
    from bus389.web.store import WebStore
    from bus389.web.tokens import TokenRegistry

    with WebStore(settings.web.users_db.expanduser()) as store:
        TokenRegistry(store).revoke(token_id)
    click.echo(f"revoked token {token_id}")


@token.command("list")
@pass_settings
def token_list(settings: Settings) -> None:
    """List the tokens (ids, agencies, scopes; never the secrets)."""
    from bus389.web.store import WebStore
    from bus389.web.tokens import TokenRegistry

    with WebStore(settings.web.users_db.expanduser()) as store:
        for t in TokenRegistry(store).all():
            state = "revoked" if t.revoked else "active"
            scopes = ",".join(s.value for s in t.scopes)
            click.echo(f"{t.token_id}  {t.agency.value:<20} {scopes:<13} {state}  {t.name}")


@click.command("web")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the console here (0: any free port) [default: BUS389_WEB__PORT, else 8389].",
)
@service_options("web")
@pass_settings
def serve_web(
    settings: Settings, port: int | None, metrics_port: int | None, max_idle_polls: int | None
) -> None:
    """Run the web console and the HTTP API until SIGTERM (metrics on their own port).

    Pages in Vietnamese for each agency's users (bus389 web user add), and /api/v1 for their systems
    (bus389 web token add); the OpenAPI document is /api/v1/openapi.json.

    \b
    Example:
      bus389 serve web
      BUS389_WEB__AGENCY_CONFIG_DIR=/secure/agencies bus389 serve web --port 8389
    """
    from bus389 import metrics
    from bus389.logs import configure_logging
    from bus389.web.server import serve_web as run

    del max_idle_polls  # the console has no poll loop; uvicorn stops on SIGTERM/SIGINT
    configure_logging(settings)
    bound = metrics.serve_metrics(settings, metrics.DEFAULT_PORTS["web"], "web", port=metrics_port)
    url = f"http://{settings.metrics.host}:{bound}/metrics"
    click.echo(f"web: metrics on {url}", err=True)
    try:
        run(
            settings,
            port=port,
            metrics_url=url,
            on_ready=lambda address: click.echo(f"web: console on {address}", err=True),
        )
    finally:
        metrics.stop_metrics(bound)
