"""A local SMTP server for the demo and the tests: STARTTLS and AUTH required, messages kept in a Maildir.

aiosmtpd (a dev dependency) on loopback: ``MAIL``/``RCPT``/``AUTH`` are refused before ``STARTTLS``,
``MAIL`` before ``AUTH``, and a login other than the configured one is refused; recipients listed in
``refuse`` are answered ``550``. Each accepted message is written whole (as received) into ``maildir``
(``new/``), so the demo and the tests read what the server really received.

Run (the demo): ``python deploy/smtp_sink.py --port 2525 --cert server.pem --maildir DIR --user U
--password-file F --pid-file P``; SIGTERM stops it. The certificate file holds the key and the chain.
"""

from __future__ import annotations

import argparse
import mailbox
import os
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

__all__ = ["SinkHandler", "start_sink"]


class SinkHandler:
    """Keeps every message in a Maildir; refuses the recipients it is told to."""

    def __init__(self, maildir: Path, refuse: frozenset[str] = frozenset()) -> None:
        self.box = mailbox.Maildir(str(maildir), create=True)
        self.refuse = {r.lower() for r in refuse}
        self.lock = threading.Lock()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            self.box.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


def _authenticator(user: str, password: str) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    return check


def start_sink(
    *,
    host: str,
    port: int,
    cert_pem: Path,
    maildir: Path,
    user: str,
    password: str,
    refuse: frozenset[str] = frozenset(),
) -> Controller:
    """Start the server in a thread; ``controller.stop()`` stops it."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert_pem))
    controller = Controller(
        SinkHandler(maildir, refuse),
        hostname=host,
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=_authenticator(user, password),
        ready_timeout=30.0,
    )
    controller.start()
    return controller


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--cert", type=Path, required=True, help="PEM with the key and the certificate chain")
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args()
    password = args.password_file.read_text(encoding="utf-8").splitlines()[0].strip()
    controller = start_sink(
        host=args.host,
        port=args.port,
        cert_pem=args.cert,
        maildir=args.maildir,
        user=args.user,
        password=password,
    )
    if args.pid_file:
        args.pid_file.write_text(f"{os.getpid()}\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(
        f"smtp sink listening on {args.host}:{args.port} (STARTTLS, AUTH), maildir {args.maildir}", flush=True
    )
    stop.wait()
    controller.stop()
    if args.pid_file:
        args.pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
