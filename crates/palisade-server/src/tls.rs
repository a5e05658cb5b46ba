//! TLS: the development certificate authority, the server certificate it signs, and the
//! rustls configuration.
//!
//! On the first start a CA (ECDSA P-256, ten years) is written to `DIR/tls/ca.pem` with its
//! key in `ca-key.pem` (0600); the user trusts `ca.pem` once (browser, curl `--cacert`). A
//! server certificate for `localhost`, `127.0.0.1`, `::1` and the listen address is signed by
//! it (`server.pem`, `server-key.pem` 0600, one year). Later starts reuse both; the leaf is
//! re-issued when it no longer verifies against the CA for every name it must cover (it
//! expires within a day, the listen address changed, or the CA was replaced), so the trusted
//! CA survives those changes. A damaged or half-present CA is an error, never silently
//! replaced: replacing it would break every client that trusts it.
//!
//! The validity check uses rustls's own verifier, so "valid" means exactly what a client
//! using the same CA would accept.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{RootCertStore, ServerConfig};

use crate::config::describe_io;

/// Names every development certificate covers besides the listen address.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
const CA_COMMON_NAME: &str = "Palisade development CA";
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A leaf that would expire within this margin is re-issued at start-up.
const RENEW_MARGIN: Duration = Duration::from_secs(24 * 60 * 60);

/// A TLS set-up failure, naming the file involved.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("TLS set-up failed: {0}")]
    Setup(String),
}

/// The files of the development PKI inside the data directory.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TlsPaths {
    pub fn new(data_dir: &Path) -> Self {
        let dir = data_dir.join("tls");
        Self {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca-key.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server-key.pem"),
            dir,
        }
    }
}

/// The crypto provider, chosen explicitly rather than left to whichever rustls feature
/// happens to be enabled by some dependency (aws-lc-rs: FIPS-validated and the fastest
/// measured here).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Loads (creating or renewing as needed) the development certificates and returns the
/// rustls server configuration: TLS 1.2 and 1.3 only, ALPN `h2` then `http/1.1`.
pub fn server_config(data_dir: &Path, listen: IpAddr) -> Result<Arc<ServerConfig>, TlsError> {
    let paths = TlsPaths::new(data_dir);
    create_private_dir(&paths.dir)?;
    let (ca_key, ca_der) = load_or_create_ca(&paths)?;
    let (chain, key) = load_or_issue_leaf(&paths, &ca_key, &ca_der, listen)?;

    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::File {
            path: paths.server_cert.clone(),
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| file_error(dir, &e))
}

fn file_error(path: &Path, err: &std::io::Error) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: describe_io(err),
    }
}

fn rcgen_error(path: &Path, err: &rcgen::Error) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "Palisade (development only)");
    params.distinguished_name = dn;
    // Path length 0: the CA signs server certificates, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn load_or_create_ca(paths: &TlsPaths) -> Result<(KeyPair, CertificateDer<'static>), TlsError> {
    match (paths.ca_cert.exists(), paths.ca_key.exists()) {
        (true, true) => {
            let key_pem =
                fs::read_to_string(&paths.ca_key).map_err(|e| file_error(&paths.ca_key, &e))?;
            let key = KeyPair::from_pem(&key_pem).map_err(|e| rcgen_error(&paths.ca_key, &e))?;
            let der = read_cert(&paths.ca_cert)?;
            Ok((key, der))
        }
        (false, false) => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map_err(|e| rcgen_error(&paths.ca_key, &e))?;
            let mut params = ca_params().map_err(|e| rcgen_error(&paths.ca_cert, &e))?;
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + CA_LIFETIME;
            let cert = params
                .self_signed(&key)
                .map_err(|e| rcgen_error(&paths.ca_cert, &e))?;
            // Key first: a certificate on disk must never be without its key.
            write_file(&paths.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&paths.ca_cert, cert.pem().as_bytes(), 0o644)?;
            tracing::info!(ca = %paths.ca_cert.display(), "created a development certificate authority");
            Ok((key, cert.der().clone()))
        }
        (cert_exists, _) => {
            let missing = if cert_exists {
                &paths.ca_key
            } else {
                &paths.ca_cert
            };
            Err(TlsError::File {
                path: missing.clone(),
                reason: format!(
                    "missing while its pair exists; restore it, or delete {} to create a new CA",
                    paths.dir.display()
                ),
            })
        }
    }
}

fn read_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let pem = fs::read(path).map_err(|e| file_error(path, &e))?;
    CertificateDer::from_pem_slice(&pem).map_err(|e| TlsError::File {
        path: path.to_owned(),
        reason: format!("not a PEM certificate ({e})"),
    })
}

/// The names the leaf must be valid for.
fn required_names(listen: IpAddr) -> Vec<String> {
    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| (*s).to_owned()).collect();
    let own = listen.to_string();
    if !listen.is_unspecified() && !names.contains(&own) {
        names.push(own);
    }
    names
}

type Chain = Vec<CertificateDer<'static>>;

fn load_or_issue_leaf(
    paths: &TlsPaths,
    ca_key: &KeyPair,
    ca_der: &CertificateDer<'static>,
    listen: IpAddr,
) -> Result<(Chain, PrivateKeyDer<'static>), TlsError> {
    let names = required_names(listen);
    if let Some(existing) = existing_leaf(paths, ca_der, &names) {
        return Ok(existing);
    }

    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| rcgen_error(&paths.server_key, &e))?;
    let mut params =
        CertificateParams::new(names.clone()).map_err(|e| rcgen_error(&paths.server_cert, &e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + LEAF_LIFETIME;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    // The issuer needs only the CA's name and key: rebuilding its parameters avoids parsing
    // the certificate back (which would need an X.509 parser dependency).
    let ca_params = ca_params().map_err(|e| rcgen_error(&paths.ca_cert, &e))?;
    let issuer = Issuer::new(ca_params, ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| rcgen_error(&paths.server_cert, &e))?;
    write_file(&paths.server_key, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(&paths.server_cert, cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %paths.server_cert.display(), names = ?names, "issued a development server certificate");
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| TlsError::File {
        path: paths.server_key.clone(),
        reason: e.to_owned(),
    })?;
    Ok((vec![cert.der().clone()], key_der))
}

/// The stored leaf and key if they verify against the CA for every name, a day ahead.
/// Anything wrong (absent, unreadable, expired, wrong names) means "issue a new one".
fn existing_leaf(
    paths: &TlsPaths,
    ca_der: &CertificateDer<'static>,
    names: &[String],
) -> Option<(Chain, PrivateKeyDer<'static>)> {
    let cert_pem = fs::read(&paths.server_cert).ok()?;
    let key_pem = fs::read(&paths.server_key).ok()?;
    let chain: Chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).ok()?;
    let (leaf, intermediates) = chain.split_first()?;

    let mut roots = RootCertStore::empty();
    roots.add(ca_der.clone()).ok()?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .ok()?;
    let soon = UnixTime::now()
        .as_secs()
        .checked_add(RENEW_MARGIN.as_secs())?;
    let when = UnixTime::since_unix_epoch(Duration::from_secs(soon));
    for name in names {
        let server_name = ServerName::try_from(name.clone()).ok()?;
        if let Err(err) = verifier.verify_server_cert(leaf, intermediates, &server_name, &[], when)
        {
            tracing::info!(%name, %err, "re-issuing the development server certificate");
            return None;
        }
    }
    // The key must belong to the certificate (rustls compares the SubjectPublicKeyInfos);
    // a mismatch here just means "re-issue", where building the config would fail.
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider()).ok()?;
    Some((chain, key))
}

/// Writes `bytes` to `path` atomically (temporary file beside it, fsync, rename) with
/// `mode`, so a crash never leaves a truncated key or a key readable by others.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        file_error(path, &e)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reuses_ca_and_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        server_config(&data, "127.0.0.1".parse().unwrap()).unwrap();
        let p = TlsPaths::new(&data);
        assert_eq!(mode(&p.dir), 0o700);
        assert_eq!(mode(&p.ca_key), 0o600);
        assert_eq!(mode(&p.server_key), 0o600);
        let ca = fs::read(&p.ca_cert).unwrap();
        let leaf = fs::read(&p.server_cert).unwrap();

        server_config(&data, "127.0.0.1".parse().unwrap()).unwrap();
        assert_eq!(fs::read(&p.ca_cert).unwrap(), ca, "CA reused");
        assert_eq!(fs::read(&p.server_cert).unwrap(), leaf, "leaf reused");

        // A new listen address needs a new leaf from the same CA.
        server_config(&data, "192.0.2.1".parse().unwrap()).unwrap();
        assert_eq!(fs::read(&p.ca_cert).unwrap(), ca);
        assert_ne!(fs::read(&p.server_cert).unwrap(), leaf, "leaf re-issued");
    }

    #[test]
    fn mismatched_key_reissues_leaf() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        let p = TlsPaths::new(dir.path());
        let leaf = fs::read(&p.server_cert).unwrap();
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        fs::write(&p.server_key, other.serialize_pem()).unwrap();
        server_config(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        assert_ne!(fs::read(&p.server_cert).unwrap(), leaf);
    }

    #[test]
    fn half_present_ca_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), "127.0.0.1".parse().unwrap()).unwrap();
        let p = TlsPaths::new(dir.path());
        fs::remove_file(&p.ca_key).unwrap();
        let err = server_config(dir.path(), "127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(err.to_string().contains("ca-key.pem"), "{err}");
    }
}
