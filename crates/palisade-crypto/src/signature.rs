//! Digital signatures, the scheme chosen by the key type:
//! RSA → RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt); P-256 → ECDSA-SHA-256, ASN.1 DER
//! or IEEE P1363 (fixed 64-byte r‖s); Ed25519 → Ed25519 (RFC 8032).
//!
//! Signing is always aws-lc-rs. So is verification, except for one gap: aws-lc-rs verifies
//! RSA-PSS with exactly one configured salt length, while RFC 8017 lets the signer choose it
//! and Python's `PSS.MAX_LENGTH` (salt = emLen − hLen − 2, 222 bytes for RSA-2048) and
//! `salt_length=0` are common. Measured: aws-lc-rs's `RSA_PSS_2048_8192_SHA256` accepts
//! only salt 32 (the test `aws_lc_pss_verify_is_fixed_salt` keeps that observation honest).
//! A PSS signature that fails the fixed-salt check is therefore re-checked by RustCrypto
//! `rsa`'s RFC 8017 §9.1.2 EMSA-PSS-VERIFY with the salt length recovered from the DB, as
//! OpenSSL's `RSA_PSS_SALTLEN_AUTO` does. That path performs only the public-key operation
//! (no secret is involved, so the crate's private-key timing advisory does not apply), and
//! it makes every check of §9.1.2: signature length k and s < n, the leftmost bits of
//! maskedDB zero, the 0xbc trailer, PS all zeros then 0x01, and a constant-time comparison
//! of H with H'. Accepting when either verifier accepts is sound because every salt-32
//! signature is also a valid auto-salt signature: the union is exactly the auto-salt set.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::signature::Verifier as _;

use crate::keys::{KeyKind, PrivateKey, PublicKey, RsaPublicKey};

/// PSS salt length used when signing: the digest length, as RFC 8017 recommends and as
/// FIPS 186-5 requires.
pub const PSS_SALT_LEN: usize = 32;

/// How an ECDSA signature is encoded. Other key types have one encoding only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureFormat {
    /// ASN.1 DER `ECDSA-Sig-Value` (OpenSSL, Python `cryptography`).
    #[default]
    Der,
    /// Fixed-width r‖s, 64 bytes for P-256 (IEEE P1363, JWS ES256, WebCrypto).
    P1363,
}

/// Why signing or verifying could not be attempted. A signature that simply does not verify
/// is not an error: [`verify`] returns `Ok(false)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("--format p1363 applies only to ECDSA keys, not {0}")]
    FormatNotApplicable(KeyKind),
    #[error("signing failed")]
    Signing,
}

fn check_format(kind: KeyKind, format: SignatureFormat) -> Result<(), SignatureError> {
    if format == SignatureFormat::P1363 && kind != KeyKind::P256 {
        return Err(SignatureError::FormatNotApplicable(kind));
    }
    Ok(())
}

/// Signs `msg` with the scheme of `key`'s type.
pub fn sign(
    key: &PrivateKey,
    msg: &[u8],
    format: SignatureFormat,
) -> Result<Vec<u8>, SignatureError> {
    check_format(key.kind(), format)?;
    let rng = SystemRandom::new();
    match key {
        PrivateKey::Rsa(k) => {
            let mut out = vec![0u8; k.signing.public_modulus_len()];
            k.signing
                .sign(&sig::RSA_PSS_SHA256, &rng, msg, &mut out)
                .map_err(|_| SignatureError::Signing)?;
            Ok(out)
        }
        PrivateKey::P256(k) => {
            let pair = match format {
                SignatureFormat::Der => &k.der_signing,
                SignatureFormat::P1363 => &k.fixed_signing,
            };
            pair.sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignatureError::Signing)
        }
        PrivateKey::Ed25519(k) => k
            .pair
            .try_sign(msg)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignatureError::Signing),
    }
}

/// Verifies `signature` over `msg`. `Ok(false)` for any signature that does not verify,
/// including one of the wrong length or encoding.
pub fn verify(
    key: &PublicKey,
    msg: &[u8],
    signature: &[u8],
    format: SignatureFormat,
) -> Result<bool, SignatureError> {
    check_format(key.kind(), format)?;
    Ok(match key {
        PublicKey::Rsa(k) => {
            verify_rsa_pss_salt32(k, msg, signature) || verify_rsa_pss_any_salt(k, msg, signature)
        }
        PublicKey::P256(k) => {
            let alg = match format {
                SignatureFormat::Der => &sig::ECDSA_P256_SHA256_ASN1,
                SignatureFormat::P1363 => &sig::ECDSA_P256_SHA256_FIXED,
            };
            aws_verify(alg, k.spki_der(), msg, signature)
        }
        PublicKey::Ed25519(k) => aws_verify(&sig::ED25519, k.raw(), msg, signature),
    })
}

fn aws_verify(
    alg: &'static dyn sig::VerificationAlgorithm,
    key: &[u8],
    msg: &[u8],
    signature: &[u8],
) -> bool {
    ParsedPublicKey::new(alg, key).is_ok_and(|k| k.verify_sig(msg, signature).is_ok())
}

/// The strict path: RSASSA-PSS-SHA256 with a salt of exactly 32 bytes (aws-lc-rs).
pub fn verify_rsa_pss_salt32(key: &RsaPublicKey, msg: &[u8], signature: &[u8]) -> bool {
    sig::UnparsedPublicKey::new(&sig::RSA_PSS_2048_8192_SHA256, key.pkcs1_der())
        .verify(msg, signature)
        .is_ok()
}

/// RSASSA-PSS-SHA256 with the salt length recovered from the signature (any length from 0 to
/// emLen − hLen − 2), RFC 8017 §9.1.2, by RustCrypto `rsa` (public-key operation only).
pub fn verify_rsa_pss_any_salt(key: &RsaPublicKey, msg: &[u8], signature: &[u8]) -> bool {
    let Ok(public) = rsa::PublicKey::from_pkcs1_der(key.pkcs1_der()) else {
        return false;
    };
    let Ok(signature) = rsa::pss::Signature::try_from(signature) else {
        return false;
    };
    rsa::pss::VerifyingKey::<rsa::sha2::Sha256>::new_with_auto_salt_len(public)
        .verify(msg, &signature)
        .is_ok()
}
