"""The lab's ACME CA: Debian's `pebble` and a BIND (`named`) authoritative for `lab.test`, per slot,
on one host loopback address (127.0.<slot>.250).

    python -m lab.acme up|down|status

- BIND listens on 127.0.S.250:53 only, serves `lab.test` (nodeK.lab.test → 127.0.S.K for the first
  nodes, www.lab.test → nodes 1 and 2) and takes RFC 2136 updates signed with a TSIG key made by
  tsig-keygen: DNS-01's TXT records, and A records tests add for their own names.
- pebble serves ACME on https://127.0.S.250:14000/dir, its management API (issuing roots) on :15000,
  validates HTTP-01 on port 80 of whatever address BIND gives (the edge nodes' nginx) and resolves
  through that BIND. Its HTTPS certificate comes from a throwaway CA made here: only the tests
  trust it (`ca_bundle`). PEBBLE_VA_NOSLEEP=1; never PEBBLE_VA_ALWAYS_VALID (validation is real).
  One external account binding key (kid `funops-lab`) is configured, not required.

State (keys, configs, logs, pid files) lives in <lab dir>/acme; `down` stops the two processes it
started (by their pid files, checked against their command line) and keeps the keys.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import json
import re
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import daemons
from .config import LabError, lab_dir, lab_slot

CA_HOST = 250  # 127.0.<slot>.250: above any node count the lab is used with
ACME_PORT = 14000
MANAGEMENT_PORT = 15000
DNS_PORT = 53
ZONE = "lab.test."
ZONE_NODES = 20  # nodeK.lab.test for K = 1..20
TSIG_NAME = "funops-lab"
TSIG_ALGORITHM = "hmac-sha256"
EAB_KID = "funops-lab"


@dataclass(frozen=True)
class AcmeLab:
    directory: str  # the ACME directory URL
    management: str  # pebble's management API (GET /roots/0: the issuing root)
    ca_bundle: str  # the root of pebble's own HTTPS certificate
    dns_server: str
    dns_port: int
    zone: str
    tsig_key_name: str
    tsig_algorithm: str
    tsig_secret: str
    eab_kid: str
    eab_hmac_key: str  # base64url

    def fetch_root(self) -> bytes:
        """The root pebble issues under (made anew at each pebble start), PEM."""
        import requests

        response = requests.get(f"{self.management}/roots/0", verify=self.ca_bundle, timeout=10)
        response.raise_for_status()
        return response.content


def address() -> str:
    return f"127.0.{lab_slot()}.{CA_HOST}"


def state_dir() -> Path:
    return lab_dir() / "acme"


def up() -> AcmeLab:
    """Start BIND and pebble for this slot (idempotent: kept when both answer)."""
    info = _info()
    if info is not None and _answers(info):
        return info
    down()
    d = state_dir()
    d.mkdir(parents=True, exist_ok=True)
    _ensure_https_ca(d)
    secret = _ensure_tsig(d)
    eab = _ensure_eab(d)
    _write_named(d)
    _write_pebble(d, eab)
    _ensure_address()
    processes = {
        "named": daemons.start(d, "named", ["named", "-f", "-c", str(d / "named.conf")], env={}),
        "pebble": daemons.start(
            d,
            "pebble",
            ["pebble", "-config", str(d / "pebble.json"), "-dnsserver", f"{address()}:{DNS_PORT}"],
            env={"PEBBLE_VA_NOSLEEP": "1"},
        ),
    }
    info = AcmeLab(
        directory=f"https://{address()}:{ACME_PORT}/dir",
        management=f"https://{address()}:{MANAGEMENT_PORT}",
        ca_bundle=str(d / "https-ca.pem"),
        dns_server=address(),
        dns_port=DNS_PORT,
        zone=ZONE,
        tsig_key_name=TSIG_NAME,
        tsig_algorithm=TSIG_ALGORITHM,
        tsig_secret=secret,
        eab_kid=EAB_KID,
        eab_hmac_key=eab,
    )
    daemons.wait_up(processes, lambda: _answers(info), d, "the lab CA", 30, down)
    (d / "info.json").write_text(json.dumps(asdict(info), indent=2))
    return info


def down() -> None:
    """Stop this slot's named and pebble (only the processes whose pid files this module wrote)."""
    d = state_dir()
    daemons.stop(d, ("pebble", "named"), grace=5)
    (d / "info.json").unlink(missing_ok=True)


def status() -> dict[str, object]:
    d = state_dir()
    info = _info()
    return {
        "address": address(),
        "named": daemons.pid(d, "named"),
        "pebble": daemons.pid(d, "pebble"),
        "answering": bool(info and _answers(info)),
        "directory": info.directory if info else None,
    }


def current() -> AcmeLab | None:
    """The running lab CA of this slot, if any."""
    info = _info()
    return info if info is not None and _answers(info) else None


# --- processes ---


def _ensure_address() -> None:
    """named listens only on addresses an interface has (it does not bind the rest of 127/8 that
    Linux routes to lo): give lo this slot's CA address, once (kept until the machine restarts)."""
    shown = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=False
    )
    if f"inet {address()}/" in shown.stdout:
        return
    added = subprocess.run(
        ["ip", "addr", "add", f"{address()}/32", "dev", "lo"], capture_output=True, text=True
    )
    if added.returncode != 0:
        raise LabError(f"ip addr add {address()}/32 dev lo failed: {added.stderr.strip()}")


def _info() -> AcmeLab | None:
    try:
        return AcmeLab(**json.loads((state_dir() / "info.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _answers(info: AcmeLab) -> bool:
    import requests

    try:
        requests.get(info.directory, verify=info.ca_bundle, timeout=3).raise_for_status()
    except (requests.RequestException, OSError):
        return False
    probe = subprocess.run(
        [
            "dig",
            "+short",
            "+norecurse",
            "+time=2",
            "+tries=1",
            "-p",
            str(info.dns_port),
            f"@{info.dns_server}",
            f"ns.{info.zone}",
            "A",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0 and address() in probe.stdout


# --- files ---


def _ensure_https_ca(d: Path) -> None:
    """A throwaway CA and, under it, pebble's HTTPS certificate for 127.0.S.250 (and `pebble`)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_file = d / "https.pem"
    if cert_file.exists() and address() in cert_file.with_suffix(".names").read_text(errors="replace"):
        return
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"funops lab ACME HTTPS CA (slot {lab_slot()})")]
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("pebble"),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address(address())),
    ]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pebble")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "https-ca.pem").write_bytes(ca.public_bytes(s.Encoding.PEM))
    key_file = d / "https.key"
    key_file.touch(mode=0o600)
    key_file.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
    cert_file.write_bytes(leaf.public_bytes(s.Encoding.PEM))
    cert_file.with_suffix(".names").write_text(address())


def _ensure_tsig(d: Path) -> str:
    """The TSIG key BIND accepts updates with (tsig-keygen's output, included by named.conf)."""
    key_file = d / "tsig.key"
    if not key_file.exists():
        made = subprocess.run(
            ["tsig-keygen", "-a", TSIG_ALGORITHM, TSIG_NAME], capture_output=True, text=True, check=True
        )
        key_file.touch(mode=0o600)
        key_file.write_text(made.stdout)
    found = re.search(r'secret "([^"]+)"', key_file.read_text())
    if not found:
        raise LabError(f"{key_file}: no secret in it (delete it to make a new one)")
    return found.group(1)


def _ensure_eab(d: Path) -> str:
    eab_file = d / "eab.key"
    if not eab_file.exists():
        eab_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("="))
    return eab_file.read_text().strip()


def _write_named(d: Path) -> None:
    slot, addr = lab_slot(), address()
    conf = f"""options {{
    directory "{d}";
    pid-file "{d}/named.pid.bind";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {DNS_PORT} {{ {addr}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ 127.0.0.0/8; }};
    allow-transfer {{ none; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
include "{d}/tsig.key";
zone "{ZONE.rstrip(".")}" {{
    type primary;
    file "{d}/lab.test.zone";
    allow-update {{ key "{TSIG_NAME}"; }};
}};
logging {{
    channel lab {{ stderr; severity info; print-time yes; }};
    category default {{ lab; }};
}};
"""
    records = [f"ns A {addr}"] + [f"node{k} A 127.0.{slot}.{k}" for k in range(1, ZONE_NODES + 1)]
    records += [f"www A 127.0.{slot}.1", f"www A 127.0.{slot}.2"]
    zone = f"""$TTL 60
$ORIGIN {ZONE}
@ SOA ns.{ZONE} hostmaster.{ZONE} {int(time.time())} 60 60 3600 60
@ NS ns.{ZONE}
""" + "".join(f"{r}\n" for r in records)
    (d / "named.conf").write_text(conf)
    zone_file = d / "lab.test.zone"
    zone_file.write_text(zone)
    for journal in d.glob("lab.test.zone.jnl"):
        journal.unlink()  # the zone starts from the file again: updates of an earlier run are gone
    for argv in (["named-checkconf", str(d / "named.conf")], ["named-checkzone", ZONE, str(zone_file)]):
        checked = subprocess.run(argv, capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            raise LabError(f"{' '.join(argv)} failed:\n{checked.stdout}{checked.stderr}")


def _write_pebble(d: Path, eab: str) -> None:
    config = {
        "pebble": {
            "listenAddress": f"{address()}:{ACME_PORT}",
            "managementListenAddress": f"{address()}:{MANAGEMENT_PORT}",
            "certificate": str(d / "https.pem"),
            "privateKey": str(d / "https.key"),
            "httpPort": 80,
            "tlsPort": 443,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "externalAccountMACKeys": {EAB_KID: eab},
            "domainBlocklist": [],
            "retryAfter": {"authz": 1, "order": 1},
        }
    }
    (d / "pebble.json").write_text(json.dumps(config, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.acme", description="The lab's ACME CA (pebble + BIND)."
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            info = up()
            print(
                f"lab acme: {info.directory} (CA bundle {info.ca_bundle}); "
                f"DNS {info.dns_server}:{info.dns_port}"
            )
        elif args.command == "down":
            down()
            print("lab acme: down")
        else:
            print(json.dumps(status(), indent=2))
    except (LabError, subprocess.CalledProcessError, OSError) as e:
        print(f"lab acme: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
