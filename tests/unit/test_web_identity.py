"""The console acts as the user's agency: in secure mode, with that agency's issued config file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from bus389.agencies import Agency
from bus389.config_file import render_config, write_private_file
from bus389.errors import ConfigError
from bus389.settings import Settings, WebSettings
from bus389.web.identity import AgencyIdentities


def test_without_a_config_dir_every_agency_uses_the_servers_settings() -> None:
    settings = Settings()
    identities = AgencyIdentities(settings)
    assert not identities.secure
    assert identities.settings_for(Agency.TAX) is settings


def test_in_secure_mode_each_agency_uses_its_own_credentials(tmp_path: Path) -> None:
    write_private_file(
        tmp_path / "tax.env",
        render_config(
            {
                "BUS389_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "BUS389_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
                "BUS389_KAFKA__USERNAME": "tax",
                "BUS389_KAFKA__PASSWORD": SecretStr("mat-khau-cua-cuc-thue"),
            }
        ),
    )
    settings = Settings(topic_prefix="t_web", web=WebSettings(agency_config_dir=tmp_path))
    identities = AgencyIdentities(settings)
    tax = identities.settings_for(Agency.TAX)
    assert (tax.kafka.username, tax.kafka.security_protocol) == ("tax", "SASL_SSL")
    assert tax.topic_prefix == "t_web"
    with pytest.raises(ConfigError, match="bus389 security issue police"):
        identities.settings_for(Agency.POLICE)
