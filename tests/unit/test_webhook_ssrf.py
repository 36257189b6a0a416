"""The SSRF guard: webhook URLs reaching inside the server's network are refused.

Names resolve through an injected resolver, so nothing here asks a DNS server.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

import pytest

from workflows.webhooks.ssrf import (
    ForbiddenAddress,
    MalformedUrl,
    UnresolvableHost,
    UnsupportedScheme,
    check_url,
    forbidden_because,
    parse_allowed_cidrs,
)

PUBLIC_V4, PUBLIC_V6 = "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"
LOOPBACK_ONLY = parse_allowed_cidrs("127.0.0.0/8")


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], Iterable[str]]:
    """A resolver answering from ``table``; an unknown name fails like a DNS miss."""

    def resolve(host: str, port: int) -> Iterable[str]:
        if host not in table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return table[host]

    return resolve


NAMES = resolver({
    "hooks.haizhu.example": [PUBLIC_V4, PUBLIC_V6],
    "intranet.example": ["10.1.2.3"],
    "rebinding.example": [PUBLIC_V4, "127.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "nothing.example": [],
    "localhost": ["127.0.0.1", "::1"],
})


def test_a_public_host_passes_and_its_first_address_is_the_one_to_connect_to() -> None:
    # When a public name is checked
    target = check_url("https://hooks.haizhu.example/webhooks?org=1", (), NAMES)

    # Then the target keeps the host for Host and SNI, and pins the checked address
    assert (target.scheme, target.host, target.port) == ("https", "hooks.haizhu.example", 443)
    assert target.address == PUBLIC_V4
    assert target.addresses == (PUBLIC_V4, PUBLIC_V6)


def test_a_public_address_written_in_the_url_needs_no_resolver() -> None:
    def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("an address literal is not resolved")

    assert check_url(f"http://{PUBLIC_V4}:8080/", (), no_dns).address == PUBLIC_V4
    assert check_url(f"http://[{PUBLIC_V6}]/", (), no_dns).port == 80


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.8.9.10:9000/", "loopback"),
    ("http://10.0.0.8/", "private"),
    ("http://10.255.1.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://100.64.0.1/", "not public"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://0.0.0.0:8000/", "unspecified"),
    ("http://[::1]:8000/", "loopback"),
    ("http://[::]/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::5]/", "private"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[::ffff:0.0.0.0]/", "unspecified"),
    ("http://[2002:7f00:1::]/", "loopback"),
    ("http://[64:ff9b::a00:1]/", "private"),
    # not globally reachable, though Python 3.11's is_global says they are (issue 11)
    ("http://192.0.0.8/", "not public"),
    ("http://192.0.0.170/", "private"),
    ("http://192.88.99.1/", "not public"),
    ("http://[3fff::1]/", "not public"),
    ("http://[::ffff:192.0.0.8]/", "not public"),
])
def test_addresses_inside_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ForbiddenAddress, match=reason):
        check_url(url, (), NAMES)


def test_a_hostname_resolving_to_a_private_address_is_refused_without_naming_it() -> None:
    with pytest.raises(ForbiddenAddress, match=r"intranet\.example resolves to an address") \
            as refused:
        check_url("https://intranet.example/hook", (), NAMES)
    # the refusal does not tell the subscriber what the server's DNS answers (issue 11)
    assert "10.1.2.3" not in str(refused.value) and "10.1.2.3" not in refused.value.detail
    with pytest.raises(ForbiddenAddress, match="link-local") as refused:
        check_url("http://metadata.example/", (), NAMES)
    assert "169.254" not in refused.value.detail


@pytest.mark.parametrize("address", ["192.0.0.9", "192.0.0.10", "8.8.8.8", "2001:4860::8888"])
def test_globally_reachable_addresses_inside_special_blocks_pass(address: str) -> None:
    # the registries' exceptions (PCP and TURN anycast) and ordinary public addresses
    assert forbidden_because(ipaddress.ip_address(address)) is None


def test_every_resolved_address_must_pass() -> None:
    # Given a name answering one public and one loopback address
    # Then it is refused: the connection could land on either
    with pytest.raises(ForbiddenAddress, match=r"rebinding\.example resolves to an address "
                                               "that is loopback"):
        check_url("https://rebinding.example/", (), NAMES)


def test_an_allow_listed_loopback_receiver_passes() -> None:
    # Given the operator allows 127.0.0.0/8 (the demo and the tests do)
    # Then the loopback address is allowed
    assert check_url("http://127.0.0.1:8765/hook", LOOPBACK_ONLY, NAMES).address == "127.0.0.1"

    # And an IPv4-mapped loopback address is judged as the IPv4 address it carries
    assert check_url("http://[::ffff:127.0.0.1]:8765/", LOOPBACK_ONLY, NAMES).port == 8765

    # But "localhost" also resolves to ::1, which 127.0.0.0/8 does not cover
    with pytest.raises(ForbiddenAddress, match="localhost resolves to an address that is "
                                               "loopback"):
        check_url("http://localhost:8765/", LOOPBACK_ONLY, NAMES)
    both = parse_allowed_cidrs("127.0.0.0/8, ::1/128")
    assert check_url("http://localhost:8765/", both, NAMES).address == "127.0.0.1"


def test_the_allow_list_covers_only_what_it_names() -> None:
    allowed = parse_allowed_cidrs("10.1.0.0/16")
    assert check_url("https://intranet.example/", allowed, NAMES).address == "10.1.2.3"
    with pytest.raises(ForbiddenAddress):
        check_url("http://10.2.0.1/", allowed, NAMES)
    with pytest.raises(ForbiddenAddress):
        check_url("http://127.0.0.1/", allowed, NAMES)


@pytest.mark.parametrize("url", ["ftp://hooks.haizhu.example/", "file:///etc/passwd",
                                 "gopher://127.0.0.1:6379/_FLUSHALL", "hooks.haizhu.example/x"])
def test_only_http_and_https_are_called(url: str) -> None:
    with pytest.raises(UnsupportedScheme):
        check_url(url, (), NAMES)


@pytest.mark.parametrize("url", ["http:///no-host", "http://hooks.haizhu.example:99999/",
                                 "http://user:pass@hooks.haizhu.example/", "http://[::1/"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(MalformedUrl):
        check_url(url, (), NAMES)


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UnresolvableHost):
        check_url("https://unknown.example/", (), NAMES)
    with pytest.raises(UnresolvableHost):
        check_url("https://nothing.example/", (), NAMES)


def test_refusals_carry_a_stable_reason_for_the_api() -> None:
    with pytest.raises(ForbiddenAddress) as refused:
        check_url("http://10.0.0.1/", (), NAMES)
    assert refused.value.reason == "forbidden_address"
    assert refused.value.url == "http://10.0.0.1/"


def test_allowed_cidrs_parse_from_the_setting() -> None:
    assert [str(n) for n in parse_allowed_cidrs("127.0.0.0/8,::1/128, 10.0.0.1")] == [
        "127.0.0.0/8", "::1/128", "10.0.0.1/32"]
    assert parse_allowed_cidrs("") == ()
    with pytest.raises(ValueError, match="not a network"):
        parse_allowed_cidrs("127.0.0.0/8,localhost")
