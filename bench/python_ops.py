#!/usr/bin/env python3
"""The Python `cryptography` side of bench/crypto_ops.sh: operations per second for the same
operations and sizes that `cargo run --release --example ops` measures on our side.
Prints one JSON object {name: ops_per_second}."""
import json
import os
import sys
import time

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))


def rate(fn, min_iters=3):
    """Calls fn repeatedly for about SECONDS; returns calls per second."""
    fn()  # warm-up
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= SECONDS and n >= min_iters:
            return n / elapsed


def main():
    out = {}
    f = Fernet(Fernet.generate_key())
    for name, size in (("fernet_roundtrip_1KiB", 1024), ("fernet_roundtrip_64MiB", 64 << 20)):
        msg = os.urandom(size)
        out[name] = rate(lambda: f.decrypt(f.encrypt(msg)))

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    ct = key.public_key().encrypt(b"x" * 32, oaep)
    out["rsa3072_oaep_decrypt"] = rate(lambda: key.decrypt(ct, oaep))
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    msg = b"m" * 1024
    out["rsa3072_pss_sign"] = rate(lambda: key.sign(msg, pss, hashes.SHA256()))

    ec_key = ec.generate_private_key(ec.SECP256R1())
    sig = ec_key.sign(msg, ec.ECDSA(hashes.SHA256()))
    out["p256_sign"] = rate(lambda: ec_key.sign(msg, ec.ECDSA(hashes.SHA256())))
    pub = ec_key.public_key()
    out["p256_verify"] = rate(lambda: pub.verify(sig, msg, ec.ECDSA(hashes.SHA256())))

    ed = ed25519.Ed25519PrivateKey.generate()
    esig = ed.sign(msg)
    out["ed25519_sign"] = rate(lambda: ed.sign(msg))
    epub = ed.public_key()
    out["ed25519_verify"] = rate(lambda: epub.verify(esig, msg))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
