"""A bundle sealed to a node's agent certificate in-process: the CMS `openssl cms -encrypt -binary
-aes-256-gcm -recip CERT -outform DER` writes (RFC 5083 AuthEnvelopedData, RFC 5753 ECDH key
agreement), which the node opens with `openssl cms -decrypt` (node/openssl.py) — one format, no
process per node (5,000 of them were most of a large fleet's publish).

For an EC recipient (the agents' keys are P-256): an ephemeral key on its curve, ECDH, the X9.63 KDF
with SHA-1 over ECC-CMS-SharedInfo (openssl's default, dhSinglePass-stdDH-sha1kdf-scheme), the
content key wrapped with AES-256 key wrap, the content in AES-256-GCM (12-byte nonce, 16-byte tag, no
authenticated attributes). Any other key type goes to the openssl binary, as before."""

from __future__ import annotations

import os
import struct

from ..node import openssl

AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23"
DATA = "1.2.840.113549.1.7.1"
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
ECDH_SHA1_KDF = "1.3.133.16.840.63.0.2"  # dhSinglePass-stdDH-sha1kdf-scheme
AES256_WRAP = "2.16.840.1.101.3.4.1.45"
AES256_GCM = "2.16.840.1.101.3.4.1.46"
TAG_BYTES = 16


def seal(certificate_pem: bytes, data: bytes) -> bytes:
    """`data` encrypted to the holder of the certificate's key (CMS, DER), as openssl.seal does."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, keywrap, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

    cert = x509.load_pem_x509_certificate(certificate_pem)
    recipient = cert.public_key()
    if not isinstance(recipient, ec.EllipticCurvePublicKey):
        return openssl.seal(certificate_pem, data)
    ephemeral = ec.generate_private_key(recipient.curve)
    wrap_algorithm = _seq(_oid(AES256_WRAP))
    shared_info = _seq(wrap_algorithm, _tlv(0xA2, _octets(struct.pack(">I", 256))))
    # SHA-1 here is a KDF (openssl's CMS default), not a signature
    kek = X963KDF(hashes.SHA1(), 32, shared_info).derive(ephemeral.exchange(ec.ECDH(), recipient))
    content_key, nonce = os.urandom(32), os.urandom(12)
    encrypted = AESGCM(content_key).encrypt(nonce, data, None)
    ciphertext, tag = encrypted[:-TAG_BYTES], encrypted[-TAG_BYTES:]
    point = ephemeral.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    originator = _tlv(0xA0, _tlv(0xA1, _seq(_oid(EC_PUBLIC_KEY)) + _tlv(0x03, b"\0" + point)))
    issuer_and_serial = _seq(cert.issuer.public_bytes(), _int(cert.serial_number))
    recipient_keys = _seq(_seq(issuer_and_serial, _octets(keywrap.aes_key_wrap(kek, content_key))))
    agree = _tlv(0xA1, _int(3) + originator + _seq(_oid(ECDH_SHA1_KDF), wrap_algorithm) + recipient_keys)
    content = _seq(
        _oid(DATA), _seq(_oid(AES256_GCM), _seq(_octets(nonce), _int(TAG_BYTES))), _tlv(0x80, ciphertext)
    )
    enveloped = _seq(_int(0), _tlv(0x31, agree), content, _octets(tag))
    return _seq(_oid(AUTH_ENVELOPED_DATA), _tlv(0xA0, enveloped))


# DER, the little of it a CMS envelope needs.


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray((40 * arcs[0] + arcs[1],))
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        while arc := arc >> 7:
            chunk.append(0x80 | (arc & 0x7F))
        body += bytes(reversed(chunk))
    return _tlv(0x06, bytes(body))
