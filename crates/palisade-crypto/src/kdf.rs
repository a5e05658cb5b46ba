//! Password-based key derivation: PBKDF2-HMAC-SHA256 (aws-lc-rs), scrypt and Argon2id /
//! Argon2i (RustCrypto). These are the raw functions the password hasher builds on; every
//! parameter is checked here so that no input can make a dependency panic or allocate
//! without bound.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2 as aws_pbkdf2;

/// The largest scrypt working set we allocate (128·r·N bytes, plus 128·r·p). RFC 7914's
/// biggest vector needs exactly 1 GiB; anything past 2 GiB is a mistake or an attack.
pub const SCRYPT_MAX_MEMORY: u64 = 2 * 1024 * 1024 * 1024;

/// The largest Argon2 memory cost we accept, in KiB (4 GiB).
pub const ARGON2_MAX_M_KIB: u32 = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    #[error("the output length must be between 1 and {max} bytes, not {got}")]
    OutputLength { got: usize, max: u64 },
    #[error("PBKDF2 needs at least one iteration")]
    ZeroIterations,
    #[error("invalid scrypt parameters: {0}")]
    Scrypt(&'static str),
    #[error(
        "scrypt parameters need {needed} bytes of memory, over the limit of {SCRYPT_MAX_MEMORY}"
    )]
    ScryptMemory { needed: u64 },
    #[error("invalid Argon2 parameters: {0}")]
    Argon2(String),
}

fn check_output(out: &[u8], max: u64) -> Result<(), KdfError> {
    if out.is_empty() || out.len() as u64 > max {
        return Err(KdfError::OutputLength {
            got: out.len(),
            max,
        });
    }
    Ok(())
}

/// PBKDF2 (RFC 8018) with HMAC-SHA256, filling `out`.
pub fn pbkdf2_hmac_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    out: &mut [u8],
) -> Result<(), KdfError> {
    let iterations = NonZeroU32::new(iterations).ok_or(KdfError::ZeroIterations)?;
    // RFC 8018: at most (2^32 - 1) blocks of hLen bytes; aws-lc-rs panics past it.
    check_output(out, u64::from(u32::MAX).saturating_mul(32))?;
    aws_pbkdf2::derive(
        aws_pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password,
        out,
    );
    Ok(())
}

/// scrypt (RFC 7914) with N = 2^`log_n`, filling `out`.
pub fn scrypt(
    password: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), KdfError> {
    check_output(out, u64::from(u32::MAX).saturating_mul(32))?;
    if log_n == 0 || log_n >= 64 {
        return Err(KdfError::Scrypt("N must be a power of two greater than 1"));
    }
    if r == 0 || p == 0 {
        return Err(KdfError::Scrypt("r and p must be at least 1"));
    }
    // RFC 7914: p ≤ (2^32 − 1)·hLen / MFLen; checked here because the crate's own `r * p`
    // would overflow (and panic in debug builds) first.
    if u64::from(r) * u64::from(p) >= 1 << 30 {
        return Err(KdfError::Scrypt("r·p must be below 2^30"));
    }
    let block = 128u64 * u64::from(r);
    let needed = (1u64 << log_n)
        .checked_mul(block)
        .and_then(|v| v.checked_add(block.saturating_mul(u64::from(p))))
        .unwrap_or(u64::MAX);
    if needed > SCRYPT_MAX_MEMORY {
        return Err(KdfError::ScryptMemory { needed });
    }
    let params =
        ::scrypt::Params::new(log_n, r, p).map_err(|_| KdfError::Scrypt("rejected by scrypt"))?;
    ::scrypt::scrypt(password, salt, &params, out)
        .map_err(|_| KdfError::Scrypt("invalid output length"))
}

/// Which Argon2 variant. Argon2id is the one to use for passwords (RFC 9106 section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argon2Variant {
    Argon2id,
    Argon2i,
}

/// Argon2 version 0x13 with an optional secret (K) and associated data (X), filling `out`
/// (4 bytes at least). `m_kib` is the memory in KiB, `t` the passes, `p` the lanes.
#[allow(clippy::too_many_arguments)] // mirrors RFC 9106's parameter list one to one
pub fn argon2(
    variant: Argon2Variant,
    password: &[u8],
    salt: &[u8],
    secret: Option<&[u8]>,
    associated_data: Option<&[u8]>,
    m_kib: u32,
    t: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), KdfError> {
    if m_kib > ARGON2_MAX_M_KIB {
        return Err(KdfError::Argon2(format!(
            "memory {m_kib} KiB is over the limit of {ARGON2_MAX_M_KIB} KiB"
        )));
    }
    let err = |e: argon2::Error| KdfError::Argon2(e.to_string());
    let mut builder = argon2::ParamsBuilder::new();
    builder
        .m_cost(m_kib)
        .t_cost(t)
        .p_cost(p)
        .output_len(out.len());
    if let Some(ad) = associated_data {
        builder.data(argon2::AssociatedData::new(ad).map_err(err)?);
    }
    let params = builder.build().map_err(err)?;
    let algorithm = match variant {
        Argon2Variant::Argon2id => argon2::Algorithm::Argon2id,
        Argon2Variant::Argon2i => argon2::Algorithm::Argon2i,
    };
    let ctx = match secret {
        Some(k) => argon2::Argon2::new_with_secret(k, algorithm, argon2::Version::V0x13, params)
            .map_err(err)?,
        None => argon2::Argon2::new(algorithm, argon2::Version::V0x13, params),
    };
    ctx.hash_password_into(password, salt, out).map_err(err)
}

/// Argon2id (RFC 9106); parameters as in RFC 9106 §3.1, with the caps of this module.
#[allow(clippy::too_many_arguments)] // mirrors RFC 9106's parameter list one to one
pub fn argon2id(
    password: &[u8],
    salt: &[u8],
    secret: Option<&[u8]>,
    associated_data: Option<&[u8]>,
    m_kib: u32,
    t: u32,
    p: u32,
    out: &mut [u8],
) -> Result<(), KdfError> {
    argon2(
        Argon2Variant::Argon2id,
        password,
        salt,
        secret,
        associated_data,
        m_kib,
        t,
        p,
        out,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        let mut out = [0u8; 32];
        assert_eq!(
            pbkdf2_hmac_sha256(b"p", b"s", 0, &mut out),
            Err(KdfError::ZeroIterations)
        );
        assert!(pbkdf2_hmac_sha256(b"p", b"s", 1, &mut []).is_err());
        assert!(scrypt(b"p", b"s", 0, 8, 1, &mut out).is_err());
        assert!(scrypt(b"p", b"s", 4, 0, 1, &mut out).is_err());
        assert!(scrypt(b"p", b"s", 4, u32::MAX, u32::MAX, &mut out).is_err());
        assert!(matches!(
            scrypt(b"p", b"s", 40, 8, 1, &mut out),
            Err(KdfError::ScryptMemory { .. })
        ));
        assert!(scrypt(b"p", b"s", 63, u32::MAX, 1, &mut out).is_err());
        assert!(argon2id(b"p", b"short", None, None, 64, 1, 1, &mut out).is_err());
        assert!(argon2id(b"p", b"saltsalt", None, None, 1, 1, 1, &mut out).is_err());
        assert!(argon2id(b"p", b"saltsalt", None, None, 64, 0, 1, &mut out).is_err());
        assert!(argon2id(b"p", b"saltsalt", None, None, 64, 1, 0, &mut out).is_err());
        assert!(argon2id(b"p", b"saltsalt", None, None, 64, 1, 1, &mut [0u8; 3]).is_err());
        assert!(
            argon2id(
                b"p",
                b"saltsalt",
                None,
                Some(&[0u8; 33]),
                64,
                1,
                1,
                &mut out
            )
            .is_err()
        );
        assert!(argon2id(b"p", b"saltsalt", None, None, u32::MAX, 1, 1, &mut out).is_err());
        assert!(argon2id(b"p", b"saltsalt", None, None, 64, 1, 1, &mut out).is_ok());
        assert!(
            argon2(
                Argon2Variant::Argon2i,
                b"p",
                b"saltsalt",
                None,
                None,
                64,
                1,
                1,
                &mut out
            )
            .is_ok()
        );
    }
}
