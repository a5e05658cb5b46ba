//! age files (`palisade decrypt`), identity files (`-i FILE`) and recipients files
//! (`-R FILE`).
//!
//! Properties: nothing panics; `parse_header` and `decrypt` agree on what is a well-formed
//! header (decrypt never gets past a header that `parse_header` refuses); a file only
//! decrypts if its header parsed as a recipient (not passphrase) file; a slice of the
//! input round-trips through encrypt/decrypt to the fixed identity (for one input length
//! in 64, as encrypting costs twenty parses).
//!
//! Passphrase decryption is deliberately not fuzzed: the work factor is attacker-chosen
//! (up to `MAX_SCRYPT_LOG_N`), so each such input could cost seconds and gigabytes of
//! scrypt, which would only measure scrypt. The scrypt stanza parser is still covered,
//! because `decrypt` with identities parses it before refusing the file.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use palisade_crypto::agefile::{self, DecryptWith, EncryptTo, Identity};

fn fixed_identity() -> Identity {
    let text = std::str::from_utf8(include_bytes!("../fixtures/age-identity.txt")).expect("utf-8");
    agefile::parse_identity_file(text)
        .expect("fixture identity")
        .remove(0)
}

fuzz_target!(|data: &[u8]| {
    let identity = fixed_identity();
    let identities = [identity.clone()];

    let header = agefile::parse_header(data);
    let decrypted = agefile::decrypt(DecryptWith::Identities(&identities), data, io::sink());
    match (&header, &decrypted) {
        (Err(_), Ok(_)) => panic!("decrypt accepted a file whose header parse_header refuses"),
        (Ok(info), Ok(_)) => assert!(!info.passphrase, "identity opened a passphrase file"),
        _ => {}
    }

    // Identity and recipients files are text; `age` tools would read them as UTF-8.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = agefile::parse_identity_file(text);
        let _ = agefile::parse_recipients_file(text);
    }

    // Round trip: a bounded slice of the input, encrypted to the fixed identity. Encrypting
    // costs ~3 ms under ASan (X25519 and the 256 KiB copy buffers) against ~0.15 ms for the
    // parse above, and exercises our own writer rather than untrusted input, so it runs for
    // one input length in 64 only.
    if data.len() % 64 != 0 {
        return;
    }
    let pt = &data[..data.len().min(512)];
    let recipients = [identity.recipient()];
    let ct = agefile::encrypt(EncryptTo::Recipients(&recipients), pt, Vec::new()).expect("encrypt");
    assert!(!agefile::parse_header(&ct).expect("own header").passphrase);
    let back = agefile::decrypt(DecryptWith::Identities(&identities), &ct[..], Vec::new())
        .expect("own file decrypts");
    assert_eq!(back, pt);
});
