#!/usr/bin/env python3
"""Regenerates the barrier's known-answer vectors with an implementation
independent of the Go code (pyca/cryptography's AESGCM).

    python3 vectors.py   # writes envelope_v1.json, bad_envelopes.json, keyring_v1.json,
                         # shares_v1.txt, bad_shares.json

All keys and nonces are fixed, so the output is deterministic."""
import json
import struct
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def envelope(dek, term, nonce, storage_key, plaintext):
    header = bytes([1]) + struct.pack(">I", term)
    ct = AESGCM(dek).encrypt(nonce, plaintext, header + storage_key.encode())
    return header + nonce + ct


def keyring_plain(active, keys):
    out = struct.pack(">II", active, len(keys))
    for term, installed, key in keys:
        out += struct.pack(">IQ", term, installed) + key
    return out


def keyring_blob(kek, nonce, mode, shares, threshold, plain):
    header = b"SGKR" + bytes([1, mode, shares, threshold])
    return header + nonce + AESGCM(kek).encrypt(nonce, plain, header + b"barrier/keyring")


DEK1 = bytes(range(0x00, 0x20))
DEK7 = bytes(range(0x20, 0x40))
KEK = bytes(range(0xa0, 0xc0))

env_vectors = [
    dict(name="short", data_key=DEK1, term=1, nonce=bytes(range(12)),
         storage_key="secrets/prod/db", plaintext=b'{"password":"hunter2"}'),
    dict(name="empty-value", data_key=DEK1, term=1, nonce=bytes([0xff] * 12),
         storage_key="k", plaintext=b""),
    dict(name="term-7", data_key=DEK7, term=7, nonce=bytes(range(100, 112)),
         storage_key="secrets/\u00e9t\u00e9/key", plaintext=bytes(range(256)) * 2),
]
for v in env_vectors:
    v["envelope"] = envelope(v["data_key"], v["term"], v["nonce"], v["storage_key"], v["plaintext"])


def hexed(v):
    return {k: (x.hex() if isinstance(x, bytes) else x) for k, x in v.items()}


with open("envelope_v1.json", "w") as f:
    json.dump({
        "description": "Barrier value envelopes, format 1: version(1) || term(4, big-endian) || nonce(12) || AES-256-GCM(data_key, nonce, plaintext, aad = version || term || storage_key). Computed with pyca/cryptography by vectors.py. Hex except storage_key and name.",
        "vectors": [hexed(v) for v in env_vectors],
    }, f, indent=2)
    f.write("\n")

good = env_vectors[0]["envelope"]
key = env_vectors[0]["storage_key"]


def flip(b, i, mask=0x01):
    b = bytearray(b)
    b[i] ^= mask
    return bytes(b)


bad = [
    ("empty", key, b""),
    ("header-only", key, good[:5]),
    ("no-tag", key, good[:17]),
    ("truncated-tag", key, good[:-1]),
    ("appended-byte", key, good + b"\x00"),
    ("version-0", key, b"\x00" + good[1:]),
    ("version-2", key, b"\x02" + good[1:]),
    ("term-0", key, good[:1] + struct.pack(">I", 0) + good[5:]),
    ("term-unknown", key, good[:1] + struct.pack(">I", 9) + good[5:]),
    ("term-edited-to-known", key, good[:1] + struct.pack(">I", 7) + good[5:]),
    ("moved-to-other-key", "secrets/prod/db2", good),
    ("moved-to-prefix-key", "secrets/prod/d", good),
    ("flipped-nonce", key, flip(good, 5)),
    ("flipped-ciphertext", key, flip(good, 17)),
    ("flipped-tag", key, flip(good, len(good) - 1, 0x80)),
    ("plaintext-stored-raw", key, env_vectors[0]["plaintext"]),
]
with open("bad_envelopes.json", "w") as f:
    json.dump({
        "description": "Forged or malformed envelopes derived from envelope_v1.json vector 'short'. Opened with a keyring holding term 1 (data_key of 'short') and term 7 (data_key of 'term-7'), each must fail with ErrDecrypt.",
        "cases": [{"name": n, "storage_key": k, "envelope": e.hex()} for n, k, e in bad],
    }, f, indent=2)
    f.write("\n")

ring_vectors = []
for name, mode, shares, threshold, active, keys, nonce in [
    ("provider-one-key", 0, 0, 0, 1, [(1, 1700000000 * 10**9, DEK1)], bytes(range(40, 52))),
    ("shamir-5-of-3-two-keys", 1, 5, 3, 7, [(1, 1700000000 * 10**9, DEK1), (7, 1700000001 * 10**9 + 5, DEK7)], bytes(range(60, 72))),
]:
    plain = keyring_plain(active, keys)
    ring_vectors.append(dict(
        name=name, kek=KEK.hex(), nonce=nonce.hex(), mode=mode, shares=shares, threshold=threshold,
        active=active, keys=[dict(term=t, installed_unix_nano=i, key=k.hex()) for t, i, k in keys],
        plain=plain.hex(), blob=keyring_blob(KEK, nonce, mode, shares, threshold, plain).hex()))

with open("keyring_v1.json", "w") as f:
    json.dump({
        "description": "Sealed keyrings, format 1: header 'SGKR' || 1 || mode || shares || threshold, then nonce(12) || AES-256-GCM(kek, nonce, plain, aad = header || 'barrier/keyring'). plain = active(4) || count(4) || count x (term(4) || installed unix nanos(8) || key(32)), big-endian. Computed with pyca/cryptography by vectors.py.",
        "vectors": ring_vectors,
    }, f, indent=2)
    f.write("\n")


# Unseal shares of KEK for the "shamir-5-of-3-two-keys" keyring, threshold 3,
# x = 1..5, polynomial for byte i: KEK[i] + c1(i) x + c2(i) x^2.
def gf_mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a = ((a << 1) ^ 0x1B) & 0xFF if a & 0x80 else a << 1
        b >>= 1
    return r


def share(secret, x, coeffs):
    ys = []
    for i, s in enumerate(secret):
        y, xp = s, 1
        for c in coeffs(i):
            xp = gf_mul(xp, x)
            y ^= gf_mul(c, xp)
        ys.append(y)
    return bytes(ys + [x])


import base64

assert gf_mul(0x57, 0x83) == 0xC1 and gf_mul(0x57, 0x13) == 0xFE  # FIPS-197 4.2
coeffs = lambda i: [(i * 7 + 1) & 0xFF, (i * 13 + 5) & 0xFF]
with open("shares_v1.txt", "w") as f:
    f.write("# Unseal shares (threshold 3) of the KEK of keyring_v1.json vector shamir-5-of-3-two-keys.\n")
    f.write("# Standard base64 of y-values || x; byte i of the KEK is the constant term of KEK[i] + (7i+1)x + (13i+5)x^2 over GF(2^8).\n")
    for x in range(1, 6):
        f.write(base64.b64encode(share(KEK, x, coeffs)).decode() + "\n")

y0 = share(KEK, 1, coeffs)
bad_shares = [
    ("empty", ""),
    ("whitespace", "   \n"),
    ("not-base64", "this is not base64 at all!!"),
    ("url-safe-alphabet", base64.urlsafe_b64encode(bytes([0xfb] * 32 + [1])).decode()),
    ("unpadded", base64.b64encode(bytes(range(1, 35))[:32]).decode().rstrip("=")),
    ("too-short", base64.b64encode(y0[:-2] + y0[-1:]).decode()),
    ("too-long", base64.b64encode(y0[:-1] + b"\x00" + y0[-1:]).decode()),
    ("x-zero", base64.b64encode(y0[:-1] + b"\x00").decode()),
    ("hex-not-base64", y0.hex()),
]
with open("bad_shares.json", "w") as f:
    json.dump({
        "description": "Malformed unseal shares; each must be refused with ErrInvalidShare without changing progress.",
        "cases": [{"name": n, "share": s} for n, s in bad_shares],
    }, f, indent=2)
    f.write("\n")
