#!/usr/bin/env python3
"""A partner system in another language: obtains a Schakel token and verifies it.

Uses only the Python standard library to talk to Schakel (gRPC-Web over
HTTPS/1.1, protobuf encoded by hand) and a standard JOSE library (joserfc) to
verify the token against the published JWK set, exactly as an external
system would. Exit code 0 and a line "verified sub=... kid=..." on success.

Usage: SCHAKEL_PASSWORD=... jwks_client.py URL CA_CERT USERNAME
"""

import http.client
import json
import os
import ssl
import struct
import sys
import urllib.parse
import warnings

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def read_varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def string_fields(message):
    """Length-delimited fields of a protobuf message: {number: bytes}."""
    fields, i = {}, 0
    while i < len(message):
        key, i = read_varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, i = read_varint(message, i)
            fields[number] = message[i : i + length]
            i += length
        elif wire == 0:
            _, i = read_varint(message, i)
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return fields


def grpc_web_call(url, ca_cert, method, message):
    parsed = urllib.parse.urlparse(url)
    context = ssl.create_default_context(cafile=ca_cert)
    conn = http.client.HTTPSConnection(parsed.hostname, parsed.port, context=context, timeout=30)
    body = b"\x00" + struct.pack(">I", len(message)) + message
    conn.request(
        "POST",
        f"/schakel.v1.IdentityService/{method}",
        body=body,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "accept": "application/grpc-web+proto"},
    )
    response = conn.getresponse()
    data = response.read()
    status = response.getheader("grpc-status")
    if status not in (None, "0"):
        raise RuntimeError(f"{method}: grpc-status {status}: {response.getheader('grpc-message')}")
    reply, i = None, 0
    while i < len(data):
        flag, length = data[i], struct.unpack(">I", data[i + 1 : i + 5])[0]
        frame = data[i + 5 : i + 5 + length]
        i += 5 + length
        if flag & 0x80:
            trailers = dict(line.split(":", 1) for line in frame.decode().strip().split("\r\n") if ":" in line)
            code = trailers.get("grpc-status", "0").strip()
            if code != "0":
                raise RuntimeError(f"{method}: grpc-status {code}: {trailers.get('grpc-message', '').strip()}")
        else:
            reply = frame
    if reply is None:
        raise RuntimeError(f"{method}: no reply message")
    return reply


def main():
    url, ca_cert, username = sys.argv[1:4]
    password = os.environ["SCHAKEL_PASSWORD"]
    grant = field_bytes(1, username.encode()) + field_bytes(2, password.encode())
    reply = string_fields(grpc_web_call(url, ca_cert, "IssueToken", field_bytes(1, grant)))
    token = reply[1].decode()
    jwks_json = string_fields(grpc_web_call(url, ca_cert, "GetJwks", b""))[1].decode()

    keys = KeySet.import_key_set(json.loads(jwks_json))
    with warnings.catch_warnings():
        # RFC 9864 deprecates the name "EdDSA" in favour of "Ed25519"; Schakel
        # issues EdDSA (Ed25519 keys), which every JOSE library understands.
        warnings.simplefilter("ignore")
        decoded = jwt.decode(token, keys, algorithms=["EdDSA"])
        registry = jwt.JWTClaimsRegistry(
            aud={"essential": True, "value": "schakel"},
            iss={"essential": True},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(decoded.claims)

        # The same library must refuse a token whose payload was changed.
        header, payload, signature = token.split(".")
        forged = header + "." + payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
        try:
            jwt.decode(forged, keys, algorithms=["EdDSA"])
            print("forged token accepted", file=sys.stderr)
            return 1
        except (JoseError, ValueError):
            pass

    print(f"verified sub={decoded.claims['sub']} kid={decoded.header['kid']} alg={decoded.header['alg']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
