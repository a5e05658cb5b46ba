//! Known-answer tests for `rsa_oaep` and the private-key parser: every case of Wycheproof's
//! RSA-OAEP-2048 SHA-256/MGF1-SHA-256 file (labelled and must-fail cases included), plus
//! the key-parser error cases that the command line relies on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::{load_json, unhex};
use palisade_crypto::keys::{KeyError, KeyKind, PrivateKey, PublicKey, RsaBits};
use palisade_crypto::rsa_oaep::{OaepError, decrypt, encrypt, max_plaintext_len};

#[test]
fn wycheproof_rsa_oaep_2048_sha256_mgf1sha256() {
    let json = load_json("wycheproof/rsa_oaep_2048_sha256_mgf1sha256_test.json");
    let (mut valid, mut invalid, mut labelled) = (0, 0, 0);
    for g in json["testGroups"].as_array().unwrap() {
        assert_eq!(g["sha"], "SHA-256");
        assert_eq!(g["mgfSha"], "SHA-256");
        let key = PrivateKey::from_pem(g["privateKeyPem"].as_str().unwrap().as_bytes()).unwrap();
        let from_der =
            PrivateKey::from_pkcs8_der(&unhex(g["privateKeyPkcs8"].as_str().unwrap())).unwrap();
        assert_eq!(key.public_key().unwrap(), from_der.public_key().unwrap());
        let public = key.public_key().unwrap();
        for t in g["tests"].as_array().unwrap() {
            let id = t["tcId"].as_u64().unwrap();
            let ct = unhex(t["ct"].as_str().unwrap());
            let msg = unhex(t["msg"].as_str().unwrap());
            let label = unhex(t["label"].as_str().unwrap());
            if !label.is_empty() {
                labelled += 1;
            }
            let label = (!label.is_empty()).then_some(label.as_slice());
            let got = decrypt(&key, &ct, label);
            match t["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    assert_eq!(
                        got.as_deref().map(|v| v.as_slice()),
                        Ok(msg.as_slice()),
                        "tcId {id}"
                    );
                    // And our encryption of the same message decrypts back.
                    let again = encrypt(&public, &msg, label).unwrap();
                    assert_eq!(
                        decrypt(&key, &again, label).unwrap().as_slice(),
                        msg.as_slice()
                    );
                }
                "invalid" => {
                    invalid += 1;
                    assert_eq!(
                        got.map(|_| ()),
                        Err(OaepError::Decryption),
                        "tcId {id} ({})",
                        t["comment"]
                    );
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    assert_eq!((valid, invalid), (18, 19));
    assert!(labelled > 0, "the file's labelled cases were not seen");
}

#[test]
fn limits_and_wrong_keys() {
    let key = PrivateKey::generate_rsa(RsaBits::B2048).unwrap();
    let public = key.public_key().unwrap();
    let PublicKey::Rsa(rsa) = &public else {
        panic!()
    };
    assert_eq!(max_plaintext_len(rsa), 190);
    let ct = encrypt(&public, &[7; 190], None).unwrap();
    assert_eq!(ct.len(), 256);
    assert_eq!(decrypt(&key, &ct, None).unwrap().as_slice(), &[7; 190]);
    // An empty label and no label are the same thing.
    assert_eq!(decrypt(&key, &ct, Some(b"")).unwrap().as_slice(), &[7; 190]);
    assert_eq!(
        decrypt(&key, &ct, Some(b"x")).map(|_| ()),
        Err(OaepError::Decryption)
    );
    assert_eq!(
        encrypt(&public, &[0; 191], None),
        Err(OaepError::MessageTooLong {
            len: 191,
            max: 190,
            bits: 2048
        })
    );
    let msg = encrypt(&public, &[0; 191], None).unwrap_err().to_string();
    assert!(msg.contains("190"), "{msg}");

    // Truncated, extended and tampered ciphertexts: one opaque error.
    let mut tampered = ct.clone();
    tampered[100] ^= 1;
    let mut longer = ct.clone();
    longer.push(0);
    for bad in [&ct[..255], &longer[..], &tampered[..], &[][..]] {
        assert_eq!(
            decrypt(&key, bad, None).map(|_| ()),
            Err(OaepError::Decryption)
        );
    }

    let ed = PrivateKey::generate_ed25519().unwrap();
    assert_eq!(
        encrypt(&ed.public_key().unwrap(), b"x", None),
        Err(OaepError::WrongKeyType(KeyKind::Ed25519))
    );
    assert_eq!(
        decrypt(&ed, &ct, None).map(|_| ()),
        Err(OaepError::WrongKeyType(KeyKind::Ed25519))
    );
}

#[test]
fn key_parser_errors_are_typed() {
    let not_pem = PrivateKey::from_pem(b"\x30\x82\x01\x00garbage").unwrap_err();
    assert_eq!(not_pem, KeyError::NotPem);
    let bad_b64 = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(bad_b64.as_bytes()),
        Err(KeyError::MalformedPem(_))
    ));
    let no_end = "-----BEGIN PRIVATE KEY-----\nAAAA\n";
    assert!(matches!(
        PrivateKey::from_pem(no_end.as_bytes()),
        Err(KeyError::MalformedPem(_))
    ));
    let junk_der = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(junk_der.as_bytes()),
        Err(KeyError::Malformed(_))
    ));
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
    assert_eq!(
        PrivateKey::from_pem(encrypted.as_bytes()).unwrap_err(),
        KeyError::Encrypted
    );
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(
        PrivateKey::from_pem(legacy.as_bytes()).unwrap_err(),
        KeyError::Encrypted
    );
    let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_eq!(
        PrivateKey::from_pem(cert.as_bytes()).unwrap_err(),
        KeyError::Certificate
    );
    assert_eq!(
        PublicKey::from_pem(cert.as_bytes()).unwrap_err(),
        KeyError::Certificate
    );
    let ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    assert!(matches!(
        PrivateKey::from_pem(ssh.as_bytes()),
        Err(KeyError::UnsupportedPemType(_))
    ));
    // X25519 (PKCS#8 from RFC 8410 §10.3): a real key of an unsupported algorithm.
    let x25519 = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VuBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        PrivateKey::from_pem(x25519.as_bytes()).unwrap_err(),
        KeyError::UnsupportedAlgorithm("X25519".to_owned())
    );
}
