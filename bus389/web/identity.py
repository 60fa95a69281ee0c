"""Whose identity the console uses on the bus: the signed-in user's agency's, never its own.

Without ``web.agency_config_dir`` every agency uses the server's settings (a plaintext development
broker). With it, ``<dir>/<agency>.env`` (written by ``bus389 security issue AGENCY --out``) gives
that agency's SCRAM credentials: the broker's ACLs then bound what any user of the agency can do.
"""

from __future__ import annotations

import threading

from bus389.agencies import Agency
from bus389.config_file import load_settings
from bus389.errors import ConfigError
from bus389.settings import Settings

__all__ = ["AgencyIdentities"]


class AgencyIdentities:
    """The settings to act as each agency, loaded once per agency."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loaded: dict[Agency, Settings] = {}
        self._lock = threading.Lock()

    @property
    def secure(self) -> bool:
        return self.settings.web.agency_config_dir is not None

    def settings_for(self, agency: Agency) -> Settings:
        directory = self.settings.web.agency_config_dir
        if directory is None:
            return self.settings
        with self._lock:
            if agency not in self._loaded:
                path = directory.expanduser() / f"{agency.value}.env"
                if not path.is_file():
                    raise ConfigError(
                        f"{path}: no credentials for {agency.value} "
                        f"(bus389 security issue {agency.value} --out {path})"
                    )
                loaded = load_settings(path)
                # The agency's file brings its credentials; where the bus is stays the server's.
                self._loaded[agency] = loaded.model_copy(
                    update={"topic_prefix": self.settings.topic_prefix, "web": self.settings.web}
                )
            return self._loaded[agency]
