//! The secure drop's published keys over real TLS (issue 6, first step): both keys are
//! served as PEM and JWK that describe the same key (checked with Python's `cryptography`),
//! the kid is the RFC 7638 thumbprint, a message Python encrypts to the served key decrypts
//! with the server's private key, the key is made once (not per request), a rotation changes
//! the served kid and keeps the old key for decryption, and no private key reaches a response
//! or the database file in the clear.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use palisade_crypto::rsa_oaep;
use palisade_server::drop::PUBLIC_KEY_CACHE_CONTROL;
use palisade_server::secrets::{self, DropKeyKind};
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;

use common::{Browser, TestServer, venv_python};

/// Reads `{"kind", "pem", "jwk", "plaintext_hex"?}` on stdin; checks the PEM and the JWK are
/// one key and computes the RFC 7638 thumbprint itself; for the RSA key also encrypts the
/// plaintext (RSA-OAEP, SHA-256, MGF1-SHA-256, no label). Prints
/// `{"thumbprint", "bits"?, "ciphertext_hex"?}`.
const PY_CHECK: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

req = json.load(sys.stdin)
jwk = req["jwk"]
key = serialization.load_pem_public_key(req["pem"].encode())
out = {}
if req["kind"] == "rsa":
    assert isinstance(key, rsa.RSAPublicKey), type(key)
    nums = key.public_numbers()
    n = unb64u(jwk["n"])
    e = unb64u(jwk["e"])
    assert n[0] != 0 and e[0] != 0, "not the minimal octets"
    assert int.from_bytes(n, "big") == nums.n, "n differs"
    assert int.from_bytes(e, "big") == nums.e, "e differs"
    required = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    out["bits"] = key.key_size
    ct = key.encrypt(
        bytes.fromhex(req["plaintext_hex"]),
        padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
    )
    out["ciphertext_hex"] = ct.hex()
else:
    assert isinstance(key, ed25519.Ed25519PublicKey), type(key)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert unb64u(jwk["x"]) == raw, "x differs"
    required = {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}
canonical = json.dumps(required, sort_keys=True, separators=(",", ":")).encode()
out["thumbprint"] = b64u(hashlib.sha256(canonical).digest())
print(json.dumps(out))
"#;

fn python_check(request: &Value) -> Value {
    let mut child = Command::new(venv_python())
        .args(["-c", PY_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// GETs a drop key route and checks what every answer must be; returns the body and its text.
async fn get_key(browser: &mut Browser, path: &str) -> (Value, String) {
    let page = browser.get(path).await;
    assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
    assert_eq!(
        page.headers[header::CONTENT_TYPE].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(
        page.headers[header::CACHE_CONTROL].to_str().unwrap(),
        PUBLIC_KEY_CACHE_CONTROL
    );
    assert!(!page.body.contains("PRIVATE"), "{}", page.body);
    let body: Value = serde_json::from_str(&page.body).unwrap();
    let mut fields: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["alg", "jwk", "kid", "pem"]);
    assert_eq!(body["jwk"]["kid"], body["kid"]);
    assert_eq!(body["jwk"]["alg"], body["alg"]);
    (body, page.body)
}

fn jwk_members(body: &Value) -> Vec<String> {
    let mut names: Vec<_> = body["jwk"].as_object().unwrap().keys().cloned().collect();
    names.sort();
    names
}

/// Every file of the embedded database (the main file and its WAL, if any).
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("palisade.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!all.is_empty(), "no database file found");
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drop_keys_are_published_usable_stable_rotatable_and_never_leak() {
    let mut server = TestServer::start(|_| {}).await;
    let state = server.state.clone();
    // Nothing is made at start-up (RSA-3072 generation is slow): the first request makes it.
    for purpose in [secrets::DROP_ENCRYPTION, secrets::DROP_RECEIPT] {
        use palisade_core::KeyStore as _;
        assert!(state.store().list_keys(purpose).await.unwrap().is_empty());
    }
    let mut browser = server.browser();

    // The encryption key: PEM and JWK are one RSA-3072 key, and the kid is its thumbprint.
    let (enc, enc_text) = get_key(&mut browser, "/api/drop/public-key").await;
    assert_eq!(enc["alg"], "RSA-OAEP-256");
    assert_eq!(enc["jwk"]["kty"], "RSA");
    assert_eq!(enc["jwk"]["use"], "enc");
    assert_eq!(jwk_members(&enc), ["alg", "e", "kid", "kty", "n", "use"]);
    let plaintext = b"a confidential message for the drop \x00\xff";
    let checked = python_check(&serde_json::json!({
        "kind": "rsa",
        "pem": enc["pem"],
        "jwk": enc["jwk"],
        "plaintext_hex": hex::encode(plaintext),
    }));
    assert_eq!(checked["bits"], 3072);
    assert_eq!(checked["thumbprint"], enc["kid"]);
    let old_kid = enc["kid"].as_str().unwrap().to_owned();

    // What Python encrypted to the served key decrypts with the server's stored key.
    let ciphertext = hex::decode(checked["ciphertext_hex"].as_str().unwrap()).unwrap();
    let keys =
        secrets::active_drop_keys(state.store(), state.master_key(), DropKeyKind::Encryption)
            .await
            .unwrap();
    assert_eq!(keys.len(), 1, "one key, made once");
    assert_eq!(keys[0].kid, old_kid);
    assert_eq!(
        rsa_oaep::decrypt(&keys[0].private, &ciphertext, None)
            .unwrap()
            .as_slice(),
        plaintext
    );
    let enc_private = keys[0].private.to_pkcs8_der();

    // The receipt key: JWK x is the raw Ed25519 key in the PEM; the kid is its thumbprint.
    let (rec, rec_text) = get_key(&mut browser, "/api/drop/receipt-key").await;
    assert_eq!(rec["alg"], "EdDSA");
    assert_eq!(rec["jwk"]["kty"], "OKP");
    assert_eq!(rec["jwk"]["crv"], "Ed25519");
    assert_eq!(rec["jwk"]["use"], "sig");
    assert_eq!(jwk_members(&rec), ["alg", "crv", "kid", "kty", "use", "x"]);
    let checked = python_check(&serde_json::json!({
        "kind": "ed25519", "pem": rec["pem"], "jwk": rec["jwk"],
    }));
    assert_eq!(checked["thumbprint"], rec["kid"]);
    let rec_keys =
        secrets::active_drop_keys(state.store(), state.master_key(), DropKeyKind::Receipt)
            .await
            .unwrap();
    assert_eq!(rec_keys.len(), 1);
    let rec_private = rec_keys[0].private.to_pkcs8_der();

    // Asked again (and concurrently): the same keys, no new key per request.
    let mut again = Vec::new();
    for _ in 0..4 {
        let mut b = server.browser();
        again.push(tokio::spawn(async move {
            get_key(&mut b, "/api/drop/public-key").await.0["kid"].clone()
        }));
    }
    for task in again {
        assert_eq!(task.await.unwrap(), old_kid);
    }
    assert_eq!(
        get_key(&mut browser, "/api/drop/receipt-key").await.0["kid"],
        rec["kid"]
    );

    // No private key in any response, in any encoding.
    for (text, der) in [(&enc_text, &enc_private), (&rec_text, &rec_private)] {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_slice());
        // Any 40-character run of the private key's base64 (its PEM body) would show it.
        for start in (0..b64.len().saturating_sub(40)).step_by(40) {
            assert!(
                !text.contains(&b64[start..start + 40]),
                "private key served"
            );
        }
        assert!(!text.contains(&hex::encode(der.as_slice())[..64]));
    }

    // A rotation changes the served key; the old one stays active and still decrypts.
    let new_kid = secrets::rotate_drop_key(
        state.store(),
        state.master_key(),
        DropKeyKind::Encryption,
        state.now(),
    )
    .await
    .unwrap();
    assert_ne!(new_kid, old_kid);
    let (rotated, _) = get_key(&mut browser, "/api/drop/public-key").await;
    assert_eq!(rotated["kid"], new_kid.as_str());
    assert_ne!(rotated["pem"], enc["pem"]);
    let keys =
        secrets::active_drop_keys(state.store(), state.master_key(), DropKeyKind::Encryption)
            .await
            .unwrap();
    let kids: Vec<_> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
    assert_eq!(
        rsa_oaep::decrypt(&keys[1].private, &ciphertext, None)
            .unwrap()
            .as_slice(),
        plaintext,
        "the rotated-out key still decrypts"
    );
    assert!(rsa_oaep::decrypt(&keys[0].private, &ciphertext, None).is_err());
    let listed = secrets::list_drop_keys(state.store(), state.master_key())
        .await
        .unwrap();
    assert!(listed.iter().all(|k| k.retired_at.is_none()));

    // The database holds the private keys only as ciphertext.
    server.stop().await;
    let db = database_bytes(&server);
    for der in [&enc_private, &rec_private] {
        assert!(!contains(&db, der.as_slice()), "PKCS#8 DER in the database");
        // The last 48 bytes hold secret key material for both key types.
        assert!(!contains(&db, &der[der.len() - 48..]));
        assert!(!contains(
            &db,
            hex::encode(&der[der.len() - 48..]).as_bytes()
        ));
    }
    // A positive control: the search does read the table the keys are in.
    assert!(
        contains(&db, old_kid.as_bytes()),
        "the kid is stored as a column"
    );
}
