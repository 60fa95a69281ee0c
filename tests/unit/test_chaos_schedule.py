"""The chaos run's pieces that need no broker: the seeded schedule, the history file, the workload's events,
the service environment, the RPZ reading of the consistency check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bus389.agencies import Agency
from bus389.chaos.consistency import parse_rpz, rpz_ip_owner
from bus389.chaos.history import EventEntry, HistoryWriter, RunInfo, read_history
from bus389.chaos.run import run_settings, service_env
from bus389.chaos.schedule import FaultKind, default_fault_count, make_schedule
from bus389.chaos.workload import PUBLISHERS, EventFactory
from bus389.errors import InputError
from bus389.events import build_event
from bus389.settings import Settings


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    a = make_schedule(seed=7, seconds=300, count=15)
    assert a == make_schedule(seed=7, seconds=300, count=15)
    assert a != make_schedule(seed=8, seconds=300, count=15)


@pytest.mark.parametrize("seed", range(20))
def test_every_kind_appears_and_faults_follow_one_another(seed: int) -> None:
    faults = make_schedule(seed=seed, seconds=300, count=15, pause_s=12.0)
    assert len(faults) == 15
    assert {f.kind for f in faults} == set(FaultKind)
    slot = (300 - 3.0) / 15
    for earlier, later in zip(faults, faults[1:], strict=False):
        assert earlier.at_s < later.at_s
    for fault in faults:
        assert 3.0 <= fault.at_s < 300
        if fault.kind == FaultKind.PAUSE_BROKER:
            assert fault.down_s == 12.0
        elif fault.kind == FaultKind.KILL_LEADER:
            assert 3.0 <= fault.down_s <= 8.0
            role, _, partition = fault.target.rpartition("/")
            assert role and 0 <= int(partition) < 3
        else:
            assert fault.target == fault.kind.service and 1.0 <= fault.down_s <= 4.0
        assert fault.down_s < slot + 12.0


def test_a_short_run_still_kills_a_leader() -> None:
    for seed in range(30):
        faults = make_schedule(seed=seed, seconds=45, count=4)
        assert len(faults) == 4 and len({f.kind for f in faults}) == 4
        assert FaultKind.KILL_LEADER in {f.kind for f in faults}


def test_default_fault_counts() -> None:
    assert default_fault_count(45) == 4
    assert default_fault_count(300) == 25
    assert make_schedule(seed=1, seconds=60, count=0) == []


def test_history_round_trip_and_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    info = RunInfo(bootstrap="127.0.0.1:29092", topic_prefix="chaos_1_x", policy_path="p.yaml", seed=1)
    entry = EventEntry("id-1", "complaint", "industry_trade", "ok", {"meta": {"event_id": "id-1"}}, 1.0, 2.0)
    with HistoryWriter(path) as writer:
        writer.run(info)
        writer.event(entry)
        writer.fault(index=1, fault="kill_router", target="router")
        writer.note("healing", what="broker 2 started")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"kind": "event", "event_id": "torn')  # the run was killed mid-line
    history = read_history(path)
    assert history.run == info
    assert history.events == [entry]
    assert history.acknowledged == [entry]
    assert [f["fault"] for f in history.faults] == ["kill_router"]
    assert history.notes[0]["text"] == "healing"


def test_a_broken_history_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text('{"kind": "run", "bootstrap": "x"}\n', encoding="utf-8")
    with pytest.raises(InputError, match=":1:"):
        read_history(path)
    path.write_text('{"kind": "what"}\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown line kind"):
        read_history(path)


def test_the_workload_is_valid_seeded_and_covers_every_publishable_type() -> None:
    first = [EventFactory(5).next() for _ in range(1)]
    again = EventFactory(5)
    assert again.next() == first[0]
    factory = EventFactory(5)
    seen: dict[str, set[str]] = {}
    levels: set[str] = set()
    for _ in range(1500):
        event_type, source, data, event_id = factory.next()
        event = build_event(event_type, source, data, event_id=event_id)
        assert str(event.meta.event_id) == event_id
        assert source in PUBLISHERS[event_type]
        seen.setdefault(event_type, set()).add(source.value)
        levels.add(str(data["meta"]["sensitivity"]))
    assert set(seen) == set(PUBLISHERS) and "domain_block_result" not in seen
    assert levels == {"CLEAR", "GREEN", "AMBER", "AMBER_STRICT", "RED"}


def test_the_service_environment_gives_the_same_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("BUS389_")]:
        monkeypatch.delenv(name)
    mine = run_settings(
        Settings(), bootstrap="127.0.0.1:29092", prefix="chaos_9_abc", run_dir=tmp_path, brokers=3
    )
    for name, value in service_env(mine).items():
        monkeypatch.setenv(name, value)
    child = Settings()
    assert child.bootstrap == "127.0.0.1:29092" and child.topic_prefix == "chaos_9_abc"
    assert (child.kafka.replication_factor, child.kafka.min_insync_replicas) == (3, 2)
    assert child.router == mine.router and child.store == mine.store
    assert child.ict.auto_approve_senders == tuple(Agency)
    assert child.ict.group_id == "chaos_9_abc.ict.blocklist"
    assert child.report.group_id == "chaos_9_abc.market_surveillance.store"


def test_the_rpz_reading() -> None:
    text = "\n".join(
        [
            "$ORIGIN rpz.bus389.local.",
            "@ IN SOA localhost. hostmaster.localhost. 3 3600 600 604800 300",
            "; event 8f14e45f-ceea-4e7a-9a1b-2a0c9d3b7e51 from police, Công văn 1",
            "hang-gia.vn CNAME .",
            "*.hang-gia.vn CNAME .",
            "; event 0b5a4e0c-6a47-4c71-9d43-1b2b1a0c3d4e from customs, Công văn 2",
            f"{rpz_ip_owner('45.76.1.2')} CNAME .",
        ]
    )
    zone = parse_rpz(text, "rpz.bus389.local")
    assert zone.domains == {"hang-gia.vn"}
    assert zone.ip_owners == {"32.2.1.76.45.rpz-ip"}
    assert len(zone.request_ids) == 2


def test_the_chaos_commands_have_help_with_an_example() -> None:
    from bus389.cli.main import cli

    runner = CliRunner()
    for args in (["chaos"], ["chaos", "run"], ["chaos", "check"], ["chaos", "consistency"]):
        result = runner.invoke(cli, [*args, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example:" in result.output


def test_chaos_check_refuses_a_file_that_is_not_a_history(tmp_path: Path) -> None:
    from bus389.cli.main import cli

    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"kind": "note", "text": "x", "at": 1}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["chaos", "check", "--history", str(path)])
    assert result.exit_code == 1 and "no run line" in result.output
