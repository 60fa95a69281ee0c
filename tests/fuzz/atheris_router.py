"""Coverage-guided fuzzing (atheris, libFuzzer) of the codec and the router's per-record handling.

Each input is the value itself (so the regression corpus seeds it as is); the outbox it comes from and
whether it carries the ``ce_type`` header its frame implies are derived from its length. The router must
answer with a
routed event or one dead letter (the invariants of ``_fuzz_inputs.check_invariants``), and the codec
must decode or raise a typed ``CodecError``. Anything else is a crash: libFuzzer stops, writes the input
as ``crash-*`` and exits non-zero. Seed it with the regression corpus (raw values, see ``test_atheris``):

    /tmp/venv/bin/python tests/fuzz/atheris_router.py -runs=20000 -max_len=4096 -timeout=10 SEED_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["bus389", "consumers", "schemas", "fastavro"]):
    from _fuzz_inputs import RECEIVED, TOPICS, FakeRecord, check_invariants, new_router

    from bus389.agencies import Agency
    from bus389.codec import decode_event
    from bus389.errors import CodecError
    from bus389.schemas.catalog import load_catalog

_AGENCIES = list(Agency)
_CE_TYPES = {entry.schema_id: entry.ce_type.encode() for entry in load_catalog()}
_ROUTER = new_router()


def test_one_input(value: bytes) -> None:
    topic = TOPICS.outbox(_AGENCIES[len(value) % len(_AGENCIES)])
    headers: list[tuple[str, bytes | None]] = []
    if len(value) >= 5 and len(value) % 2:
        ce_type = _CE_TYPES.get(int.from_bytes(value[1:5], "big"))
        headers.append(("ce_type", ce_type or value[5:30]))
    try:
        decode_event(value, headers)
    except CodecError:
        pass
    raw = FakeRecord(topic, value, headers)
    check_invariants(raw, _ROUTER.route(raw, received_at=RECEIVED, now=lambda: RECEIVED))


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
