#!/usr/bin/env bash
# CI smoke fuzzing: builds every cargo-fuzz target in fuzz/ and runs each one for
# FUZZ_SECONDS (default 20) starting from the committed seeds, and fails if any target
# crashes, panics, leaks past the RSS limit or hangs. See docs/fuzzing.md.
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 20)
#   FUZZ_TARGETS      space-separated subset of targets (default: all, from `cargo fuzz list`)
#   FUZZ_TARGET_DIR   persistent build directory, outside the clone
#                     (default ~/.cache/palisade-fuzz-target)
#   FUZZ_WORK_DIR     scratch corpora and crash artifacts (default $FUZZ_TARGET_DIR/smoke)
#   FUZZ_TOOLCHAIN    nightly (default when a nightly toolchain is installed: AddressSanitizer)
#                     or stable (the default toolchain with RUSTC_BOOTSTRAP=1 and no sanitizer:
#                     panics, aborts, OOMs and timeouts only)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-20}"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/palisade-fuzz-target}"
WORK="${FUZZ_WORK_DIR:-$CARGO_TARGET_DIR/smoke}"

die() {
    echo "fuzz-smoke: $*" >&2
    exit 1
}

case "$FUZZ_SECONDS" in
    '' | *[!0-9]*) die "FUZZ_SECONDS must be a whole number of seconds, not '$FUZZ_SECONDS'" ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: cargo-fuzz not found; installing it" >&2
    cargo install cargo-fuzz --locked || die "could not install cargo-fuzz"
fi

# libFuzzer instrumentation needs unstable rustc flags (-Cpasses=sancov-module, -Z...).
# With nightly we also get AddressSanitizer; on stable, RUSTC_BOOTSTRAP=1 unlocks the flags
# and `-s none` drops the sanitizer (ASan needs -Zsanitizer, which also needs a nightly
# standard library), so only panics, aborts, OOMs and timeouts are caught there.
toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
    if rustup run nightly rustc --version >/dev/null 2>&1; then
        toolchain=nightly
    else
        toolchain=stable
    fi
fi
case "$toolchain" in
    nightly)
        rustup run nightly rustc --version >/dev/null 2>&1 ||
            die "FUZZ_TOOLCHAIN=nightly but no nightly toolchain (rustup toolchain install nightly)"
        fuzz=(cargo +nightly fuzz)
        sanitizer=(-s address)
        ;;
    stable)
        fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
        sanitizer=(-s none)
        ;;
    *) die "FUZZ_TOOLCHAIN must be nightly or stable, not '$toolchain'" ;;
esac

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi
[ "${#targets[@]}" -gt 0 ] || die "no fuzz targets found"

echo "fuzz-smoke: toolchain $toolchain (${sanitizer[*]}), ${FUZZ_SECONDS}s per target," \
    "targets: ${targets[*]}"
echo "fuzz-smoke: build dir $CARGO_TARGET_DIR, corpora and artifacts under $WORK"

build_start=$SECONDS
if ! "${fuzz[@]}" build "${sanitizer[@]}"; then
    die "building the fuzz targets with the $toolchain toolchain failed (see above)"
fi
echo "fuzz-smoke: build took $((SECONDS - build_start))s"

failed=()
for target in "${targets[@]}"; do
    corpus="$WORK/corpus/$target"
    artifacts="$WORK/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    # Seeds are copied, never fuzzed in place: libFuzzer writes new inputs into the first
    # corpus directory, and the repository's seeds must stay the small reviewed set.
    if [ -d "fuzz/seeds/$target" ]; then
        cp -n "fuzz/seeds/$target"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "fuzz-smoke: === $target ($(find "$corpus" -type f | wc -l) corpus inputs) ==="
    run_start=$SECONDS
    run_epoch=$(date +%s)
    # -timeout: an input taking this long is a hang (the slowest legitimate input, an
    # RSA-8192 key, takes well under a second). -rss_limit_mb: libFuzzer's default, explicit.
    if "${fuzz[@]}" run "${sanitizer[@]}" "$target" "$corpus" -- \
        -max_total_time="$FUZZ_SECONDS" \
        -timeout=25 \
        -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" \
        -print_final_stats=1; then
        echo "fuzz-smoke: $target ok in $((SECONDS - run_start))s"
    else
        echo "fuzz-smoke: $target FAILED; reproducer(s):" >&2
        find "$artifacts" -type f -newermt "@$run_epoch" >&2 || true
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    die "crashes in: ${failed[*]}; reproduce one with: ${fuzz[*]} run ${sanitizer[*]} TARGET ARTIFACT"
fi
echo "fuzz-smoke: all ${#targets[@]} targets ran ${FUZZ_SECONDS}s without a crash"
