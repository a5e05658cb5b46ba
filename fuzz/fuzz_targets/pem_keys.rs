//! Key files: every PEM and DER parser for private and public keys, as `palisade sign`,
//! `verify`, `rsa encrypt|decrypt` read them from user-supplied files.
//!
//! Properties: nothing panics; a parsed key re-encodes to a form that parses back to the
//! same key (same kind, same canonical encoding); a parsed private key yields a public key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_crypto::keys::{PrivateKey, PublicKey};

fn check_private(key: &PrivateKey) {
    let der = key.to_pkcs8_der();
    let again = PrivateKey::from_pkcs8_der(&der).expect("own PKCS#8 DER parses");
    assert_eq!(again.kind(), key.kind());
    assert_eq!(*again.to_pkcs8_der(), *der, "PKCS#8 encoding is not stable");
    let pem = key.to_pkcs8_pem().expect("PKCS#8 PEM");
    let from_pem = PrivateKey::from_pem(pem.as_bytes()).expect("own PKCS#8 PEM parses");
    assert_eq!(*from_pem.to_pkcs8_der(), *der);
    let public = key.public_key().expect("a private key has a public key");
    assert_eq!(public.kind(), key.kind());
    check_public(&public);
}

fn check_public(key: &PublicKey) {
    let spki = key.to_spki_der();
    let again = PublicKey::from_spki_der(spki).expect("own SPKI DER parses");
    assert_eq!(again.kind(), key.kind());
    assert_eq!(again.to_spki_der(), spki, "SPKI encoding is not stable");
    let pem = key.to_pem().expect("SPKI PEM");
    let from_pem = PublicKey::from_pem(pem.as_bytes()).expect("own SPKI PEM parses");
    assert_eq!(from_pem.to_spki_der(), spki);
}

fuzz_target!(|data: &[u8]| {
    let private = [
        PrivateKey::from_pem(data),
        PrivateKey::from_pkcs8_der(data),
        PrivateKey::from_pkcs1_der(data),
        PrivateKey::from_sec1_der(data),
    ];
    for key in private.iter().flatten() {
        check_private(key);
    }
    let public = [
        PublicKey::from_pem(data),
        PublicKey::from_spki_der(data),
        PublicKey::from_pkcs1_der(data),
    ];
    for key in public.iter().flatten() {
        check_public(key);
    }
});
