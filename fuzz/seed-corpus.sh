#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/seeds/<target>/ (small, committed; see docs/fuzzing.md).
# Needs: python3 with `cryptography` (the interop venv of scripts/test-setup.sh), the `age`
# and `age-keygen` tools, and, for the passphrase-file seed only, a built `palisade` binary
# (PALISADE_BIN). Keys made here are throwaway test keys; the fixed keys the targets use
# are in fuzz/fixtures/.
set -euo pipefail
cd "$(dirname "$0")"
PY="${PALISADE_TEST_PYTHON:-${PALISADE_TEST_VENV:-$HOME/.cache/palisade-venv}/bin/python}"
PALISADE_BIN="${PALISADE_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}/release/palisade}"
command -v age >/dev/null || { echo "seed-corpus.sh: the age tool is required" >&2; exit 1; }
"$PY" -c 'import cryptography' || { echo "seed-corpus.sh: $PY lacks cryptography" >&2; exit 1; }

rm -rf seeds
mkdir -p seeds/{fernet_token,pem_keys,age_header,sums_file,signature_verify}
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$PY" - <<'PYEOF'
import base64, os, time
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization as s
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519, padding, utils

def w(path, data):
    with open(path, "wb") as f:
        f.write(data)

# --- fernet_token: NOW must match fuzz_targets/fernet_token.rs ---
NOW = 1_700_000_000
key = open("fixtures/fernet.key", "rb").read().strip()
f = Fernet(key)
d = "seeds/fernet_token/"
w(d + "valid", f.encrypt_at_time(b"hello fuzz", NOW - 10))
w(d + "valid-empty", f.encrypt_at_time(b"", NOW))
w(d + "valid-two-blocks-newline", f.encrypt_at_time(b"x" * 20, NOW) + b"\n")
w(d + "expired", f.encrypt_at_time(b"old", NOW - 3600))
w(d + "from-future", f.encrypt_at_time(b"new", NOW + 3600))
w(d + "other-key", Fernet(Fernet.generate_key()).encrypt_at_time(b"hello", NOW))
w(d + "key-padded", Fernet.generate_key())
w(d + "key-unpadded", Fernet.generate_key().rstrip(b"="))

# --- pem_keys: fresh throwaway keys in every format we parse ---
d = "seeds/pem_keys/"
P8, TL, RAW = s.PrivateFormat.PKCS8, s.PrivateFormat.TraditionalOpenSSL, s.PrivateFormat.Raw
PEM, DER, NE = s.Encoding.PEM, s.Encoding.DER, s.NoEncryption()
SPKI, P1 = s.PublicFormat.SubjectPublicKeyInfo, s.PublicFormat.PKCS1
r = rsa.generate_private_key(65537, 2048)
w(d + "rsa-pkcs8.pem", r.private_bytes(PEM, P8, NE))
w(d + "rsa-pkcs1.pem", r.private_bytes(PEM, TL, NE))
w(d + "rsa-pkcs1.der", r.private_bytes(DER, TL, NE))
w(d + "rsa-spki.pem", r.public_key().public_bytes(PEM, SPKI))
w(d + "rsa-pkcs1-pub.pem", r.public_key().public_bytes(PEM, P1))
w(d + "rsa-pkcs1-pub.der", r.public_key().public_bytes(DER, P1))
w(d + "rsa-1024-too-small.der", rsa.generate_private_key(65537, 1024).private_bytes(DER, P8, NE))
e = ec.generate_private_key(ec.SECP256R1())
w(d + "p256-pkcs8.der", e.private_bytes(DER, P8, NE))
w(d + "p256-sec1.pem", b"-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + e.private_bytes(PEM, TL, NE))
w(d + "p256-sec1.der", e.private_bytes(DER, TL, NE))
w(d + "p256-spki.der", e.public_key().public_bytes(DER, SPKI))
w(d + "p384-pkcs8.pem", ec.generate_private_key(ec.SECP384R1()).private_bytes(PEM, P8, NE))
x = ed25519.Ed25519PrivateKey.generate()
w(d + "ed25519-pkcs8.pem", x.private_bytes(PEM, P8, NE))
w(d + "ed25519-spki.pem", x.public_key().public_bytes(PEM, SPKI))
w(d + "ed25519-spki.der", x.public_key().public_bytes(DER, SPKI))
w(d + "ed25519-encrypted.pem", x.private_bytes(PEM, P8, s.BestAvailableEncryption(b"pw")))
w(d + "certificate-label.pem", b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")

# --- signature_verify: selector byte, then a real signature over SEED_MESSAGE (never the
# target's MESSAGE), so seeds reach the end of each verifier and must still be rejected ---
d = "seeds/signature_verify/"
SEED_MESSAGE = b"palisade fuzz seed message"
load = lambda p: s.load_pem_private_key(open(p, "rb").read(), None)
rk, ek, xk = load("fixtures/rsa-2048.pem"), load("fixtures/p256.pem"), load("fixtures/ed25519.pem")
pss = lambda salt: padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
w(d + "rsa-pss-salt32", b"\x00" + rk.sign(SEED_MESSAGE, pss(32), hashes.SHA256()))
w(d + "rsa-pss-salt0", b"\x03" + rk.sign(SEED_MESSAGE, pss(0), hashes.SHA256()))
w(d + "rsa-pss-maxsalt", b"\x06" + rk.sign(SEED_MESSAGE, pss(padding.PSS.MAX_LENGTH), hashes.SHA256()))
w(d + "rsa-pkcs1v15", b"\x09" + rk.sign(SEED_MESSAGE, padding.PKCS1v15(), hashes.SHA256()))
der_sig = ek.sign(SEED_MESSAGE, ec.ECDSA(hashes.SHA256()))
w(d + "p256-der", b"\x01" + der_sig)
rr, ss = utils.decode_dss_signature(der_sig)
w(d + "p256-p1363", b"\x81" + rr.to_bytes(32, "big") + ss.to_bytes(32, "big"))
w(d + "ed25519", b"\x02" + xk.sign(SEED_MESSAGE))
w(d + "ed25519-as-p1363", b"\x82" + xk.sign(SEED_MESSAGE))
PYEOF

# --- age_header: files to the fixed identity, to others, armored, passphrase ---
d=seeds/age_header
recipient="$(age-keygen -y fixtures/age-identity.txt)"
age-keygen -o "$tmp/other.txt" 2>/dev/null
other="$(age-keygen -y "$tmp/other.txt")"
printf 'hello fuzz\n' | age -r "$recipient" -o "$d/to-fixed-identity.age"
: | age -r "$recipient" -o "$d/empty-to-fixed-identity.age"
printf 'two recipients\n' | age -r "$other" -r "$recipient" -o "$d/two-recipients.age"
printf 'not for us\n' | age -r "$other" -o "$d/other-recipient.age"
printf 'armored\n' | age -a -r "$recipient" -o "$d/armored.age"
# A two-chunk file (64 KiB + 1) cut after its header and the start of the first chunk:
# keeps the seed small while still starting the STREAM decryption.
head -c 65537 /dev/zero | age -r "$recipient" -o "$tmp/big.age"
head -c 300 "$tmp/big.age" > "$d/truncated-multichunk.age"
if [ -x "$PALISADE_BIN" ]; then
  printf 'secret\n' | PALISADE_PASSPHRASE=fuzz "$PALISADE_BIN" encrypt -p -o "$d/passphrase.age"
else
  echo "seed-corpus.sh: $PALISADE_BIN not built; skipping the passphrase-file seed" >&2
fi
grep -v '^#' "$tmp/other.txt" > "$d/identity-file.txt"
printf '# recipients\n%s\n%s\n' "$recipient" "$other" > "$d/recipients-file.txt"

# --- sums_file ---
d=seeds/sums_file
printf 'hello\n' > "$tmp/a"
(cd "$tmp" && sha256sum a && sha256sum -b a) > "$d/sha256"
printf '%s  %s\n' "$(printf 'hello\n' | sha256sum | cut -d' ' -f1)" 'odd\name' > "$d/unescaped-backslash"
printf '\\%s  %s\n' "$(printf 'x' | sha256sum | cut -d' ' -f1)" 'new\nline\\back\rcr' > "$d/escaped"
printf '# comment\n\n   \n%s  crc\n' "3610a686" > "$d/crc32-and-comments"
(cd "$tmp" && b2sum a) > "$d/blake2b"
printf 'deadbeef  short\nzz%062d  badhex\n%064d\tTAB\n' 0 0 > "$d/malformed"

echo "seeds: $(find seeds -type f | wc -l) files, $(cat seeds/*/* | wc -c) bytes"
