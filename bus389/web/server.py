"""Running the console: uvicorn on ``web.host:web.port`` until SIGTERM or SIGINT."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from bus389.errors import ConfigError
from bus389.settings import Settings
from bus389.web.app import create_app

__all__ = ["serve_web"]


def serve_web(
    settings: Settings,
    *,
    port: int | None = None,
    metrics_url: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the console until a signal stops it; ``on_ready`` gets its address once it listens."""
    host = settings.web.host
    chosen = settings.web.port if port is None else port
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, chosen))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot serve the web console on {host}:{chosen}: {exc.strerror or exc} "
            "(set BUS389_WEB__PORT or --port)"
        ) from exc
    # Listening before the address is announced: a client that reads it can connect at once.
    sock.listen(2048)
    bound = sock.getsockname()[1]
    app = create_app(settings, metrics_url=metrics_url)
    config = uvicorn.Config(app, log_config=None, access_log=False, server_header=False, proxy_headers=False)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{host}:{bound}/")
    server.run(sockets=[sock])
