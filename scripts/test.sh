#!/usr/bin/env bash
# The whole test suite: installs the interop peers, then runs every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-setup.sh
export PALISADE_TEST_PYTHON="${PALISADE_TEST_VENV:-$HOME/.cache/palisade-venv}/bin/python"
exec cargo test --workspace --all-targets "$@"
