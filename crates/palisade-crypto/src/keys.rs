//! Public-key material: parsing and generation of RSA (2048–8192 bits), ECDSA P-256 and
//! Ed25519 keys.
//!
//! Private keys are read from PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) and SEC1
//! (`EC PRIVATE KEY`, P-256 only) PEM; public keys from SubjectPublicKeyInfo (`PUBLIC KEY`)
//! and PKCS#1 (`RSA PUBLIC KEY`) PEM. Generated keys are written as PKCS#8 v1 (the form
//! OpenSSL and Python's `cryptography` read everywhere) and SubjectPublicKeyInfo.
//!
//! The DER is only *classified* here (which algorithm, which curve, how many bits) so that a
//! wrong or unsupported key gets a precise [`KeyError`]; the key itself is always decoded and
//! validated by aws-lc-rs. Every private key is normalised to PKCS#8 v1 DER, kept in a
//! buffer that is zeroed on drop.
//!
//! Public keys also export their JWK members ([`PublicKey::to_jwk`], RFC 7518 and RFC 8037)
//! and RFC 7638 thumbprints ([`PublicJwk::thumbprint`]), which name a key by its public half.
//!
//! [`PrivateKey::from_pem`], [`PrivateKey::from_pkcs8_der`], [`PublicKey::from_pem`] and
//! [`PublicKey::from_spki_der`] take untrusted bytes and never panic (they are fuzz targets).

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize, PrivateDecryptingKey};
use aws_lc_rs::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
};
use der::asn1::{AnyRef, ObjectIdentifier, UintRef};
use der::{Decode, Reader, Tag, TagNumber, Tagged};
use pkcs8::PrivateKeyInfoRef;
use spki::SubjectPublicKeyInfoRef;
use zeroize::Zeroizing;

/// Smallest RSA modulus accepted (AWS-LC's floor, and NIST's since 2014).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus accepted (AWS-LC's ceiling; bigger keys only cost time).
pub const RSA_MAX_BITS: usize = 8192;

const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Why a key could not be used. Every variant is an input error (the caller's file is not a
/// key we can use), never a failed cryptographic check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a PEM key (no -----BEGIN ...----- line)")]
    NotPem,
    #[error("malformed PEM: {0}")]
    MalformedPem(String),
    #[error(
        "encrypted keys are not supported; decrypt it first (e.g. `openssl pkey -in KEY -out PLAIN.pem`)"
    )]
    Encrypted,
    #[error(
        "this is an X.509 certificate, not a key (extract it with `openssl x509 -pubkey -noout`)"
    )]
    Certificate,
    #[error("this is a public key, but a private key is needed")]
    PublicKeyGiven,
    #[error("this is a private key, but a public key is needed")]
    PrivateKeyGiven,
    #[error("unsupported PEM type \"{0}\"")]
    UnsupportedPemType(String),
    #[error("unsupported key algorithm {0} (supported: RSA, ECDSA P-256, Ed25519)")]
    UnsupportedAlgorithm(String),
    #[error("unsupported elliptic curve {0} (only P-256 is supported)")]
    UnsupportedCurve(String),
    #[error("RSA key of {bits} bits is not supported (2048 to 8192 bits)")]
    RsaKeySize { bits: usize },
    #[error("malformed {0}")]
    Malformed(&'static str),
    #[error("key generation failed")]
    Generation,
    #[error("key encoding failed")]
    Encoding,
}

/// The three key types, for messages and for choosing a scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    P256,
    Ed25519,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Rsa => "RSA",
            KeyKind::P256 => "ECDSA P-256",
            KeyKind::Ed25519 => "Ed25519",
        })
    }
}

/// RSA modulus sizes offered by key generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaBits {
    B2048,
    B3072,
    B4096,
}

// ---------------------------------------------------------------------------------------
// Private keys
// ---------------------------------------------------------------------------------------

/// A private key of one of the supported types.
#[derive(Debug)]
pub enum PrivateKey {
    Rsa(RsaPrivateKey),
    P256(P256PrivateKey),
    Ed25519(Ed25519PrivateKey),
}

/// An RSA private key, usable for RSA-PSS signing and RSA-OAEP decryption.
pub struct RsaPrivateKey {
    pub(crate) signing: RsaKeyPair,
    pub(crate) decrypting: PrivateDecryptingKey,
    pkcs8: Zeroizing<Vec<u8>>,
    bits: usize,
}

/// An ECDSA P-256 private key. aws-lc-rs binds the signature encoding to the key object, so
/// both encodings are prepared at parse time.
pub struct P256PrivateKey {
    pub(crate) der_signing: EcdsaKeyPair,
    pub(crate) fixed_signing: EcdsaKeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

/// An Ed25519 private key.
pub struct Ed25519PrivateKey {
    pub(crate) pair: Ed25519KeyPair,
    pkcs8: Zeroizing<Vec<u8>>,
}

// Hand-written so that no secret byte can reach a log through `{:?}`.
impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaPrivateKey")
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}
impl fmt::Debug for P256PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("P256PrivateKey").finish_non_exhaustive()
    }
}
impl fmt::Debug for Ed25519PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519PrivateKey").finish_non_exhaustive()
    }
}

impl RsaPrivateKey {
    fn from_key_pair(signing: RsaKeyPair) -> Result<Self, KeyError> {
        let pkcs8 = Zeroizing::new(
            signing
                .as_der()
                .map_err(|_| KeyError::Encoding)?
                .as_ref()
                .to_vec(),
        );
        let decrypting =
            PrivateDecryptingKey::from_pkcs8(&pkcs8).map_err(|_| KeyError::Malformed("RSA key"))?;
        let bits = decrypting.key_size_bits();
        check_rsa_bits(bits)?;
        Ok(Self {
            signing,
            decrypting,
            pkcs8,
            bits,
        })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }
}

impl P256PrivateKey {
    fn from_pkcs8(pkcs8: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        let der_signing = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|_| KeyError::Malformed("P-256 private key"))?;
        let fixed_signing = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| KeyError::Malformed("P-256 private key"))?;
        Ok(Self {
            der_signing,
            fixed_signing,
            pkcs8,
        })
    }
}

impl PrivateKey {
    /// Generates an RSA key pair (aws-lc-rs, FIPS-validated generator).
    pub fn generate_rsa(bits: RsaBits) -> Result<Self, KeyError> {
        let size = match bits {
            RsaBits::B2048 => KeySize::Rsa2048,
            RsaBits::B3072 => KeySize::Rsa3072,
            RsaBits::B4096 => KeySize::Rsa4096,
        };
        let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
        Ok(Self::Rsa(RsaPrivateKey::from_key_pair(pair)?))
    }

    /// Generates an ECDSA P-256 key pair.
    pub fn generate_p256() -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| KeyError::Generation)?;
        let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
        Ok(Self::P256(P256PrivateKey::from_pkcs8(Zeroizing::new(
            doc.as_ref().to_vec(),
        ))?))
    }

    /// Generates an Ed25519 key pair.
    pub fn generate_ed25519() -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
        let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
        Ok(Self::Ed25519(Ed25519PrivateKey {
            pair,
            pkcs8: Zeroizing::new(doc.as_ref().to_vec()),
        }))
    }

    /// Parses a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (P-256). An `EC PARAMETERS`
    /// block before the key (as `openssl ecparam -genkey` writes) is skipped.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (label, der) = first_pem_block(pem)?;
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(&der),
            "EC PRIVATE KEY" => Self::from_sec1_der(&der),
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Err(KeyError::PublicKeyGiven),
            other => Err(classify_other_label(other)),
        }
    }

    /// Parses a PKCS#8 `PrivateKeyInfo` / `OneAsymmetricKey` (v1 or v2) in DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = PrivateKeyInfoRef::from_der(der)
            .map_err(|_| KeyError::Malformed("PKCS#8 private key"))?;
        let oid = info.algorithm.oid;
        if oid == OID_RSA_ENCRYPTION {
            check_rsa_bits(rsa_private_bits(info.private_key.as_bytes())?)?;
            let pair =
                RsaKeyPair::from_pkcs8(der).map_err(|_| KeyError::Malformed("RSA private key"))?;
            Ok(Self::Rsa(RsaPrivateKey::from_key_pair(pair)?))
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::Malformed("EC private key (no named curve)"))?;
            check_curve(curve)?;
            // Round-trip through aws-lc-rs so that what we keep is its canonical v1 encoding.
            let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der)
                .map_err(|_| KeyError::Malformed("P-256 private key"))?;
            let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
            Ok(Self::P256(P256PrivateKey::from_pkcs8(Zeroizing::new(
                doc.as_ref().to_vec(),
            ))?))
        } else if oid == OID_ED25519 {
            let pair = Ed25519KeyPair::from_pkcs8(der)
                .map_err(|_| KeyError::Malformed("Ed25519 private key"))?;
            let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
            Ok(Self::Ed25519(Ed25519PrivateKey {
                pair,
                pkcs8: Zeroizing::new(doc.as_ref().to_vec()),
            }))
        } else {
            Err(unsupported_algorithm(oid))
        }
    }

    /// Parses a PKCS#1 `RSAPrivateKey` in DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        check_rsa_bits(rsa_private_bits(der)?)?;
        let pair = RsaKeyPair::from_der(der).map_err(|_| KeyError::Malformed("RSA private key"))?;
        Ok(Self::Rsa(RsaPrivateKey::from_key_pair(pair)?))
    }

    /// Parses a SEC1 `ECPrivateKey` in DER (P-256 only).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Some(curve) = sec1_curve(der)? {
            check_curve(curve)?;
        }
        let pair = EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|_| KeyError::Malformed("P-256 private key"))?;
        let doc = pair.to_pkcs8v1().map_err(|_| KeyError::Encoding)?;
        Ok(Self::P256(P256PrivateKey::from_pkcs8(Zeroizing::new(
            doc.as_ref().to_vec(),
        ))?))
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            PrivateKey::Rsa(_) => KeyKind::Rsa,
            PrivateKey::P256(_) => KeyKind::P256,
            PrivateKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The key as PKCS#8 v1 DER (secret: zeroed on drop).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let der = match self {
            PrivateKey::Rsa(k) => &k.pkcs8,
            PrivateKey::P256(k) => &k.pkcs8,
            PrivateKey::Ed25519(k) => &k.pkcs8,
        };
        der.clone()
    }

    /// The key as `-----BEGIN PRIVATE KEY-----` PEM text (secret: zeroed on drop).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let der = self.to_pkcs8_der();
        pem_rfc7468::encode_string("PRIVATE KEY", pem_rfc7468::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(|_| KeyError::Encoding)
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let spki = match self {
            PrivateKey::Rsa(k) => k.signing.public_key().as_der().map(|d| d.as_ref().to_vec()),
            PrivateKey::P256(k) => k
                .der_signing
                .public_key()
                .as_der()
                .map(|d| d.as_ref().to_vec()),
            PrivateKey::Ed25519(k) => k.pair.public_key().as_der().map(|d| d.as_ref().to_vec()),
        }
        .map_err(|_| KeyError::Encoding)?;
        PublicKey::from_spki_der(&spki)
    }
}

// ---------------------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------------------

/// A public key of one of the supported types. Each keeps its SubjectPublicKeyInfo DER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(P256PublicKey),
    Ed25519(Ed25519PublicKey),
}

/// An RSA public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    spki: Vec<u8>,
    pkcs1: Vec<u8>,
    bits: usize,
}

/// An ECDSA P-256 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P256PublicKey {
    spki: Vec<u8>,
}

/// An Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ed25519PublicKey {
    spki: Vec<u8>,
    raw: Vec<u8>,
}

impl RsaPublicKey {
    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }
    /// Modulus size in bytes (the ciphertext and signature length).
    pub fn modulus_len(&self) -> usize {
        self.bits.div_ceil(8)
    }
    /// PKCS#1 `RSAPublicKey` DER.
    pub fn pkcs1_der(&self) -> &[u8] {
        &self.pkcs1
    }
    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

impl P256PublicKey {
    /// SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }
}

impl Ed25519PublicKey {
    /// The 32-byte public key.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }
}

impl PublicKey {
    /// Parses a PEM public key: SubjectPublicKeyInfo or PKCS#1 (RSA).
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (label, der) = first_pem_block(pem)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                Err(KeyError::PrivateKeyGiven)
            }
            other => Err(classify_other_label(other)),
        }
    }

    /// Parses a SubjectPublicKeyInfo in DER.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let info = SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|_| KeyError::Malformed("SubjectPublicKeyInfo public key"))?;
        let oid = info.algorithm.oid;
        let key_bytes = info
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::Malformed("SubjectPublicKeyInfo public key"))?;
        if oid == OID_RSA_ENCRYPTION {
            Self::from_pkcs1_der(key_bytes)
        } else if oid == OID_EC_PUBLIC_KEY {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|_| KeyError::Malformed("EC public key (no named curve)"))?;
            check_curve(curve)?;
            // Validates that the point is on the curve (and not the identity).
            ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_ASN1, key_bytes)
                .map_err(|_| KeyError::Malformed("P-256 public key"))?;
            Ok(Self::P256(P256PublicKey { spki: der.to_vec() }))
        } else if oid == OID_ED25519 {
            if info.algorithm.parameters.is_some() || key_bytes.len() != 32 {
                return Err(KeyError::Malformed("Ed25519 public key"));
            }
            ParsedPublicKey::new(&sig::ED25519, key_bytes)
                .map_err(|_| KeyError::Malformed("Ed25519 public key"))?;
            Ok(Self::Ed25519(Ed25519PublicKey {
                spki: der.to_vec(),
                raw: key_bytes.to_vec(),
            }))
        } else {
            Err(unsupported_algorithm(oid))
        }
    }

    /// Parses a PKCS#1 `RSAPublicKey` in DER.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let bits = rsa_public_bits(der)?;
        check_rsa_bits(bits)?;
        let key = aws_lc_rs::rsa::PublicKey::from_der(der)
            .map_err(|_| KeyError::Malformed("RSA public key"))?;
        let spki = key
            .as_der()
            .map_err(|_| KeyError::Encoding)?
            .as_ref()
            .to_vec();
        Ok(Self::Rsa(RsaPublicKey {
            spki,
            pkcs1: der.to_vec(),
            bits,
        }))
    }

    /// Which kind of key this is.
    pub fn kind(&self) -> KeyKind {
        match self {
            PublicKey::Rsa(_) => KeyKind::Rsa,
            PublicKey::P256(_) => KeyKind::P256,
            PublicKey::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// SubjectPublicKeyInfo DER.
    pub fn to_spki_der(&self) -> &[u8] {
        match self {
            PublicKey::Rsa(k) => &k.spki,
            PublicKey::P256(k) => &k.spki,
            PublicKey::Ed25519(k) => &k.spki,
        }
    }

    /// `-----BEGIN PUBLIC KEY-----` PEM text.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        pem_rfc7468::encode_string(
            "PUBLIC KEY",
            pem_rfc7468::LineEnding::LF,
            self.to_spki_der(),
        )
        .map_err(|_| KeyError::Encoding)
    }
}

// ---------------------------------------------------------------------------------------
// JWK (RFC 7517/7518, RFC 8037 for Ed25519) and JWK thumbprints (RFC 7638)
// ---------------------------------------------------------------------------------------

/// The key-type members of a public key's JWK (RFC 7518 §6, RFC 8037 §2), every value
/// base64url without padding. Only the members that define the key: a caller adds `kid`,
/// `alg` and `use` as its protocol needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicJwk {
    /// `kty` "RSA": modulus `n` and exponent `e`, unsigned big-endian in the fewest octets.
    Rsa { n: String, e: String },
    /// `kty` "EC", `crv` "P-256": the affine coordinates, 32 octets each.
    P256 { x: String, y: String },
    /// `kty` "OKP", `crv` "Ed25519": the 32-byte public key.
    Ed25519 { x: String },
}

impl PublicJwk {
    /// The required members as (name, value) pairs in lexicographic order of the names:
    /// the order RFC 7638 hashes them in, and a stable order for any JSON writer.
    pub fn members(&self) -> Vec<(&'static str, String)> {
        match self {
            PublicJwk::Rsa { n, e } => vec![
                ("e", e.clone()),
                ("kty", "RSA".to_owned()),
                ("n", n.clone()),
            ],
            PublicJwk::P256 { x, y } => vec![
                ("crv", "P-256".to_owned()),
                ("kty", "EC".to_owned()),
                ("x", x.clone()),
                ("y", y.clone()),
            ],
            PublicJwk::Ed25519 { x } => vec![
                ("crv", "Ed25519".to_owned()),
                ("kty", "OKP".to_owned()),
                ("x", x.clone()),
            ],
        }
    }

    /// The RFC 7638 thumbprint: base64url (no padding) of the SHA-256 of the required
    /// members as JSON with no whitespace, names sorted. Anyone holding the public key can
    /// compute it (e.g. `jwcrypto`'s `JWK.thumbprint()`), so it names a key without a
    /// registry. Every value is base64url or a fixed name, so no JSON escaping is needed.
    pub fn thumbprint(&self) -> String {
        let body: Vec<String> = self
            .members()
            .into_iter()
            .map(|(name, value)| format!("\"{name}\":\"{value}\""))
            .collect();
        let json = format!("{{{}}}", body.join(","));
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, json.as_bytes());
        b64url(digest.as_ref())
    }
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl PublicKey {
    /// This key's JWK members ([`PublicJwk`]).
    pub fn to_jwk(&self) -> Result<PublicJwk, KeyError> {
        match self {
            PublicKey::Rsa(k) => {
                let malformed = |_| KeyError::Malformed("RSA public key");
                let (n, e) = AnyRef::from_der(&k.pkcs1)
                    .map_err(malformed)?
                    .sequence(|r| {
                        // `UintRef` holds the magnitude with leading zeros stripped: the
                        // minimal octet string RFC 7518 §6.3.1 asks for.
                        let n = UintRef::decode(r)?;
                        let e = UintRef::decode(r)?;
                        Ok::<_, der::Error>((b64url(n.as_bytes()), b64url(e.as_bytes())))
                    })
                    .map_err(malformed)?;
                Ok(PublicJwk::Rsa { n, e })
            }
            PublicKey::P256(k) => {
                let malformed = KeyError::Malformed("P-256 public key");
                let info =
                    SubjectPublicKeyInfoRef::from_der(&k.spki).map_err(|_| malformed.clone())?;
                let point = info
                    .subject_public_key
                    .as_bytes()
                    .ok_or_else(|| malformed.clone())?;
                // SEC1 uncompressed point: 0x04 ‖ X ‖ Y (aws-lc-rs accepted it at parse time).
                let coords = match point.split_first() {
                    Some((0x04, coords)) if coords.len() == 64 => coords,
                    _ => return Err(malformed),
                };
                let (x, y) = coords.split_at(32);
                Ok(PublicJwk::P256 {
                    x: b64url(x),
                    y: b64url(y),
                })
            }
            PublicKey::Ed25519(k) => Ok(PublicJwk::Ed25519 { x: b64url(&k.raw) }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn check_rsa_bits(bits: usize) -> Result<(), KeyError> {
    if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::RsaKeySize { bits })
    }
}

fn check_curve(curve: ObjectIdentifier) -> Result<(), KeyError> {
    if curve == OID_P256 {
        return Ok(());
    }
    let name = match curve.to_string().as_str() {
        "1.3.132.0.34" => "P-384 (secp384r1)".to_owned(),
        "1.3.132.0.35" => "P-521 (secp521r1)".to_owned(),
        "1.3.132.0.10" => "secp256k1".to_owned(),
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)".to_owned(),
        "1.3.132.0.33" => "P-224 (secp224r1)".to_owned(),
        other => format!("with OID {other}"),
    };
    Err(KeyError::UnsupportedCurve(name))
}

fn unsupported_algorithm(oid: ObjectIdentifier) -> KeyError {
    if oid == OID_RSASSA_PSS {
        return KeyError::UnsupportedAlgorithm(
            "RSASSA-PSS-restricted RSA (use a plain rsaEncryption key)".to_owned(),
        );
    }
    let name = match oid.to_string().as_str() {
        "1.3.101.110" => "X25519".to_owned(),
        "1.3.101.111" => "X448".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        "1.2.840.10040.4.1" => "DSA".to_owned(),
        "1.2.840.113549.1.3.1" | "1.2.840.10046.2.1" => "Diffie-Hellman".to_owned(),
        other => format!("with OID {other}"),
    };
    KeyError::UnsupportedAlgorithm(name)
}

fn classify_other_label(label: &str) -> KeyError {
    match label {
        "ENCRYPTED PRIVATE KEY" => KeyError::Encrypted,
        "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => KeyError::Certificate,
        "DSA PRIVATE KEY" => KeyError::UnsupportedAlgorithm("DSA".to_owned()),
        other => KeyError::UnsupportedPemType(other.to_owned()),
    }
}

/// Finds the first PEM block that is not `EC PARAMETERS` and decodes it strictly (RFC 7468).
/// Legacy encrypted PEM (RFC 1421 `Proc-Type`/`DEK-Info` headers) is recognised first so it
/// gets its own message rather than a base64 error.
fn first_pem_block(input: &[u8]) -> Result<(String, Zeroizing<Vec<u8>>), KeyError> {
    const BEGIN: &str = "-----BEGIN ";
    let text = std::str::from_utf8(input).map_err(|_| KeyError::NotPem)?;
    let mut rest = text;
    loop {
        let start = rest.find(BEGIN).ok_or(KeyError::NotPem)?;
        let block_and_after = rest.get(start..).ok_or(KeyError::NotPem)?;
        let after_begin = block_and_after.get(BEGIN.len()..).ok_or(KeyError::NotPem)?;
        let label_end = after_begin
            .find("-----")
            .ok_or_else(|| KeyError::MalformedPem("unterminated BEGIN line".to_owned()))?;
        let label = after_begin.get(..label_end).unwrap_or_default();
        if label.contains('\n') {
            return Err(KeyError::MalformedPem("unterminated BEGIN line".to_owned()));
        }
        let end_marker = format!("-----END {label}-----");
        let end_at = block_and_after
            .find(&end_marker)
            .ok_or_else(|| KeyError::MalformedPem(format!("no \"-----END {label}-----\" line")))?;
        let block_len = end_at + end_marker.len();
        let block = block_and_after.get(..block_len).unwrap_or_default();
        if label == "EC PARAMETERS" {
            rest = block_and_after.get(block_len..).unwrap_or_default();
            continue;
        }
        if block.contains("Proc-Type:") || block.contains("DEK-Info:") {
            return Err(KeyError::Encrypted);
        }
        let (label, der) = pem_rfc7468::decode_vec(block.as_bytes())
            .map_err(|e| KeyError::MalformedPem(e.to_string()))?;
        return Ok((label.to_owned(), Zeroizing::new(der)));
    }
}

fn bit_length(n: UintRef<'_>) -> usize {
    let bytes = n.as_bytes();
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// Reads the modulus size of a PKCS#1 `RSAPrivateKey` without decoding the rest.
fn rsa_private_bits(der: &[u8]) -> Result<usize, KeyError> {
    let malformed = |_| KeyError::Malformed("RSA private key");
    AnyRef::from_der(der)
        .map_err(malformed)?
        .sequence(|r| {
            let _version = UintRef::decode(r)?;
            let n = UintRef::decode(r)?;
            while !r.is_finished() {
                AnyRef::decode(r)?;
            }
            Ok::<_, der::Error>(bit_length(n))
        })
        .map_err(malformed)
}

/// Reads the modulus size of a PKCS#1 `RSAPublicKey`.
fn rsa_public_bits(der: &[u8]) -> Result<usize, KeyError> {
    let malformed = |_| KeyError::Malformed("RSA public key");
    AnyRef::from_der(der)
        .map_err(malformed)?
        .sequence(|r| {
            let n = UintRef::decode(r)?;
            let _e = UintRef::decode(r)?;
            Ok::<_, der::Error>(bit_length(n))
        })
        .map_err(malformed)
}

/// The named curve of a SEC1 `ECPrivateKey`, if the optional `[0] parameters` is present.
fn sec1_curve(der: &[u8]) -> Result<Option<ObjectIdentifier>, KeyError> {
    let malformed = |_| KeyError::Malformed("EC private key");
    AnyRef::from_der(der)
        .map_err(malformed)?
        .sequence(|r| {
            let _version = UintRef::decode(r)?;
            let _private = AnyRef::decode(r)?;
            let mut curve = None;
            while !r.is_finished() {
                let field = AnyRef::decode(r)?;
                if field.tag()
                    == (Tag::ContextSpecific {
                        constructed: true,
                        number: TagNumber(0),
                    })
                {
                    curve = Some(ObjectIdentifier::from_der(field.value())?);
                }
            }
            Ok::<_, der::Error>(curve)
        })
        .map_err(malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unb64url(text: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .unwrap()
    }

    /// RFC 7638 §3.1: the example RSA key and its thumbprint, through the whole chain
    /// (PKCS#1 DER → JWK members → thumbprint).
    #[test]
    fn rsa_jwk_and_thumbprint_match_rfc_7638() {
        let n_b64 = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let n = unb64url(n_b64);
        assert_eq!((n.len(), n[0] & 0x80), (256, 0x80));
        // RSAPublicKey ::= SEQUENCE { INTEGER n (a 0x00 first: the high bit is set), INTEGER e }
        let mut der = vec![0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00];
        der.extend_from_slice(&n);
        der.extend_from_slice(&[0x02, 0x03, 0x01, 0x00, 0x01]);
        let key = PublicKey::from_pkcs1_der(&der).unwrap();
        let jwk = key.to_jwk().unwrap();
        assert_eq!(
            jwk,
            PublicJwk::Rsa {
                n: n_b64.to_owned(),
                e: "AQAB".to_owned()
            },
            "the DER's leading zero octet is not part of n"
        );
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        // Any other key has another thumbprint.
        let mut other = der.clone();
        let last_n = der.len() - 6;
        other[last_n] ^= 2; // n stays odd, so still a valid modulus
        let other = PublicKey::from_pkcs1_der(&other).unwrap().to_jwk().unwrap();
        assert_ne!(other.thumbprint(), jwk.thumbprint());
    }

    /// RFC 8037 §A.1–A.3: the Ed25519 example key (RFC 8032 test 1), its `x` and thumbprint.
    #[test]
    fn ed25519_jwk_and_thumbprint_match_rfc_8037() {
        let raw = hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap();
        let mut spki = hex::decode("302a300506032b6570032100").unwrap();
        spki.extend_from_slice(&raw);
        let jwk = PublicKey::from_spki_der(&spki).unwrap().to_jwk().unwrap();
        assert_eq!(
            jwk,
            PublicJwk::Ed25519 {
                x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".to_owned()
            }
        );
        assert_eq!(
            jwk.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn generated_keys_export_consistent_jwks() {
        let rsa = PrivateKey::generate_rsa(RsaBits::B2048).unwrap();
        let PublicKey::Rsa(public) = rsa.public_key().unwrap() else {
            panic!("not RSA")
        };
        let PublicJwk::Rsa { n, e } = PublicKey::Rsa(public.clone()).to_jwk().unwrap() else {
            panic!("not an RSA JWK")
        };
        assert_eq!(e, "AQAB");
        let n = unb64url(&n);
        assert_eq!(n.len(), public.modulus_len());
        assert!(
            public
                .pkcs1_der()
                .windows(n.len())
                .any(|w| w == n.as_slice())
        );

        let ed = PrivateKey::generate_ed25519()
            .unwrap()
            .public_key()
            .unwrap();
        let PublicKey::Ed25519(raw) = &ed else {
            panic!("not Ed25519")
        };
        assert_eq!(
            ed.to_jwk().unwrap(),
            PublicJwk::Ed25519 {
                x: b64url(raw.raw())
            }
        );

        let p256 = PrivateKey::generate_p256().unwrap().public_key().unwrap();
        let PublicJwk::P256 { x, y } = p256.to_jwk().unwrap() else {
            panic!("not a P-256 JWK")
        };
        let mut point = vec![0x04];
        point.extend(unb64url(&x));
        point.extend(unb64url(&y));
        assert!(p256.to_spki_der().ends_with(&point));
    }

    #[test]
    fn ec_parameters_block_is_skipped_and_garbage_is_not_pem() {
        assert_eq!(
            PrivateKey::from_pem(b"hello").unwrap_err(),
            KeyError::NotPem
        );
        let params =
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n";
        assert_eq!(
            PrivateKey::from_pem(params.as_bytes()).unwrap_err(),
            KeyError::NotPem
        );
    }

    #[test]
    fn generated_keys_round_trip_through_pem() {
        for key in [
            PrivateKey::generate_p256().unwrap(),
            PrivateKey::generate_ed25519().unwrap(),
        ] {
            let pem = key.to_pkcs8_pem().unwrap();
            let again = PrivateKey::from_pem(pem.as_bytes()).unwrap();
            assert_eq!(again.kind(), key.kind());
            assert_eq!(again.public_key().unwrap(), key.public_key().unwrap());
            let pub_pem = key.public_key().unwrap().to_pem().unwrap();
            assert_eq!(
                PublicKey::from_pem(pub_pem.as_bytes()).unwrap(),
                key.public_key().unwrap()
            );
            assert_eq!(
                PublicKey::from_pem(pem.as_bytes()).unwrap_err(),
                KeyError::PrivateKeyGiven
            );
            assert_eq!(
                PrivateKey::from_pem(pub_pem.as_bytes()).unwrap_err(),
                KeyError::PublicKeyGiven
            );
        }
    }
}
