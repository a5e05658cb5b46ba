#!/usr/bin/env bash
# Operations per second, palisade-crypto vs Python `cryptography`, measured in one run:
# Fernet encrypt+decrypt at 1 KiB and 64 MiB, RSA-3072 OAEP decrypt and PSS sign, ECDSA
# P-256 and Ed25519 sign and verify. Prints ours, theirs and the ratio (higher is better).
# Usage: bench/crypto_ops.sh   (uses the interop venv from scripts/test-setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
py="${PALISADE_TEST_VENV:-$HOME/.cache/palisade-venv}/bin/python"
cargo build -q --release -p palisade-crypto --example ops
# Alternate the two sides (ours, theirs, ours, theirs) and keep each side's best round, so a
# burst of background load does not land on one side only.
rounds="${BENCH_ROUNDS:-2}"
ours=()
theirs=()
for _ in $(seq "$rounds"); do
  ours+=("$(cargo run -q --release -p palisade-crypto --example ops)")
  theirs+=("$("$py" bench/python_ops.py)")
done
"$py" - "${#ours[@]}" "${ours[@]}" "${theirs[@]}" <<'PY'
import json, sys
n = int(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
best = lambda rs: {k: max(r[k] for r in rs) for k in rs[0]}
ours, theirs = best(runs[:n]), best(runs[n:])
import cryptography
print(f"best of {n} alternating rounds")
print(f"Python cryptography {cryptography.__version__}")
print(f"{'operation':<26}{'ours ops/s':>14}{'theirs ops/s':>14}{'ratio':>9}")
for name, o in ours.items():
    t = theirs[name]
    print(f"{name:<26}{o:>14.1f}{t:>14.1f}{o / t:>8.2f}x")
PY
