"""Screening of domain-block targets: what may be blocked at all, normalised to the form the blocklist uses.

A request names domains, URLs and IP addresses. Each is normalised (domains to lowercase IDNA A-labels
under UTS #46, URLs to ``scheme://host/path``, IP addresses and networks to their canonical text) and
then refused when blocking it would do harm:

- a domain on the never-block allowlist (``settings.ict.never_block``), a name under one of them, or a
  name whose block would cover one of them (blocking ``vn`` would cover ``gov.vn``);
- a public suffix of the Public Suffix List, ICANN and PRIVATE sections (``vn``, ``com.vn``, ``gov.vn``,
  ``github.io``, ``blogspot.com``, ...): blocking it would block every site registered under it;
- a name with a label starting ``rpz-`` (``1.0.0.0.0.rpz-ip``, ``ns.rpz-nsdname``): written into the RPZ
  zone it would be a trigger, an instruction to the resolver (block an IP range, every domain a name
  server serves), not a domain;
- an IP address or network that is not globally routable (private, loopback, link-local, multicast,
  reserved, documentation, ...): the plan directs providers to block *international* addresses, and a
  block of a private range would cut the province's own networks;
- a network broader than ``/24`` (IPv4) or ``/48`` (IPv6): too much collateral for one request.

Screening is pure: no store, no clock, no network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit

import idna
from publicsuffixlist import PublicSuffixList

__all__ = [
    "MIN_PREFIX_V4",
    "MIN_PREFIX_V6",
    "PUBLIC_SUFFIXES",
    "RPZ_TRIGGER_PREFIX",
    "SPECIAL_RANGES",
    "Refusal",
    "ScreenResult",
    "Target",
    "TargetKind",
    "is_public_suffix",
    "is_under",
    "normalise_domain",
    "rpz_trigger_label",
    "screen_domain",
    "screen_ip",
    "screen_targets",
    "screen_url",
]

MIN_PREFIX_V4 = 24
"""The broadest IPv4 network one request may block."""
MIN_PREFIX_V6 = 48
"""The broadest IPv6 network one request may block."""

PUBLIC_SUFFIXES: frozenset[str] = frozenset(
    {
        "vn",
        "com.vn",
        "net.vn",
        "org.vn",
        "edu.vn",
        "gov.vn",
        "int.vn",
        "ac.vn",
        "biz.vn",
        "info.vn",
        "name.vn",
        "pro.vn",
        "health.vn",
        "io.vn",
        "id.vn",
    }
)
"""The .vn second-level zones, refused even if a Public Suffix List release were to drop one.

The list that decides is the Public Suffix List (:func:`is_public_suffix`); single-label names (top-level
domains) are refused by the label count.
"""

# The list shipped inside the package (its ICANN and PRIVATE sections), loaded once; never fetched.
_PSL = PublicSuffixList()

RPZ_TRIGGER_PREFIX = "rpz-"
"""Labels starting with this are RPZ triggers (rpz-ip, rpz-nsdname, rpz-nsip, rpz-client-ip, and any
the draft may add): a domain with such a label is refused, never written into the zone."""


# Special-purpose address blocks (IANA IPv4/IPv6 Special-Purpose Address Registries, RFC 6890 and
# successors). Order matters only for the reason given: the first block that matches names it.
SPECIAL_RANGES: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified ('this network')"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT, RFC 6598)"),
        ("169.254.0.0/16", "link-local"),
        ("192.0.0.0/24", "reserved (IETF protocol assignments)"),
        ("192.0.2.0/24", "reserved (documentation, TEST-NET-1)"),
        ("198.51.100.0/24", "reserved (documentation, TEST-NET-2)"),
        ("203.0.113.0/24", "reserved (documentation, TEST-NET-3)"),
        ("192.88.99.0/24", "reserved (6to4 relay anycast)"),
        ("198.18.0.0/15", "reserved (benchmarking)"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved (future use)"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped (give the IPv4 address itself)"),
        ("64:ff9b::/96", "reserved (NAT64 well-known prefix)"),
        ("64:ff9b:1::/48", "reserved (local-use NAT64)"),
        ("100::/64", "reserved (discard-only)"),
        ("2001:db8::/32", "reserved (documentation)"),
        ("3fff::/20", "reserved (documentation)"),
        ("2001::/23", "reserved (IETF protocol assignments)"),
        ("2002::/16", "reserved (6to4; give the IPv4 address itself)"),
        ("fc00::/7", "private (unique local)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "reserved (deprecated site-local)"),
        ("ff00::/8", "multicast"),
    )
)

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_NAME = 253


class TargetKind(StrEnum):
    """What a target is; the blocklist writes each kind differently."""

    DOMAIN = "domain"
    IP = "ip"
    URL = "url"


@dataclass(frozen=True, order=True)
class Target:
    """One thing to block, normalised: ``value`` is what the blocklist and the result carry."""

    kind: TargetKind
    value: str


@dataclass(frozen=True)
class Refusal:
    """One item of a request that screening refused, as the requester wrote it, and why."""

    item: str
    reason: str

    def __str__(self) -> str:
        return f"{self.item}: {self.reason}"


@dataclass(frozen=True)
class ScreenResult:
    """What screening kept (normalised, without duplicates, in request order) and what it refused."""

    accepted: tuple[Target, ...]
    refused: tuple[Refusal, ...]


class _Refused(Exception):
    """Internal: carries a refusal reason out of the normalisers."""


def _to_ascii(name: str) -> str:
    try:
        return idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise _Refused(f"not a valid domain name ({exc})") from exc
    except UnicodeError as exc:
        raise _Refused(f"not a valid domain name ({exc})") from exc


def normalise_domain(raw: str) -> str:
    """A domain as the blocklist writes it: lowercase IDNA A-labels, no trailing dot, no ``*.``.

    Raises ``ValueError`` with the reason when ``raw`` is not a syntactically valid host name.
    """
    try:
        return _normalise_domain(raw)
    except _Refused as exc:
        raise ValueError(str(exc)) from exc


def _normalise_domain(raw: str) -> str:
    name = raw.strip()
    if name.startswith("*."):
        name = name[2:]
    name = name.rstrip(".")
    if not name:
        raise _Refused("empty domain name")
    if any(ch.isspace() for ch in name) or "/" in name or "@" in name or ":" in name:
        raise _Refused("not a domain name")
    ascii_name = _to_ascii(name).lower()
    if len(ascii_name) > _MAX_NAME:
        raise _Refused(f"longer than {_MAX_NAME} characters")
    labels = ascii_name.split(".")
    for label in labels:
        if not _LABEL.match(label):
            raise _Refused(f"invalid label {label!r}")
    trigger = rpz_trigger_label(ascii_name)
    if trigger is not None:
        raise _Refused(
            f"label {trigger!r} is an RPZ trigger: in the zone it would instruct the resolver "
            "(block IP ranges or name servers), not block a domain"
        )
    if len(labels) < 2:
        raise _Refused("a top-level domain cannot be blocked")
    if labels[-1].isdigit():
        raise _Refused("not a domain name (numeric top-level label)")
    return ascii_name


def is_public_suffix(name: str) -> bool:
    """True when ``name`` (normalised) is a public suffix: anyone registers names under it."""
    return name in PUBLIC_SUFFIXES or bool(_PSL.is_public(name))


def rpz_trigger_label(name: str) -> str | None:
    """The first label of ``name`` that makes it an RPZ trigger (``rpz-ip``, ...), or None."""
    for label in name.lower().split("."):
        if label.startswith(RPZ_TRIGGER_PREFIX):
            return label
    return None


def is_under(name: str, parent: str) -> bool:
    """True when ``name`` is ``parent`` itself or a name under it (both normalised)."""
    return name == parent or name.endswith("." + parent)


def _normalised_allowlist(never_block: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for entry in never_block:
        try:
            out.append(_normalise_domain(entry))
        except _Refused:
            # A top-level allowlist entry ("vn") cannot be normalised as a blockable name, but still protects.
            out.append(entry.strip().rstrip(".").lower())
    return tuple(out)


def screen_domain(raw: str, never_block: Iterable[str]) -> str:
    """The normalised domain, or ``ValueError`` naming why it must not be blocked."""
    try:
        return _screen_domain(raw, _normalised_allowlist(never_block))
    except _Refused as exc:
        raise ValueError(str(exc)) from exc


def _screen_domain(raw: str, allowlist: Sequence[str]) -> str:
    name = _normalise_domain(raw)
    for protected in allowlist:
        if is_under(name, protected):
            if name == protected:
                raise _Refused(f"on the never-block list ({protected})")
            raise _Refused(f"under {protected}, which is on the never-block list")
        if is_under(protected, name):
            raise _Refused(f"blocking it would also block {protected}, which is on the never-block list")
    if is_public_suffix(name):
        raise _Refused("a public suffix: blocking it would block every site registered under it")
    return name


def _special_reason(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str | None:
    for special, reason in SPECIAL_RANGES:
        if special.version == net.version and net.overlaps(special):
            return reason
    if net.version == 6 and not net.subnet_of(_GLOBAL_UNICAST_V6):
        return "reserved (outside the IPv6 global unicast space 2000::/3)"
    return None


def screen_ip(raw: str) -> str:
    """The canonical text of an IP address (``a.b.c.d``) or network (``a.b.c.0/24``), or ``ValueError``."""
    try:
        return _screen_ip(raw)
    except _Refused as exc:
        raise ValueError(str(exc)) from exc


def _screen_ip(raw: str) -> str:
    text = raw.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise _Refused("not an IP address or network") from exc
    if "/" in text and net.network_address != ipaddress.ip_interface(text).ip:
        raise _Refused(f"host bits set in network (did you mean {net}?)")
    reason = _special_reason(net)
    if reason is not None:
        raise _Refused(f"not a public address: {reason}")
    minimum = MIN_PREFIX_V4 if net.version == 4 else MIN_PREFIX_V6
    if net.prefixlen < minimum:
        raise _Refused(f"network broader than /{minimum}: too much collateral for one request")
    if net.num_addresses == 1:
        return str(net.network_address)
    return str(net)


def _looks_like_ip(text: str) -> bool:
    head = text.strip().split("/", 1)[0].strip("[]")
    try:
        ipaddress.ip_address(head)
    except ValueError:
        return False
    return True


def screen_url(raw: str, never_block: Iterable[str]) -> str:
    """A normalised ``http(s)://host[:port]/path[?query]`` whose host passes screening, or ``ValueError``."""
    try:
        return _screen_url(raw, _normalised_allowlist(never_block))
    except _Refused as exc:
        raise ValueError(str(exc)) from exc


def _screen_url(raw: str, allowlist: Sequence[str]) -> str:
    text = raw.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise _Refused(f"not a URL ({exc})") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise _Refused(f"scheme {scheme!r} is not http or https")
    host = parts.hostname or ""
    if not host:
        raise _Refused("URL without a host")
    if _looks_like_ip(host):
        host = _screen_ip(host)
        if ":" in host:
            host = f"[{host}]"
    else:
        host = _screen_domain(host, allowlist)
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def _domain_item(raw: str, allowlist: Sequence[str], vn_domains_only: bool) -> Target:
    if _looks_like_ip(raw):
        return _ip_item(raw, vn_domains_only)
    name = _screen_domain(raw, allowlist)
    if vn_domains_only and not is_under(name, "vn"):
        raise _Refused("not a .VN domain")
    return Target(TargetKind.DOMAIN, name)


def _url_item(raw: str, allowlist: Sequence[str], vn_domains_only: bool) -> Target:
    if vn_domains_only:
        raise _Refused("a URL is not a .VN domain")
    return Target(TargetKind.URL, _screen_url(raw, allowlist))


def _ip_item(raw: str, vn_domains_only: bool) -> Target:
    if vn_domains_only:
        raise _Refused("an IP address is not a .VN domain")
    return Target(TargetKind.IP, _screen_ip(raw))


def screen_targets(
    *,
    domains: Iterable[str],
    urls: Iterable[str],
    ip_addresses: Iterable[str],
    never_block: Iterable[str],
    vn_domains_only: bool = False,
) -> ScreenResult:
    """Screen every item of a request; duplicates (after normalisation) are kept once.

    An IP address written among the domains is screened as an IP address. With ``vn_domains_only``
    (a request to revoke a .VN domain) only domains under ``.vn`` can be acted on.
    """
    allowlist = _normalised_allowlist(never_block)
    accepted: list[Target] = []
    refused: list[Refusal] = []
    seen: set[Target] = set()

    def keep(target: Target) -> None:
        if target not in seen:
            seen.add(target)
            accepted.append(target)

    for raw in domains:
        try:
            keep(_domain_item(raw, allowlist, vn_domains_only))
        except _Refused as exc:
            refused.append(Refusal(raw, str(exc)))
    for raw in urls:
        try:
            keep(_url_item(raw, allowlist, vn_domains_only))
        except _Refused as exc:
            refused.append(Refusal(raw, str(exc)))
    for raw in ip_addresses:
        try:
            keep(_ip_item(raw, vn_domains_only))
        except _Refused as exc:
            refused.append(Refusal(raw, str(exc)))
    return ScreenResult(tuple(accepted), tuple(refused))
