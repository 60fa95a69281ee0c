"""The ICT department's domain blocking (plan II.6): requests in, decisions, blocklist files, results out.

:mod:`.screening` decides what may be blocked at all (the never-block allowlist, public IP addresses
only, IDNA normalisation); :mod:`.store` keeps requests, targets, decisions and the result outbox
(SQLite, idempotent by event id); :mod:`.decisions` approves, rejects, auto-approves, unblocks and
expires; :mod:`.blocklist` writes the RPZ zone and the providers' text and CSV exports atomically;
:mod:`.service` is the inbox handler and the outbox drain run by ``bus389 serve ict``. The operator's
commands are in :mod:`bus389.cli.ict_cmd`.
"""
