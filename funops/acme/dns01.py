"""DNS-01 through RFC 2136: TXT records added to the zone's primary by a TSIG-signed dynamic update
(dnspython), visible on every authoritative server of the zone before the CA is asked to look, and
deleted again afterwards, whatever happened.

Only the values added here are deleted (not the whole record set): two orders for the same name
(a wildcard and its base name, or two runs) each keep their own value until they are done.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from . import AcmeError, Dns01Config

if TYPE_CHECKING:
    import dns.message
    import dns.tsig

log = logging.getLogger(__name__)

TTL = 60
QUERY_SECONDS = 5.0  # one DNS query or update
POLL_SECONDS = 1.0  # between two looks at the authoritative servers


def challenge_name(domain: str) -> str:
    """Where DNS-01 looks for `domain`: `_acme-challenge.<name>`, a wildcard's base name."""
    base = domain[2:] if domain.startswith("*.") else domain
    return f"_acme-challenge.{base.rstrip('.')}."


@contextlib.contextmanager
def txt_records(config: Dns01Config, records: dict[str, list[str]]) -> Iterator[None]:
    """`records` (name → TXT values) in the zone for the duration: added, waited for on every
    authoritative server, deleted afterwards (in `finally`; a failing delete is logged, not raised)."""
    _update(config, records, add=True)
    try:
        _wait_visible(config, records)
        yield
    finally:
        try:
            _update(config, records, add=False)
        except AcmeError as exc:
            log.warning("removing the DNS-01 records failed (remove them by hand): %s", exc)


def _keyring(config: Dns01Config) -> dns.tsig.Key:
    import dns.tsig

    try:
        return dns.tsig.Key(config.tsig_key_name, config.tsig_secret, config.tsig_algorithm)
    except Exception as exc:  # a secret that is not base64, an unknown algorithm
        raise AcmeError(
            f"the TSIG key {config.tsig_key_name} is unusable: {exc}", challenge="dns-01"
        ) from None


def _zone(config: Dns01Config):  # -> dns.name.Name
    import dns.name

    return dns.name.from_text(config.zone)


def _address(host: str, port: int) -> str:
    """dnspython talks to addresses: a server given by name is resolved by the system once."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0][4][0]
    except OSError as exc:
        raise AcmeError(f"DNS server {host}: cannot resolve its address: {exc}", challenge="dns-01") from None


def _update(config: Dns01Config, records: dict[str, list[str]], *, add: bool) -> None:
    import dns.exception
    import dns.name
    import dns.query
    import dns.rcode
    import dns.tsig
    import dns.update

    zone = _zone(config)
    update = dns.update.UpdateMessage(zone, keyring=_keyring(config))
    for name, values in records.items():
        owner = dns.name.from_text(name)
        if not owner.is_subdomain(zone):
            raise AcmeError(f"{name} is not in the DNS zone {config.zone}", domain=name, challenge="dns-01")
        for value in values:
            if add:
                update.add(owner, TTL, "TXT", _quoted(value))
            else:
                update.delete(owner, "TXT", _quoted(value))
    what = f"{'adding' if add else 'deleting'} the DNS-01 TXT records ({', '.join(records)}) on "
    what += f"{config.server}:{config.port}"
    try:
        answer = dns.query.tcp(
            update, _address(config.server, config.port), port=config.port, timeout=QUERY_SECONDS
        )
    except dns.tsig.PeerError as exc:
        raise AcmeError(
            f"{what}: the server refused TSIG key {config.tsig_key_name} ({exc}; is the secret right?)",
            challenge="dns-01",
        ) from None
    except (OSError, dns.exception.DNSException) as exc:
        raise AcmeError(f"{what} failed: {exc}", challenge="dns-01") from None
    if answer.rcode() != dns.rcode.NOERROR:
        raise AcmeError(
            f"{what}: the server answered {dns.rcode.to_text(answer.rcode())} (is the TSIG key "
            f"{config.tsig_key_name} allowed to update zone {config.zone}?)",
            challenge="dns-01",
        )


def _quoted(value: str) -> str:
    return f'"{value}"'


def authoritative_servers(config: Dns01Config) -> list[tuple[str, int]]:
    """(address, port) of each server the zone's NS records name, asked through the configured
    server; the configured server itself when it cannot tell (then it is the only one we know)."""
    import dns.exception
    import dns.message
    import dns.rdatatype

    own = (_address(config.server, config.port), config.port)
    try:
        ns = _ask(own, dns.message.make_query(_zone(config), "NS"))
    except (OSError, dns.exception.DNSException):
        return [own]
    targets = [rr.target for rrset in ns.answer if rrset.rdtype == dns.rdatatype.NS for rr in rrset]
    glue = {
        rrset.name: [rr.address for rr in rrset] for rrset in ns.additional if rrset.rdtype == dns.rdatatype.A
    }
    found: list[tuple[str, int]] = []
    for target in targets:
        addresses = glue.get(target)
        if addresses is None:
            try:
                reply = _ask(own, dns.message.make_query(target, "A"))
                addresses = [
                    rr.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset
                ]
            except (OSError, dns.exception.DNSException):
                addresses = []
        # The configured server may listen on another port than 53; its own address keeps that port.
        found += [(a, config.port if a == own[0] else 53) for a in addresses]
    return sorted(set(found)) or [own]


def _ask(server: tuple[str, int], query: dns.message.Message) -> dns.message.Message:
    import dns.flags
    import dns.query

    query.flags &= ~dns.flags.RD  # an authoritative answer, not a resolver's cache
    return dns.query.udp(query, server[0], port=server[1], timeout=QUERY_SECONDS)


def _wait_visible(config: Dns01Config, records: dict[str, list[str]]) -> None:
    import dns.exception
    import dns.message
    import dns.rdatatype

    servers = authoritative_servers(config)
    deadline = time.monotonic() + config.propagation_seconds
    waiting = {(server, name) for server in servers for name in records}
    while True:
        for server, name in sorted(waiting):
            try:
                reply = _ask(server, dns.message.make_query(name, "TXT"))
            except (OSError, dns.exception.DNSException):
                continue
            seen = {
                b"".join(rr.strings).decode()
                for rrset in reply.answer
                if rrset.rdtype == dns.rdatatype.TXT
                for rr in rrset
            }
            if set(records[name]) <= seen:
                waiting.discard((server, name))
        if not waiting:
            return
        if time.monotonic() >= deadline:
            missing = ", ".join(f"{name} on {addr}:{port}" for (addr, port), name in sorted(waiting))
            raise AcmeError(
                f"the DNS-01 TXT records did not appear within {config.propagation_seconds:g} s: {missing}",
                challenge="dns-01",
            )
        time.sleep(POLL_SECONDS)
