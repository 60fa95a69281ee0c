"""The blocklist files: RPZ text (golden), rpz-ip owner names, serials, atomic writes, the exports."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest

from bus389.consumers.ict.blocklist import (
    CSV_COLUMNS,
    SERIAL_MAX,
    BlockEntry,
    blocklist_files,
    next_serial,
    refresh_blocklist,
    render_csv,
    render_rpz,
    render_txt,
    rpz_ip_owner,
    write_atomic,
    write_blocklist,
)
from bus389.consumers.ict.screening import TargetKind
from bus389.consumers.ict.store import RequestRow, RequestState, TargetState, open_store
from bus389.errors import StoreError

R1 = "11111111-1111-4111-8111-111111111111"
R2 = "22222222-2222-4222-8222-222222222222"
T_2021_03_01 = 1614585600000  # 2021-03-01T08:00:00Z
T_2021_04_01 = 1617235200000  # 2021-04-01T00:00:00Z

ENTRIES = [
    BlockEntry(TargetKind.DOMAIN, "hang-gia.example.vn", R1, "police", "CV 12/CAT-PC03", T_2021_03_01, None),
    BlockEntry(TargetKind.IP, "45.77.10.20", R1, "police", "CV 12/CAT-PC03", T_2021_03_01, None),
    BlockEntry(
        TargetKind.DOMAIN,
        "hang-gia.example.vn",
        R2,
        "market_surveillance",
        "QĐ 45/QĐ-QLTT\nkèm",
        T_2021_03_01 + 1,
        T_2021_04_01,
    ),
    BlockEntry(
        TargetKind.DOMAIN,
        "a.example.com",
        R2,
        "market_surveillance",
        "QĐ 45/QĐ-QLTT",
        T_2021_03_01 + 1,
        T_2021_04_01,
    ),
    BlockEntry(
        TargetKind.IP, "2606:4700::1111", R2, "market_surveillance", "QĐ 45", T_2021_03_01 + 1, T_2021_04_01
    ),
    BlockEntry(
        TargetKind.IP, "45.77.11.0/24", R2, "market_surveillance", "QĐ 45", T_2021_03_01 + 1, T_2021_04_01
    ),
    BlockEntry(
        TargetKind.URL,
        "https://shop.example.vn/x",
        R2,
        "market_surveillance",
        "QĐ 45",
        T_2021_03_01 + 1,
        T_2021_04_01,
    ),
]

GOLDEN_RPZ = f"""\
; rpz.bus389.local: Response Policy Zone of the BCĐ 389 ICT department (draft-vixie-dnsop-dns-rpz).
; Written by bus389 on every change; do not edit by hand.
; 2 domain(s) and 3 IP address(es) or network(s) blocked.
$ORIGIN rpz.bus389.local.
$TTL 300
@ IN SOA localhost. hostmaster.localhost. 42 3600 600 604800 300
@ IN NS localhost.

; event {R2} from market_surveillance, QĐ 45/QĐ-QLTT
a.example.com CNAME .
*.a.example.com CNAME .

; event {R1} from police, CV 12/CAT-PC03
; event {R2} from market_surveillance, QĐ 45/QĐ-QLTT kèm
hang-gia.example.vn CNAME .
*.hang-gia.example.vn CNAME .

; event {R1} from police, CV 12/CAT-PC03
32.20.10.77.45.rpz-ip CNAME .

; event {R2} from market_surveillance, QĐ 45
24.0.11.77.45.rpz-ip CNAME .

; event {R2} from market_surveillance, QĐ 45
128.1111.zz.4700.2606.rpz-ip CNAME .
"""


def test_rpz_text_matches_the_golden_zone() -> None:
    assert render_rpz(ENTRIES, zone="rpz.bus389.local", serial=42) == GOLDEN_RPZ


def test_rpz_of_an_empty_list_is_a_valid_empty_zone() -> None:
    text = render_rpz([], zone="rpz.example", serial=1)
    records = [line for line in text.splitlines() if line and not line.startswith(";")]
    assert records == [
        "$ORIGIN rpz.example.",
        "$TTL 300",
        "@ IN SOA localhost. hostmaster.localhost. 1 3600 600 604800 300",
        "@ IN NS localhost.",
    ]


def test_every_rpz_record_is_preceded_by_its_event_comment() -> None:
    lines = render_rpz(ENTRIES, zone="rpz.bus389.local", serial=1).splitlines()
    for index, line in enumerate(lines):
        if line.endswith("CNAME .") and not line.startswith("*."):
            assert lines[index - 1].startswith("; event "), line


def test_a_newline_in_the_legal_basis_cannot_end_the_comment() -> None:
    text = render_rpz(ENTRIES, zone="rpz.bus389.local", serial=1)
    assert not any(line.startswith("kèm") for line in text.splitlines())
    assert "QĐ 45/QĐ-QLTT kèm" in text


@pytest.mark.parametrize(
    ("target", "owner"),
    [
        ("1.2.3.4", "32.4.3.2.1.rpz-ip"),
        ("45.77.10.20", "32.20.10.77.45.rpz-ip"),
        ("45.77.10.0/24", "24.0.10.77.45.rpz-ip"),
        # The draft's own IPv6 example: 2001:2:3::1 → 128.1.zz.3.2.2001.
        ("2001:2:3::1", "128.1.zz.3.2.2001.rpz-ip"),
        ("2606:4700::1111", "128.1111.zz.4700.2606.rpz-ip"),
        ("2606:4700:10::/48", "48.zz.10.4700.2606.rpz-ip"),
        ("2a03:2880:f12f:83:face:b00c:0:25de", "128.25de.0.b00c.face.83.f12f.2880.2a03.rpz-ip"),
        ("::1", "128.1.zz.rpz-ip"),
    ],
)
def test_rpz_ip_owner_names(target: str, owner: str) -> None:
    assert rpz_ip_owner(target) == owner


def test_text_export_is_one_domain_per_line_without_ips_or_urls() -> None:
    assert render_txt(ENTRIES) == "a.example.com\nhang-gia.example.vn\n"
    assert render_txt([]) == ""


def test_csv_export_has_one_row_per_block_and_request() -> None:
    rows = list(csv.reader(io.StringIO(render_csv(ENTRIES))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1:] == [
        [
            "a.example.com",
            "domain",
            R2,
            "market_surveillance",
            "2021-03-01T08:00:00Z",
            "2021-04-01T00:00:00Z",
            "QĐ 45/QĐ-QLTT",
        ],
        ["hang-gia.example.vn", "domain", R1, "police", "2021-03-01T08:00:00Z", "", "CV 12/CAT-PC03"],
        [
            "hang-gia.example.vn",
            "domain",
            R2,
            "market_surveillance",
            "2021-03-01T08:00:00Z",
            "2021-04-01T00:00:00Z",
            "QĐ 45/QĐ-QLTT\nkèm",
        ],
        ["45.77.10.20", "ip", R1, "police", "2021-03-01T08:00:00Z", "", "CV 12/CAT-PC03"],
        [
            "45.77.11.0/24",
            "ip",
            R2,
            "market_surveillance",
            "2021-03-01T08:00:00Z",
            "2021-04-01T00:00:00Z",
            "QĐ 45",
        ],
        [
            "2606:4700::1111",
            "ip",
            R2,
            "market_surveillance",
            "2021-03-01T08:00:00Z",
            "2021-04-01T00:00:00Z",
            "QĐ 45",
        ],
        [
            "https://shop.example.vn/x",
            "url",
            R2,
            "market_surveillance",
            "2021-03-01T08:00:00Z",
            "2021-04-01T00:00:00Z",
            "QĐ 45",
        ],
    ]


def test_serials_increase_and_wrap_past_32_bits() -> None:
    assert next_serial(0) == 1
    assert next_serial(41) == 42
    assert next_serial(SERIAL_MAX - 1) == SERIAL_MAX
    assert next_serial(SERIAL_MAX) == 1


# --- atomic writes ------------------------------------------------------------------------------------


def test_write_atomic_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "zone"
    target.write_text("old")
    write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zone"]
    assert (target.stat().st_mode & 0o777) == 0o644


def test_a_failed_write_keeps_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "zone"
    target.write_text("old zone")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StoreError, match="No space left"):
        write_atomic(target, b"new zone")
    assert target.read_text() == "old zone"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zone"]


def test_write_atomic_fsyncs_the_data_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        calls.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(tmp_path / "zone", b"x")
    assert calls == ["fsync", "replace", "fsync"]  # the data, the rename, the folder


def test_write_blocklist_writes_the_three_files(tmp_path: Path) -> None:
    files = write_blocklist(ENTRIES, output_dir=tmp_path / "out", zone="rpz.bus389.local", serial=42)
    assert files == blocklist_files(tmp_path / "out", "rpz.bus389.local")
    assert files.rpz.name == "rpz.bus389.local.zone"
    assert files.rpz.read_text(encoding="utf-8") == GOLDEN_RPZ
    assert files.txt.read_text() == "a.example.com\nhang-gia.example.vn\n"
    assert files.csv.read_text(encoding="utf-8").startswith(",".join(CSV_COLUMNS))


# --- the files from the store ---------------------------------------------------------------------------


def _block(store_url: str, request_id: str, value: str, *, kind: str = "domain") -> None:
    with open_store(store_url) as store, store.transaction():
        store.insert_request(
            RequestRow(
                event_id=request_id,
                requester="police",
                action="BLOCK",
                reason="hàng giả",
                legal_basis="CV 12/CAT-PC03",
                case_ref=None,
                sensitivity="AMBER",
                urgency="ROUTINE",
                violation_kinds=("COUNTERFEIT",),
                items={"domains": [value], "urls": [], "ip_addresses": []},
                occurred_at=T_2021_03_01,
                published_at=T_2021_03_01,
                expires_at=None,
                received_at=T_2021_03_01,
                origin="t/0/0",
                state=RequestState.APPROVED,
                decided_at=T_2021_03_01,
                decided_by="op",
                note=None,
            )
        )
        store.insert_target((request_id, "police"), 0, kind, value, TargetState.BLOCKED, T_2021_03_01)
        store.bump_blocklist_seq()


def _serial_line(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if " SOA " in line)


def test_refresh_writes_on_change_only_and_persists_the_serial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ict.sqlite3'}"
    out = tmp_path / "blocklist"
    zone = "rpz.bus389.local"
    files = blocklist_files(out, zone)

    with open_store(url) as store:
        first = refresh_blocklist(store, output_dir=out, zone=zone)
    assert (first.written, first.serial, first.entries) == (True, 1, 0)
    assert "1 3600" in _serial_line(files.rpz)

    _block(url, R1, "hang-gia.example.vn")
    with open_store(url) as store:
        second = refresh_blocklist(store, output_dir=out, zone=zone)
        unchanged = refresh_blocklist(store, output_dir=out, zone=zone)
    assert (second.written, second.serial, second.entries) == (True, 2, 1)
    assert (unchanged.written, unchanged.serial) == (False, 2)
    assert "hang-gia.example.vn CNAME ." in files.rpz.read_text()
    assert f"; event {R1} from police, CV 12/CAT-PC03" in files.rpz.read_text()

    # The serial survives a restart (it lives in the store), and the next change increments it.
    _block(url, R2, "45.77.10.20", kind="ip")
    with open_store(url) as store:
        third = refresh_blocklist(store, output_dir=out, zone=zone)
    assert third.serial == 3
    assert "32.20.10.77.45.rpz-ip CNAME ." in files.rpz.read_text()
    assert "3 3600 600" in _serial_line(files.rpz)


def test_a_missing_file_is_rewritten_with_the_same_serial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ict.sqlite3'}"
    out = tmp_path / "blocklist"
    _block(url, R1, "hang-gia.example.vn")
    with open_store(url) as store:
        assert refresh_blocklist(store, output_dir=out, zone="z").serial == 1
        blocklist_files(out, "z").rpz.unlink()
        again = refresh_blocklist(store, output_dir=out, zone="z")
    assert (again.written, again.serial) == (True, 1)
    assert "hang-gia.example.vn CNAME ." in blocklist_files(out, "z").rpz.read_text()


def test_a_change_that_cancels_out_does_not_bump_the_serial(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ict.sqlite3'}"
    out = tmp_path / "blocklist"
    _block(url, R1, "hang-gia.example.vn")
    with open_store(url) as store:
        assert refresh_blocklist(store, output_dir=out, zone="z").serial == 1
        with store.transaction():
            store.bump_blocklist_seq()  # something changed and changed back
        result = refresh_blocklist(store, output_dir=out, zone="z")
        assert (result.written, result.serial) == (False, 1)
        assert store.counter("written_seq") == store.counter("blocklist_seq")
