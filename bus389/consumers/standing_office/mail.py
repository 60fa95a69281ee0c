"""Mailing a report: one message with a plain-text summary and the documents attached, over SMTP.

The connection is always encrypted and authenticated: STARTTLS with the server's certificate verified
(``settings.mail.ssl_cafile`` or the system's CAs), then AUTH with ``settings.mail.username`` and the
password (a :class:`~pydantic.SecretStr`: from the 0600 ``--config`` file, or from
``settings.mail.password_file``, which must be 0600 too). A server that offers no STARTTLS is refused
before anything is said; the password is never logged or printed.

All or nothing: every recipient must be accepted (``RCPT TO``) before the message is given (``DATA``);
one refusal resets the transaction (``RSET``) and nothing is sent to anyone. Addresses are checked
before the connection is opened: one that is not an address (or holds a line break, a comma or a
display name) is an :class:`~bus389.errors.InputError` naming it.
"""

from __future__ import annotations

import base64
import email.policy
import re
import smtplib
import ssl
import stat
from collections.abc import Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from pydantic import SecretStr

from bus389.consumers.standing_office.output import Output
from bus389.errors import ConfigError, InputError, MailError
from bus389.settings import MailSettings

__all__ = ["build_message", "check_address", "mail_password", "send_message"]

_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_LOCAL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}$")


def check_address(text: str) -> str:
    """``text`` as a bare address (``ten@co-quan.gov.vn``); InputError saying why it is not one."""
    raw = text.strip()
    shown = repr(raw[:80])
    if not raw or any(ord(ch) < 32 or ord(ch) == 127 for ch in raw) or "," in raw or "<" in raw:
        raise InputError(f"recipient {shown} is not an e-mail address (one bare address per --to)")
    local, at, domain = raw.rpartition("@")
    if not at or not _LOCAL.match(local) or local.startswith(".") or ".." in local:
        raise InputError(f"recipient {shown} is not an e-mail address (expected name@domain)")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InputError(f"recipient {shown}: {domain!r} is not a domain name") from None
    if not _DOMAIN.match(ascii_domain):
        raise InputError(f"recipient {shown}: {domain!r} is not a domain name")
    return f"{local}@{ascii_domain}"


def mail_password(settings: MailSettings) -> SecretStr:
    """The SMTP password: the setting, else the first line of ``password_file`` (which must be 0600)."""
    if settings.password is not None:
        return settings.password
    path = settings.password_file
    if path is None:
        raise ConfigError(
            "BUS389_MAIL__PASSWORD is not set: put it in the 0600 --config file, or name a 0600 file "
            "holding it in BUS389_MAIL__PASSWORD_FILE"
        )
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read BUS389_MAIL__PASSWORD_FILE {path}: {exc.__class__.__name__}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} holds the SMTP password but is readable by others (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}`"
        )
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ConfigError(f"BUS389_MAIL__PASSWORD_FILE {path} is empty")
    return SecretStr(lines[0].strip())


def build_message(
    *,
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[Output],
    now: datetime | None = None,
) -> EmailMessage:
    """The message: headers (RFC 2047 for Vietnamese), the plain-text body, the attachments."""
    from_address = check_address(sender)
    to = [check_address(r) for r in recipients]
    if not to:
        raise InputError("give at least one recipient (--to ADDRESS)")
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = Address(addr_spec=from_address)
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2])
    message.set_content(body, subtype="plain", charset="utf-8")
    for item in attachments:
        maintype, _, subtype = item.media_type.partition(";")[0].partition("/")
        message.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return message


def send_message(settings: MailSettings, message: EmailMessage) -> None:
    """Send ``message`` to its ``To`` addresses: STARTTLS, AUTH, every recipient accepted, or nothing."""
    if not settings.username:
        raise ConfigError("BUS389_MAIL__USERNAME is not set: the report is sent only with authentication")
    password = mail_password(settings)
    recipients = [a.strip() for a in str(message["To"]).split(",") if a.strip()]
    sender = str(message["From"])
    where = f"{settings.host}:{settings.port}"
    try:
        context = ssl.create_default_context(cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read BUS389_MAIL__SSL_CAFILE {settings.ssl_cafile}: {exc}") from None
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise MailError(
                    f"the SMTP server {where} offers no STARTTLS: refusing to send the report in clear"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            _login(smtp, settings.username, password)
            code, reply = smtp.mail(sender)
            if code != 250:
                smtp.rset()
                raise MailError(f"the SMTP server {where} refused the sender {sender}: {code} {_text(reply)}")
            for recipient in recipients:
                code, reply = smtp.rcpt(recipient)
                if code not in (250, 251):
                    smtp.rset()  # nothing was given yet: no one receives a message some were refused
                    raise MailError(
                        f"the SMTP server {where} refused the recipient {recipient}: {code} {_text(reply)}; "
                        "nothing was sent"
                    )
            code, reply = smtp.data(message.as_bytes())
            if code != 250:
                raise MailError(f"the SMTP server {where} refused the message: {code} {_text(reply)}")
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(
            f"the SMTP server {where} refused the login of {settings.username}: {exc.smtp_code}; "
            "nothing was sent"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailError(f"the SMTP server {where} does not support {exc}; nothing was sent") from None
    except ssl.SSLError as exc:
        raise MailError(
            f"TLS with the SMTP server {where} failed ({exc.reason or exc}): is BUS389_MAIL__SSL_CAFILE "
            "the CA that signed its certificate? nothing was sent"
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(
            f"the SMTP server {where} answered {exc.smtp_code} {_text(exc.smtp_error)}; nothing was sent"
        ) from None
    except UnicodeError:
        raise MailError(
            f"the SMTP server {where} offers no AUTH PLAIN and the credentials are not ASCII; "
            "nothing was sent"
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(
            f"cannot reach the SMTP server {where}: {exc.__class__.__name__} {exc}; nothing was sent",
            retriable=True,
        ) from None


def _login(smtp: smtplib.SMTP, user: str, password: SecretStr) -> None:
    """AUTH PLAIN in UTF-8 (RFC 4616): smtplib's own login encodes as ASCII and fails on "mật khẩu"."""
    secret = password.get_secret_value()
    mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" not in mechanisms:
        smtp.login(user, secret)  # LOGIN or CRAM-MD5, as smtplib negotiates them (ASCII credentials)
        return
    token = base64.b64encode(b"\0" + user.encode("utf-8") + b"\0" + secret.encode("utf-8")).decode("ascii")
    code, reply = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", errors="replace") if isinstance(reply, bytes) else str(reply)
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]
