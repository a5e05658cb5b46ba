//! RSA-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1), on aws-lc-rs.
//!
//! The parameters are those of Python's `padding.OAEP(MGF1(SHA256()), SHA256(), None)`: an
//! empty label unless one is given. One RSA block holds at most `k - 2·32 - 2` bytes, where
//! `k` is the modulus length in bytes (190 bytes for RSA-2048); longer messages are refused
//! with the limit in the error. Any decryption failure, whatever its cause (wrong key, bad
//! length, bad padding, wrong label), is the single opaque [`OaepError::Decryption`], so a
//! caller cannot become a padding oracle (Manger's attack).

use aws_lc_rs::rsa::{
    OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PublicEncryptingKey,
};
use zeroize::Zeroizing;

use crate::keys::{KeyKind, PrivateKey, PublicKey, RsaPublicKey};

/// Bytes of a block that OAEP-SHA256 spends on padding: two hashes and two marker bytes.
pub const OAEP_SHA256_OVERHEAD: usize = 2 * 32 + 2;

/// Why an OAEP operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OaepError {
    /// Input error: the message does not fit in one block.
    #[error(
        "message is {len} bytes, over the RSA-OAEP limit of {max} bytes for a {bits}-bit key (key bytes - 66)"
    )]
    MessageTooLong { len: usize, max: usize, bits: usize },
    /// Input error: RSA-OAEP needs an RSA key.
    #[error("wrong key type: RSA-OAEP needs an RSA key, not {0}")]
    WrongKeyType(KeyKind),
    /// The ciphertext does not decrypt under this key (deliberately uninformative).
    #[error("decryption failed: the ciphertext is corrupt or was not made for this key")]
    Decryption,
    /// The library refused to encrypt (not expected with a validated key).
    #[error("RSA-OAEP encryption failed")]
    Encryption,
}

/// The largest message `key` can encrypt.
pub fn max_plaintext_len(key: &RsaPublicKey) -> usize {
    key.modulus_len().saturating_sub(OAEP_SHA256_OVERHEAD)
}

/// Encrypts `plaintext` to `key`. `label` is the OAEP label (`None` = empty, the common case).
pub fn encrypt(
    key: &PublicKey,
    plaintext: &[u8],
    label: Option<&[u8]>,
) -> Result<Vec<u8>, OaepError> {
    let PublicKey::Rsa(rsa) = key else {
        return Err(OaepError::WrongKeyType(key.kind()));
    };
    let max = max_plaintext_len(rsa);
    if plaintext.len() > max {
        return Err(OaepError::MessageTooLong {
            len: plaintext.len(),
            max,
            bits: rsa.bits(),
        });
    }
    let public =
        PublicEncryptingKey::from_der(rsa.spki_der()).map_err(|_| OaepError::Encryption)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| OaepError::Encryption)?;
    let mut out = vec![0u8; oaep.ciphertext_size()];
    let len = oaep
        .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut out, label)
        .map_err(|_| OaepError::Encryption)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// Decrypts `ciphertext` with `key`. The plaintext is zeroed when dropped.
pub fn decrypt(
    key: &PrivateKey,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, OaepError> {
    let PrivateKey::Rsa(rsa) = key else {
        return Err(OaepError::WrongKeyType(key.kind()));
    };
    let oaep =
        OaepPrivateDecryptingKey::new(rsa.decrypting.clone()).map_err(|_| OaepError::Decryption)?;
    // RFC 8017 §7.1.2 step 1: the ciphertext is exactly k bytes. AWS-LC checks this too; doing
    // it here keeps the rule visible and independent of the library.
    if ciphertext.len() != oaep.key_size_bytes() {
        return Err(OaepError::Decryption);
    }
    let mut out = Zeroizing::new(vec![0u8; oaep.min_output_size()]);
    let len = oaep
        .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, label)
        .map_err(|_| OaepError::Decryption)?
        .len();
    out.truncate(len);
    Ok(out)
}
