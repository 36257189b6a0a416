"""The SSRF guard: which webhook URLs may be called, and the address to connect to.

A subscriber chooses the URL, so a URL must not make the server call into its
own network: a host is refused when any address it resolves to is private,
loopback, link-local, multicast, reserved, unspecified (``0.0.0.0``, ``::``)
or otherwise not globally reachable (Python's ``is_global`` and IANA's
special-purpose registries: ``NOT_GLOBAL``), in IPv4 or IPv6 (an IPv4-mapped IPv6 address is
judged as the IPv4 address it carries), unless an operator allow-listed it
(``NEEDLE_WEBHOOK_ALLOWED_CIDRS``; the demo and the tests allow
``127.0.0.0/8``).  Every address must pass, so that no answer of a
round-robin name reaches inside; the one connected to is an address that was
checked (``transport``), never a second resolution that might differ.  A
refusal names the host and why, never the address a name resolved to.

The resolver is injectable: tests give names whatever addresses they need.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Iterable[str]]
"""``(host, port)`` → the addresses the host resolves to, as strings."""

SCHEMES = {"http": 80, "https": 443}


class UnsafeUrl(ValueError):
    """A webhook URL that may not be called.  ``reason`` is a stable word for logs and APIs."""

    reason = "unsafe_url"

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.detail = detail


class MalformedUrl(UnsafeUrl):
    reason = "malformed_url"


class UnsupportedScheme(UnsafeUrl):
    reason = "unsupported_scheme"


class UnresolvableHost(UnsafeUrl):
    reason = "unresolvable_host"


class ForbiddenAddress(UnsafeUrl):
    """The host is, or resolves to, an address inside a network the server must not call."""

    reason = "forbidden_address"


@dataclass(frozen=True)
class CheckedTarget:
    """A URL that passed the guard, and the address to connect to for it."""

    url: str
    scheme: str
    host: str
    """As written in the URL (lower case, IPv6 without brackets): the Host header and SNI name."""
    port: int
    address: str
    """The first resolved address; every resolved address was checked."""
    addresses: tuple[str, ...]


def parse_allowed_cidrs(text: str) -> tuple[IPNetwork, ...]:
    """``NEEDLE_WEBHOOK_ALLOWED_CIDRS``: comma-separated networks, e.g. ``127.0.0.0/8,::1/128``."""
    networks: list[IPNetwork] = []
    for part in text.split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"webhook allowed CIDRs: {part.strip()!r} is not a network") \
                    from None
    return tuple(networks)


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives ``host``, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def forbidden_because(address: IPAddress) -> str | None:
    """Why a server may not call ``address`` (``"loopback"``, ``"private"``…), or ``None``.

    An IPv6 address that carries an IPv4 address (mapped, 6to4, NAT64) is
    also judged by the address it carries.
    """
    for judged in _judged(address):
        for reason, test in (
            ("unspecified", judged.is_unspecified),
            ("loopback", judged.is_loopback),
            ("link-local", judged.is_link_local),
            ("multicast", judged.is_multicast),
            ("reserved", judged.is_reserved),
            ("private", judged.is_private),
            ("not public", not globally_reachable(judged)),
        ):
            if test:
                return reason
    return None


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

NOT_GLOBAL = tuple(ipaddress.ip_network(network) for network in (
    # IANA's special-purpose registries, the blocks marked not globally reachable
    # (RFC 6890 and its updates).  Python 3.11's ``is_global`` misses some of them:
    # ``192.0.0.8`` (IPv4 dummy address, RFC 7600) passed the guard (issue 11).
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4",
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
))
GLOBAL_EXCEPTIONS = tuple(ipaddress.ip_network(network) for network in (
    # inside those blocks, the ones the registries mark globally reachable
    "192.0.0.9/32", "192.0.0.10/32",  # PCP and TURN anycast
    "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:3::/32", "2001:4:112::/48",
    "2001:20::/28", "2001:30::/28",
))


def globally_reachable(address: IPAddress) -> bool:
    """Python's ``is_global``, and not in a block IANA marks not globally reachable."""
    if not address.is_global:
        return False
    blocked = any(address in network for network in NOT_GLOBAL
                  if network.version == address.version)
    return not blocked or any(address in network for network in GLOBAL_EXCEPTIONS
                              if network.version == address.version)


def _judged(address: IPAddress) -> list[IPAddress]:
    """``address``, then for IPv6 any IPv4 address it carries (the mapped one first)."""
    if isinstance(address, ipaddress.IPv4Address):
        return [address]
    carried: list[IPAddress] = []
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        carried.append(address.sixtofour)
    if address in NAT64:
        carried.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [*carried, address]


def allowed(address: IPAddress, allowed_cidrs: Sequence[IPNetwork]) -> bool:
    """Whether an operator allow-listed ``address`` (an IPv4-mapped one as its IPv4 address)."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    candidates = [address] if mapped is None else [address, mapped]
    return any(candidate in network for network in allowed_cidrs for candidate in candidates
               if candidate.version == network.version)


def check_url(
    url: str,
    allowed_cidrs: Sequence[IPNetwork] = (),
    resolver: Resolver = system_resolver,
) -> CheckedTarget:
    """``url`` checked: the target to connect to, or a named ``UnsafeUrl`` error."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise MalformedUrl(url, f"not a URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsupportedScheme(url, f"only http and https are called, not {scheme or 'none'}")
    host = (parts.hostname or "").lower()
    if not host:
        raise MalformedUrl(url, "the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise MalformedUrl(url, "credentials in a webhook URL are not accepted")
    port = port or SCHEMES[scheme]
    addresses = _resolved(url, host, port, resolver)
    for address in addresses:
        reason = forbidden_because(address)
        if reason is not None and not allowed(address, allowed_cidrs):
            # a name's addresses are not named: the refusal must not tell a subscriber what
            # the server's DNS answers for internal names (issue 11)
            shown = host if str(address) == host else f"{host} resolves to an address that"
            raise ForbiddenAddress(url, f"{shown} is {reason}; only public addresses are "
                                        "called unless an operator allow-lists them")
    return CheckedTarget(
        url=url, scheme=scheme, host=host, port=port, address=str(addresses[0]),
        addresses=tuple(str(address) for address in addresses),
    )


def _resolved(url: str, host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass  # a name: ask the resolver
    try:
        answers = [ipaddress.ip_address(answer.split("%")[0]) for answer in resolver(host, port)]
    except (OSError, UnicodeError, ValueError) as error:
        raise UnresolvableHost(url, f"{host} does not resolve ({error})") from None
    if not answers:
        raise UnresolvableHost(url, f"{host} resolves to no address")
    return answers
