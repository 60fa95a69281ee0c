"""Screening of domain-block targets: the never-block allowlist, reserved IP ranges, IDNA, URLs."""

from __future__ import annotations

import pytest

from bus389.consumers.ict.screening import (
    SPECIAL_RANGES,
    Target,
    TargetKind,
    normalise_domain,
    screen_domain,
    screen_ip,
    screen_targets,
    screen_url,
)

ALLOW = ("gov.vn", "shopee.vn", "facebook.com", "mua-bán.vn", "shop.zalo.me")


# --- domains ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("hang-gia.example.vn", "hang-gia.example.vn"),
        ("  Hang-Gia.Example.VN.  ", "hang-gia.example.vn"),
        ("*.hang-gia.example.vn", "hang-gia.example.vn"),
        ("điện-thoại-rẻ.vn", "xn--in-thoi-r-pgb8634f9ia4e.vn"),
        ("ĐIỆN-THOẠI-RẺ.VN", "xn--in-thoi-r-pgb8634f9ia4e.vn"),
        ("xn--in-thoi-r-pgb8634f9ia4e.vn", "xn--in-thoi-r-pgb8634f9ia4e.vn"),
    ],
)
def test_domains_normalise_to_lowercase_a_labels(raw: str, expected: str) -> None:
    assert normalise_domain(raw) == expected


def test_idna_agrees_with_plain_punycode() -> None:
    # An independent check of the A-label used above (RFC 3492 via the standard library).
    label = "điện-thoại-rẻ"
    assert normalise_domain(f"{label}.vn") == "xn--" + label.encode("punycode").decode("ascii") + ".vn"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("vn", "top-level"),
        ("bad..example.vn", "not a valid domain"),
        ("-bad.example.vn", "not a valid domain"),
        ("bad domain.vn", "not a domain"),
        ("a" * 64 + ".vn", "not a valid domain"),
        (".".join(["abcdefghi"] * 26) + ".vn", "too long"),
        ("user@example.vn", "not a domain"),
        ("example.123", "numeric top-level"),
    ],
)
def test_invalid_domains_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalise_domain(raw)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("gov.vn", "on the never-block list"),
        ("GOV.VN.", "on the never-block list"),
        ("quangngai.gov.vn", "under gov.vn"),
        ("a.b.c.quangngai.gov.vn", "under gov.vn"),
        ("*.shopee.vn", "on the never-block list"),
        ("mall.shopee.vn", "under shopee.vn"),
        ("m.facebook.com", "under facebook.com"),
        # The allowlist entry is an IDN: matched after normalisation, in either form.
        ("mua-bán.vn", "on the never-block list"),
        ("shop.MUA-BÁN.vn", "under xn--mua-bn-tta.vn"),
        ("shop.xn--mua-bn-tta.vn", "under xn--mua-bn-tta.vn"),
        # Blocking a parent would block the allowlisted name (the RPZ writes *.name too).
        ("zalo.me.", "would also block shop.zalo.me"),
        ("com.vn", "public suffix"),
        ("edu.vn", "public suffix"),
    ],
)
def test_allowlisted_names_their_subdomains_and_parents_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        screen_domain(raw, ALLOW)


@pytest.mark.parametrize(
    "raw",
    [
        "notgov.vn",  # a suffix match on the text, not on a label boundary
        "shopee.vn.example.vn",  # contains the allowlisted name, but is not under it
        "fakeshopee.vn",
        "gov.vn.evil.com",
    ],
)
def test_look_alikes_of_allowlisted_names_are_not_protected(raw: str) -> None:
    assert screen_domain(raw, ALLOW) == raw


# --- IP addresses -----------------------------------------------------------------------------------


def _inside(net: str) -> str:
    import ipaddress

    network = ipaddress.ip_network(net)
    # An address inside the range (not the first, which for some is also special in another way).
    return str(network.network_address + min(1, network.num_addresses - 1))


@pytest.mark.parametrize(("network", "reason"), [(str(n), r) for n, r in SPECIAL_RANGES])
def test_every_special_purpose_range_is_refused(network: str, reason: str) -> None:
    address = _inside(network)
    with pytest.raises(ValueError, match="not a public address"):
        screen_ip(address)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("0.0.0.0", "unspecified"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("::ffff:10.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("2002:c000:0204::1", "6to4"),
        ("64:ff9b::808:808", "NAT64"),
        ("4000::1", "outside the IPv6 global unicast"),
        ("10.0.0.0/24", "private"),
        ("172.15.255.0/24", None),  # just below 172.16/12: public
        ("100.63.255.0/24", None),
    ],
)
def test_reserved_addresses_are_refused_naming_the_range(address: str, reason: str | None) -> None:
    if reason is None:
        assert screen_ip(address) == address
        return
    with pytest.raises(ValueError, match=reason):
        screen_ip(address)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("45.77.10.20", "45.77.10.20"),
        (" 45.77.10.20 ", "45.77.10.20"),
        ("45.77.10.20/32", "45.77.10.20"),
        ("45.77.10.0/24", "45.77.10.0/24"),
        ("2606:4700:0000::1111", "2606:4700::1111"),
        ("[2606:4700::1111]", "2606:4700::1111"),
        ("2606:4700:10::/48", "2606:4700:10::/48"),
    ],
)
def test_public_addresses_and_networks_are_kept_in_canonical_form(raw: str, expected: str) -> None:
    assert screen_ip(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("45.77.0.0/16", "broader than /24"),
        ("2606:4700::/32", "broader than /48"),
        ("45.77.10.5/24", "host bits set"),
        ("45.77.10", "not an IP"),
        ("not-an-ip", "not an IP"),
    ],
)
def test_broad_or_malformed_networks_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        screen_ip(raw)


# --- URLs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://Hang-Gia.Example.VN/ao-khoac?id=1", "https://hang-gia.example.vn/ao-khoac?id=1"),
        ("hang-gia.example.vn/shop", "http://hang-gia.example.vn/shop"),
        ("http://hang-gia.example.vn:8080", "http://hang-gia.example.vn:8080/"),
        ("https://điện-thoại-rẻ.vn/x", "https://xn--in-thoi-r-pgb8634f9ia4e.vn/x"),
        ("http://45.77.10.20/x", "http://45.77.10.20/x"),
        ("http://[2606:4700::1111]/x", "http://[2606:4700::1111]/x"),
    ],
)
def test_urls_are_normalised(raw: str, expected: str) -> None:
    assert screen_url(raw, ALLOW) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("https://shopee.vn/shop/123", "never-block"),
        ("https://www.facebook.com/hanggia", "under facebook.com"),
        ("ftp://hang-gia.example.vn/", "scheme 'ftp'"),
        ("http://10.0.0.1/admin", "private"),
        ("http:///nohost", "without a host"),
        ("http://hang-gia.example.vn:99999/", "not a URL"),
    ],
)
def test_urls_on_allowlisted_or_reserved_hosts_are_refused(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        screen_url(raw, ALLOW)


# --- a whole request --------------------------------------------------------------------------------


def test_a_request_keeps_the_good_items_once_and_names_each_refused_one() -> None:
    result = screen_targets(
        domains=["Hang-Gia.example.vn", "hang-gia.example.vn.", "x.gov.vn", "45.77.10.20"],
        urls=["https://hang-gia.example.vn/a", "https://shopee.vn/a"],
        ip_addresses=["45.77.10.20", "192.168.0.1"],
        never_block=ALLOW,
    )
    assert result.accepted == (
        Target(TargetKind.DOMAIN, "hang-gia.example.vn"),
        Target(TargetKind.IP, "45.77.10.20"),
        Target(TargetKind.URL, "https://hang-gia.example.vn/a"),
    )
    assert [r.item for r in result.refused] == ["x.gov.vn", "https://shopee.vn/a", "192.168.0.1"]
    assert all(r.reason for r in result.refused)


def test_a_vn_domain_revocation_refuses_everything_but_vn_domains() -> None:
    result = screen_targets(
        domains=["hang-gia.example.vn", "hang-gia.example.com"],
        urls=["https://hang-gia.example.vn/a"],
        ip_addresses=["45.77.10.20"],
        never_block=ALLOW,
        vn_domains_only=True,
    )
    assert result.accepted == (Target(TargetKind.DOMAIN, "hang-gia.example.vn"),)
    assert [(r.item, r.reason) for r in result.refused] == [
        ("hang-gia.example.com", "not a .VN domain"),
        ("https://hang-gia.example.vn/a", "a URL is not a .VN domain"),
        ("45.77.10.20", "an IP address is not a .VN domain"),
    ]


def test_the_default_allowlist_protects_the_platforms_and_government() -> None:
    from bus389.settings import Settings

    never_block = Settings().ict.never_block
    for name in ("quangngai.gov.vn", "shopee.vn", "www.lazada.vn", "tiki.vn", "zalo.me", "m.youtube.com"):
        with pytest.raises(ValueError, match="never-block"):
            screen_domain(name, never_block)
