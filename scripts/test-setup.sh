#!/usr/bin/env bash
# Installs what the interoperability tests drive, so the suite passes on a fresh machine:
# - the `age` command-line tool (Debian package), for age file interop;
# - a Python venv with pyca/cryptography (Fernet/RSA/ECDSA/Ed25519 interop), blake3 (hash
#   interop) and pexpect (to type a passphrase into `age -p`, which reads only a terminal);
#   Django with argon2-cffi and bcrypt, for password-hash interop with a Django user table;
#   aiosmtpd, the SMTP server the mail transport tests send to;
# - Debian's chromium and chromium-driver, the real headless browser that the end-to-end
#   test (crates/palisade-server/tests/browser_e2e.rs) drives over WebDriver.
# Idempotent and quick when everything is already there. Test-only: nothing here is a
# run-time dependency of palisade.
set -euo pipefail

venv="${PALISADE_TEST_VENV:-$HOME/.cache/palisade-venv}"

# Debian packages: the age tool (age file interop), sqlite3 (tests tamper with a database
# behind the server's back to prove the audit chain notices), chromium and chromedriver (the
# browser end-to-end test).
missing=()
command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || missing+=(age)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
# The browser test runs these exact paths (Debian's builds, no downloaded browser).
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "test-setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import cryptography, blake3, pexpect, django, argon2, bcrypt, aiosmtpd' 2>/dev/null; then
  echo "test-setup: creating $venv with cryptography, blake3, pexpect, Django, argon2-cffi, bcrypt, aiosmtpd" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cryptography>=44' blake3 pexpect \
    'Django>=5.2,<6' argon2-cffi bcrypt 'aiosmtpd>=1.4'
fi
