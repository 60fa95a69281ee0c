"""The real resolver: Debian's Unbound loads the RPZ zone the ICT service wrote, and ``dig`` sees blocks.

Unbound runs on 127.0.0.1 on a free port, in the foreground, as a child of the test, with a generated
config: ``module-config: "respip validator iterator"``, no remote control, no chroot, no user switch.
There is no internet, so the normal answers come from a local zone. It is an ``auth-zone`` with
``for-upstream: yes`` rather than ``local-data``: Unbound answers ``local-data`` before it looks at the
RPZ and without passing the answer through the ``respip`` module (seen with Unbound 1.17), so a name
served that way is never blocked. With an auth-zone the answer is resolved like one from the
internet, and both the QNAME triggers and the Response IP (``rpz-ip``) triggers apply to it.

The zone file is written by :func:`bus389.consumers.ict.blocklist.refresh_blocklist`, the function the
service's idle pass runs, from decisions taken by :class:`bus389.consumers.ict.decisions.Decider`.
Needs ``unbound`` and ``dig`` (``deploy/install-system-packages.sh``, or ``apt-get install unbound
dnsutils``); no Kafka.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from _wait import wait_for

from bus389.consumers.ict.blocklist import blocklist_files, refresh_blocklist
from bus389.consumers.ict.decisions import BlockRequest, Decider
from bus389.consumers.ict.store import IctStore, open_store
from bus389.settings import IctSettings, Settings

pytestmark = pytest.mark.integration

ZONE = "rpz.bus389.test"
IDN = "điện-thoại-rẻ.vn"
IDN_A_LABEL = "xn--in-thoi-r-pgb8634f9ia4e.vn"

# The "internet" the resolver sees: example.vn (and the IDN zone) served from auth-zones.
EXAMPLE_VN = """\
$ORIGIN example.vn.
$TTL 300
@ IN SOA ns.example.vn. hostmaster.example.vn. 1 3600 600 86400 300
@ IN NS ns.example.vn.
ns IN A 45.77.10.1
blocked IN A 45.77.10.30
www.blocked IN A 45.77.10.31
ok IN A 45.77.10.40
shop.ok IN A 45.77.10.41
bad-ip IN A 45.77.10.20
bad-ip6 IN AAAA 2606:4700::1111
good-ip6 IN AAAA 2606:4700::2222
"""
IDN_ZONE = f"""\
$ORIGIN {IDN_A_LABEL}.
$TTL 300
@ IN SOA ns.example.vn. hostmaster.example.vn. 1 3600 600 86400 300
@ IN NS ns.example.vn.
@ IN A 45.77.10.50
"""


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run deploy/install-system-packages.sh "
            "(or apt-get install unbound dnsutils)"
        )
    return path


def _free_port() -> int:
    # A port free for both UDP and TCP on loopback (Unbound listens on both).
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    pytest.fail("no free port on 127.0.0.1")


def unbound_modules() -> str:
    """The modules ``unbound -V`` says are linked; fails the test when it says nothing readable."""
    out = subprocess.run([_tool("unbound"), "-V"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"Linked modules: (.*)", out)
    assert match is not None, f"cannot read the linked modules from `unbound -V`:\n{out}"
    return match.group(1)


@dataclass
class Answer:
    status: str
    records: list[str]


_STARTED = "start of service"
"""What Unbound logs each time it has (re)loaded its configuration and zones."""


class Unbound:
    """One Unbound child process serving ``rpz_file`` as its RPZ."""

    def __init__(self, workdir: Path, rpz_file: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        (workdir / "example.vn.zone").write_text(EXAMPLE_VN)
        (workdir / "idn.zone").write_text(IDN_ZONE)
        self.config = workdir / "unbound.conf"
        self.config.write_text(
            f"""\
server:
  interface: 127.0.0.1
  port: {self.port}
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "{workdir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  do-ip6: no
  module-config: "respip validator iterator"
  access-control: 127.0.0.0/8 allow
  trust-anchor-file: ""
remote-control:
  control-enable: no
auth-zone:
  name: "example.vn."
  zonefile: "{workdir / "example.vn.zone"}"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
auth-zone:
  name: "{IDN_A_LABEL}."
  zonefile: "{workdir / "idn.zone"}"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
rpz:
  name: "{ZONE}."
  zonefile: "{rpz_file}"
  rpz-log: yes
"""
        )
        check = subprocess.run(
            [_tool("unbound-checkconf"), str(self.config)], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = (workdir / "unbound.log").open("w")
        self.process = subprocess.Popen(
            [_tool("unbound"), "-d", "-c", str(self.config)], stdout=self.log, stderr=subprocess.STDOUT
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        def answering() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"unbound exited {self.process.returncode}:\n{self.log_text()}")
            return self.query("ok.example.vn").status == "NOERROR"

        wait_for(answering, 20, f"unbound to answer on port {self.port}")

    def log_text(self) -> str:
        self.log.flush()
        return (self.workdir / "unbound.log").read_text(errors="replace")

    def query(self, name: str, rrtype: str = "A") -> Answer:
        result = subprocess.run(
            [
                _tool("dig"),
                "@127.0.0.1",
                "-p",
                str(self.port),
                name,
                rrtype,
                "+time=2",
                "+tries=1",
                "+noall",
                "+comments",
                "+answer",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=15,
        )
        match = re.search(r"status: ([A-Z]+)", result.stdout)
        records = [
            " ".join(line.split()[3:])
            for line in result.stdout.splitlines()
            if line and not line.startswith(";") and len(line.split()) >= 5
        ]
        return Answer(match.group(1) if match else f"no answer ({result.returncode})", records)

    def reload(self) -> None:
        """SIGHUP: Unbound rereads its config and zone files (and drops its cache).

        Answering is not enough (the old configuration answers too): Unbound logs "start of service"
        each time it has (re)loaded, so the reload is done when that line appears once more.
        """
        starts = self.log_text().count(_STARTED)
        self.process.send_signal(signal.SIGHUP)
        wait_for(lambda: self.log_text().count(_STARTED) > starts, 20, "unbound to reload after SIGHUP")
        self._wait_ready()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


def _request(source: str, action: str, *, domains: list[str], ips: list[str] | None = None) -> BlockRequest:
    return BlockRequest(
        event_id=str(uuid.uuid4()),
        requester=source,
        action=action,
        reason="Website bán hàng giả",
        legal_basis="Công văn 45/QLTT-NV",
        case_ref=None,
        sensitivity="AMBER",
        urgency="ROUTINE",
        violation_kinds=("COUNTERFEIT",),
        items={"domains": list(domains), "urls": [], "ip_addresses": list(ips or ())},
        occurred_at=0,
        published_at=0,
        expires_at=None,
    )


@dataclass
class Blocklist:
    settings: Settings
    store: IctStore
    decider: Decider

    @property
    def rpz(self) -> Path:
        return blocklist_files(self.settings.ict.output_dir, ZONE).rpz

    def write(self) -> int:
        return refresh_blocklist(self.store, output_dir=self.settings.ict.output_dir, zone=ZONE).serial


@pytest.fixture
def blocklist(tmp_path: Path) -> Iterator[Blocklist]:
    settings = Settings(ict=IctSettings(output_dir=tmp_path / "blocklist", rpz_zone=ZONE))
    with open_store(f"sqlite:///{tmp_path / 'ict.sqlite3'}") as store:
        decider = Decider(store, settings)
        request = _request(
            "market_surveillance",
            "BLOCK",
            domains=["blocked.example.vn", IDN],
            ips=["45.77.10.20", "2606:4700::1111"],
        )
        decider.ingest(request, origin="test")
        decider.approve(request.event_id, actor="op")
        result = Blocklist(settings, store, decider)
        result.write()
        yield result


@pytest.fixture
def unbound(tmp_path: Path, blocklist: Blocklist) -> Iterator[Unbound]:
    workdir = tmp_path / "unbound"
    workdir.mkdir()
    server = Unbound(workdir, blocklist.rpz)
    try:
        yield server
    finally:
        server.stop()


def test_blocked_domains_get_nxdomain_and_others_resolve(unbound: Unbound) -> None:
    ok = unbound.query("ok.example.vn")
    assert (ok.status, ok.records) == ("NOERROR", ["A 45.77.10.40"])
    assert unbound.query("shop.ok.example.vn").records == ["A 45.77.10.41"]

    assert unbound.query("blocked.example.vn") == Answer("NXDOMAIN", [])
    assert unbound.query("www.blocked.example.vn") == Answer("NXDOMAIN", [])  # the *. trigger
    assert unbound.query(IDN_A_LABEL) == Answer(
        "NXDOMAIN", []
    )  # requested in Unicode, written as the A-label
    log = unbound.log_text()
    assert "rpz: applied blocked.example.vn. rpz-nxdomain" in log
    assert "rpz: applied *.blocked.example.vn. rpz-nxdomain" in log


def test_blocked_ip_addresses_get_nxdomain_through_rpz_ip(unbound: Unbound) -> None:
    # Every supported Unbound (Debian's, installed by deploy/install-system-packages.sh) links respip.
    assert "respip" in unbound_modules(), "this Unbound has no respip module: no Response IP triggers"
    assert unbound.query("bad-ip.example.vn") == Answer("NXDOMAIN", [])
    assert unbound.query("bad-ip6.example.vn", "AAAA") == Answer("NXDOMAIN", [])
    assert unbound.query("good-ip6.example.vn", "AAAA").records == ["AAAA 2606:4700::2222"]
    log = unbound.log_text()
    assert "rpz: applied 45.77.10.20/32 rpz-nxdomain" in log
    assert "rpz: applied 2606:4700::1111/128 rpz-nxdomain" in log


def test_an_unblock_reaches_the_resolver_with_a_new_serial(unbound: Unbound, blocklist: Blocklist) -> None:
    assert unbound.query("blocked.example.vn").status == "NXDOMAIN"
    serial = int(next(line for line in blocklist.rpz.read_text().splitlines() if " SOA " in line).split()[5])
    blocklist.decider.ingest(
        _request("market_surveillance", "UNBLOCK", domains=["blocked.example.vn"]), origin="test"
    )
    assert blocklist.write() == serial + 1
    unbound.reload()
    assert unbound.query("blocked.example.vn").records == ["A 45.77.10.30"]
    assert unbound.query("www.blocked.example.vn").records == ["A 45.77.10.31"]
    assert unbound.query(IDN_A_LABEL).status == "NXDOMAIN"  # still blocked
