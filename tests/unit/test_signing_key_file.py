"""Which key signs whose events: ``signing.key_file`` (one agency's process) or ``signing.key_dir``."""

from __future__ import annotations

from pathlib import Path

from bus389.settings import Settings, SigningSettings
from bus389.signing.events import EventSigner, signing_key_file
from bus389.signing.keys import generate_key_file


def _settings(**signing: object) -> Settings:
    return Settings().model_copy(update={"signing": SigningSettings(**signing)})


def test_a_key_folder_signs_each_owner_with_its_own_key(tmp_path: Path) -> None:
    police = generate_key_file(tmp_path / "police.signing.pem")
    router = generate_key_file(tmp_path / "router.signing.pem")
    settings = _settings(key_dir=tmp_path)
    signer = EventSigner.from_settings(settings, "police")
    assert signer is not None and signer.key.kid == police.kid
    assert signing_key_file(settings, "router") == tmp_path / "router.signing.pem"
    assert router.kid != police.kid
    # No file for customs in the folder: its events go out unsigned (the router decides about those).
    assert EventSigner.from_settings(settings, "customs") is None


def test_a_key_file_is_this_process_own_key_whatever_the_folder(tmp_path: Path) -> None:
    own = generate_key_file(tmp_path / "own.pem")
    (tmp_path / "keys").mkdir()
    generate_key_file(tmp_path / "keys" / "tax.signing.pem")
    settings = _settings(key_file=tmp_path / "own.pem", key_dir=tmp_path / "keys")
    signer = EventSigner.from_settings(settings, "tax")
    assert signer is not None and signer.key.kid == own.kid


def test_no_key_configured_means_unsigned() -> None:
    assert EventSigner.from_settings(_settings(), "police") is None
    assert signing_key_file(_settings(), "router") is None
