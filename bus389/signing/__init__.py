"""Signed events that stay verifiable through the router's redaction: keys, the registry, disclosures.

:mod:`.keys` holds an agency's Ed25519 signing key and the registry of public keys with their validity
periods; :mod:`.disclosure` signs an event as salted per-field digests (the SD-JWT idea) and verifies a
copy with some fields removed; :mod:`.registry_topic` reads and writes the registry on ``<prefix>.keys``.
"""
