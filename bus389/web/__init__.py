"""The web console and HTTP API (``bus389 serve web``): pages for people, ``/api/v1`` for their systems."""

from bus389.web.app import create_app

__all__ = ["create_app"]
