//! # palisade-crypto
//!
//! All of Palisade's cryptography, as a pure library: it works on byte slices and on
//! `Read`/`Write` streams and never touches files, the network, a terminal or an async
//! runtime. The command line (`palisade-cli`) and the server are thin layers over it.
//!
//! ## Design
//! - **Standards through audited libraries.** Primitives come from `aws-lc-rs` (SHA-2, HMAC,
//!   AES, RSA, ECDSA, Ed25519, the CSPRNG), RustCrypto (`sha3`, `blake2`, the password KDFs),
//!   `blake3`, and the `age` crate for file encryption. The only format implemented here is
//!   Fernet, whose spec is a few lines of framing around AES-128-CBC and HMAC-SHA256 and is
//!   checked against the spec's own vectors and Python's `cryptography`.
//! - **Opaque failures.** Decryption and verification errors say *that* a check failed, never
//!   *which* step failed, so a caller cannot be turned into a padding or MAC oracle. Input
//!   errors (a malformed key, a wrong key type) are separate variants, because the caller has
//!   to report them differently (exit code 2 instead of 1 in the CLI).
//! - **Constant time** for every comparison of a secret or an authenticator (`subtle`).
//! - **Streaming** where the format allows it (hashes, MACs, age), so memory stays constant
//!   whatever the input size; Fernet and RSA are whole-message formats and document their limits.
//! - **No panics.** `unwrap`, `expect`, `panic!` and slice indexing are denied by the workspace
//!   lints outside tests: every malformed input is an `Err`.
//!
//! ## Modules
//! - [`hash`]: SHA-2, SHA-3, BLAKE2, BLAKE3, CRC-32 and the legacy MD5/SHA-1, streaming; `sha256sum`-style check lists.
//! - [`mac`]: HMAC-SHA256/512 and keyed BLAKE2b, with constant-time verification.
//! - [`random`]: CSPRNG bytes and encodings; diceware passphrases.
//! - [`fernet`]: Fernet tokens and `MultiFernet`-style rotation.
//! - [`agefile`]: age v1 file encryption (X25519 recipients, passphrases), streaming.
//! - [`keys`]: PEM/DER parsing and generation of RSA, P-256 and Ed25519 keys; public JWKs
//!   and RFC 7638 thumbprints.
//! - [`rsa_oaep`]: RSA-OAEP (SHA-256, MGF1-SHA-256) encryption.
//! - [`signature`]: RSA-PSS, ECDSA P-256 and Ed25519 signatures.
//! - [`kdf`]: PBKDF2-HMAC-SHA256, scrypt and Argon2id key derivation.
//! - [`password`]: password hashing and verification in Django's formats (Argon2id by
//!   default; PBKDF2, bcrypt, scrypt and the legacy MD5/SHA-1 shapes), with re-hash advice.

pub mod agefile;
pub mod fernet;
pub mod hash;
pub mod kdf;
pub mod keys;
pub mod mac;
pub mod password;
pub mod random;
pub mod rsa_oaep;
pub mod signature;
