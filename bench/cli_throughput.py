#!/usr/bin/env python3
"""Side-by-side throughput and memory of `palisade` against the tools users would pick instead.

Hashing a large file (SHA-256, SHA-512, BLAKE2b, BLAKE3) against `openssl dgst`, `sha256sum`,
`b2sum` and `b3sum`, and age encryption/decryption against the `age` tool, all in one run on
the same files with a warm page cache. Each command runs --repeat times; the best wall time
counts (the least disturbed run). Ratios are theirs/ours in time, i.e. our speed relative to
theirs: higher is better, 1.0 is parity. Peak memory is the max RSS that /usr/bin/time reports.

Usage: python3 bench/cli_throughput.py [--size-mib 1024] [--repeat 3] [--palisade PATH]
Build first: cargo build --release -p palisade-cli
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile


def timed(cmd, stdout=subprocess.DEVNULL):
    """Runs cmd under /usr/bin/time; returns (seconds, max RSS in KiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name] + cmd,
                       stdout=stdout, stderr=subprocess.DEVNULL, check=True)
        secs, rss = t.read().split()[-2:]
        return float(secs), int(rss)


def make_file(path, size_mib):
    if os.path.exists(path) and os.path.getsize(path) == size_mib << 20:
        return
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(chunk)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--palisade", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "palisade"))
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "palisade-bench"))
    ap.add_argument("--only", choices=["hash", "age"], default=None)
    args = ap.parse_args()

    pal = args.palisade
    if not os.access(pal, os.X_OK):
        sys.exit(f"{pal}: not built (cargo build --release -p palisade-cli)")
    os.makedirs(args.workdir, exist_ok=True)
    data = os.path.join(args.workdir, f"data-{args.size_mib}MiB.bin")
    make_file(data, args.size_mib)
    # Warm the page cache so both sides read from memory.
    subprocess.run(["cat", data], stdout=subprocess.DEVNULL, check=True)
    print(f"input: {data} ({args.size_mib} MiB), best of {args.repeat}")
    print(f"{'operation':<34}{'ours s':>9}{'theirs s':>10}{'ratio':>8}  {'ours RSS':>10}{'theirs RSS':>12}  peer")

    def row(name, ours, theirs, peer):
        # Alternate ours/theirs so background load cannot favour one side.
        o_runs, t_runs = [], []
        for _ in range(args.repeat):
            o_runs.append(timed(ours))
            t_runs.append(timed(theirs))
        ot, om = min(r[0] for r in o_runs), max(r[1] for r in o_runs)
        tt, tm = min(r[0] for r in t_runs), max(r[1] for r in t_runs)
        print(f"{name:<34}{ot:>9.3f}{tt:>10.3f}{tt / ot:>7.2f}x  {om / 1024:>8.1f}Mi{tm / 1024:>10.1f}Mi  {peer}")

    if args.only in (None, "hash"):
        peers = [
            ("sha256", ["openssl", "dgst", "-sha256", data], "openssl dgst -sha256"),
            ("sha256", ["sha256sum", data], "sha256sum"),
            ("sha512", ["openssl", "dgst", "-sha512", data], "openssl dgst -sha512"),
            ("sha512", ["sha512sum", data], "sha512sum"),
            ("blake2b", ["b2sum", data], "b2sum"),
            ("blake2b", ["openssl", "dgst", "-blake2b512", data], "openssl dgst -blake2b512"),
        ]
        if shutil.which("b3sum"):
            peers.append(("blake3", ["b3sum", data], "b3sum"))
        else:
            print("(b3sum not installed: `cargo install b3sum` to compare BLAKE3)")
        for algo, theirs, peer in peers:
            row(f"hash {algo}", [pal, "hash", "-a", algo, data], theirs, peer)

    if args.only in (None, "age"):
        if not shutil.which("age"):
            sys.exit("age not installed (apt-get install age)")
        ident = os.path.join(args.workdir, "id.txt")
        if os.path.exists(ident):
            os.remove(ident)
        subprocess.run(["age-keygen", "-o", ident], check=True, stderr=subprocess.DEVNULL)
        recipient = subprocess.run(["age-keygen", "-y", ident], check=True,
                                   capture_output=True, text=True).stdout.strip()
        ours_ct = os.path.join(args.workdir, "ours.age")
        theirs_ct = os.path.join(args.workdir, "theirs.age")
        ours_pt = os.path.join(args.workdir, "ours.out")
        theirs_pt = os.path.join(args.workdir, "theirs.out")
        # To standard output: the raw streaming speed of both tools. Our decryption holds
        # stdout back until the file authenticated (spooled to a temporary file), which the
        # age tool does not do: it streams unauthenticated plaintext.
        row("age encrypt, to stdout",
            [pal, "encrypt", "-r", recipient, data],
            ["age", "-r", recipient, data], "age -r")
        # To a file: we fsync before the atomic rename (the contract asks for durability), so
        # the age side is given the same fsync (`sync FILE`) to compare equal work.
        row("age encrypt, -o file (fsync)",
            [pal, "encrypt", "-r", recipient, "--force", "-o", ours_ct, data],
            ["sh", "-c", f"age -r {recipient} -o {theirs_ct} {data} && sync {theirs_ct}"],
            "age -r -o && sync")
        row("age decrypt, -o file (fsync)",
            [pal, "decrypt", "-i", ident, "--force", "-o", ours_pt, ours_ct],
            ["sh", "-c", f"age -d -i {ident} -o {theirs_pt} {theirs_ct} && sync {theirs_pt}"],
            "age -d -o && sync")
        row("age decrypt, to stdout",
            [pal, "decrypt", "-i", ident, ours_ct],
            ["age", "-d", "-i", ident, theirs_ct], "age -d")
        for p in (ours_ct, theirs_ct, ours_pt, theirs_pt):
            if os.path.exists(p):
                os.remove(p)


if __name__ == "__main__":
    main()
