#!/usr/bin/env python3
"""Writes an RSA key pair and RS256 tokens for the JWT benchmark scenarios.

`--dir` gets `jwt-key.pem` (private), `jwt-pub.pem` (public, for the gateway
bundle and haproxy's `jwt_verify`), and one wrk script per token count
(`tokens-N.lua`) that sends `Authorization: Bearer <token>`, picking one of N
distinct tokens at random per request (uniform; a strict round-robin over more
tokens than any cache holds defeats every eviction policy) (distinct `sub`, so one rate-limit key per token). Tokens are
signed with the `openssl` CLI (one call per token) and expire in a day.
"""

import argparse
import base64
import json
import pathlib
import subprocess
import time

ISSUER = "https://idp.bench.invalid/"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dir", required=True)
    p.add_argument("--counts", required=True, help="comma-separated token counts, e.g. 1,256")
    a = p.parse_args()
    d = pathlib.Path(a.dir)
    key, pub = d / "jwt-key.pem", d / "jwt-pub.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", str(key)], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)],
                   check=True, capture_output=True)
    header = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    exp = int(time.time()) + 86400
    counts = sorted({int(c) for c in a.counts.split(",")})
    tokens = []
    for i in range(max(counts)):
        claims = {"iss": ISSUER, "sub": f"consumer-{i:05d}", "exp": exp,
                  "scope": "read:items", "client_id": "bench-client"}
        signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        tokens.append(f"{signing_input}.{b64(sig)}")
    for n in counts:
        lines = ",\n".join(f'  "{t}"' for t in tokens[:n])
        (d / f"tokens-{n}.lua").write_text(
            "local tokens = {\n" + lines + "\n}\n"
            "request = function()\n"
            '  local t = tokens[math.random(#tokens)]\n'
            '  return wrk.format(nil, nil, {["Authorization"] = "Bearer " .. t})\nend\n')


if __name__ == "__main__":
    main()
