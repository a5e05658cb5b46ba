//! Fernet tokens and key text, as `palisade fernet decrypt` reads them from a file or stdin.
//!
//! Properties: nothing panics; a token is only ever accepted if it is byte for byte what our
//! own encoder produces for the recovered plaintext, timestamp and IV (so no malleable
//! encoding, lax padding or MAC bypass can be accepted); and a slice of the input
//! round-trips through encrypt/decrypt under the fixed key.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE;
use libfuzzer_sys::fuzz_target;
use palisade_crypto::fernet::{self, FernetError, Key};

/// The "current time" of every check: the seed tokens are stamped around it.
const NOW: u64 = 1_700_000_000;
const TTL: u64 = 60;

fn fixed_key() -> Key {
    Key::from_base64(include_bytes!("../fixtures/fernet.key")).expect("fixture key")
}

fuzz_target!(|data: &[u8]| {
    let key = fixed_key();

    // Key text: anything that parses must re-encode to text that parses to the same key.
    if let Ok(parsed) = Key::from_base64(data) {
        let text = parsed.to_base64();
        let again = Key::from_base64(text.as_bytes()).expect("re-encoded key parses");
        assert_eq!(again.to_base64(), text);
    }

    let keys = [key.clone()];
    match fernet::decrypt(&keys, data, Some(TTL), NOW) {
        Ok(plaintext) => {
            // Only a genuine token under the fixed key can get here (the seeds hold some).
            // Re-seal with the token's own timestamp and IV: it must reproduce the input.
            let raw = URL_SAFE
                .decode(data.trim_ascii())
                .expect("an accepted token is strict base64url");
            let ts =
                fernet::extract_timestamp(&keys, data).expect("accepted token has a timestamp");
            assert!(NOW.saturating_sub(ts) <= TTL, "expired token accepted");
            assert!(ts <= NOW + fernet::MAX_CLOCK_SKEW, "future token accepted");
            let iv: [u8; 16] = raw[9..25].try_into().expect("iv");
            let resealed = fernet::encrypt_at(&key, &plaintext, ts, iv).expect("re-encrypt");
            assert_eq!(
                resealed.as_bytes(),
                data.trim_ascii(),
                "accepted a token that is not the canonical encoding of its contents"
            );
        }
        Err(FernetError::InvalidToken | FernetError::Expired | FernetError::FromFuture) => {}
        Err(other) => panic!("unexpected error for a small token: {other:?}"),
    }
    // The other entry points that take a token, with no time checks.
    let _ = fernet::extract_timestamp(&keys, data);
    if let Ok(rotated) = fernet::rotate(&keys, data) {
        // Rotation keeps the timestamp and the plaintext.
        let before = fernet::extract_timestamp(&keys, data).expect("rotated token's timestamp");
        let after = fernet::extract_timestamp(&keys, rotated.as_bytes()).expect("rotated");
        assert_eq!(before, after);
    }

    // Round trip of (a bounded slice of) the input as a plaintext.
    let pt = &data[..data.len().min(256)];
    let mut iv = [0u8; 16];
    for (d, s) in iv.iter_mut().zip(data.iter().rev()) {
        *d = *s;
    }
    let token = fernet::encrypt_at(&key, pt, NOW, iv).expect("encrypt");
    let back = fernet::decrypt(&keys, token.as_bytes(), Some(TTL), NOW).expect("own token");
    assert_eq!(back, pt);
    // A token made under a different key must not open under the fixed one.
    let other = Key::from_bytes([0x42; 32]);
    let foreign = fernet::encrypt_at(&other, pt, NOW, iv).expect("encrypt");
    assert_eq!(
        fernet::decrypt(&keys, foreign.as_bytes(), Some(TTL), NOW),
        Err(FernetError::InvalidToken)
    );
});
