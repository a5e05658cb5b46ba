//! The tamper-evident audit log: its events, the hash-chain rule and its verification.
//!
//! Record `seq` (1, 2, 3, … with no gaps) stores
//! `hash = SHA-256(prev_hash ‖ canonical_json({"seq", "at", "actor", "action", "target", "detail"}))`
//! where `prev_hash` is the previous record's `hash`, or 32 zero bytes for record 1. Changing,
//! inserting or deleting any record breaks every later link, and [`verify_chain`] names the
//! first broken one. (Cutting records off the *end* leaves a valid shorter chain; detecting
//! that needs the head hash kept elsewhere, which callers can do with [`ChainVerifier::head`].)
//!
//! The rule lives here, not in the backends, so that every backend computes the same hashes
//! and a log copied between databases still verifies.
//!
//! Canonical JSON (in the spirit of RFC 8785, JCS): object keys sorted by UTF-16 code units,
//! no whitespace, strings with only the mandatory escapes, numbers as `serde_json` prints
//! them (integers exactly; floats in shortest round-trip form). The bytes never depend on how
//! a backend stored `detail`, nor on `serde_json`'s `preserve_order` feature.

use std::fmt;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Timestamp;

/// `prev_hash` of the first record.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];
/// `seq` of the first record.
pub const FIRST_SEQ: i64 = 1;

/// Something that happened, as the use case reports it. `detail` is free-form JSON and must
/// never hold a secret (passwords, tokens, session ids): the log is readable by staff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: Timestamp,
    /// Who did it: a username, `system`, or `None` for an anonymous request.
    pub actor: Option<String>,
    /// Dotted verb, e.g. `login.success`, `user.create`, `session.revoke`.
    pub action: String,
    /// What it was done to, e.g. a username or a permission.
    pub target: Option<String>,
    pub detail: Value,
}

impl AuditEvent {
    /// An event with no actor, target or detail (`detail` is JSON `null`).
    pub fn new(at: Timestamp, action: impl Into<String>) -> Self {
        Self {
            at,
            actor: None,
            action: action.into(),
            target: None,
            detail: Value::Null,
        }
    }
}

/// An event at its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(with = "hex_32")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
    pub event: AuditEvent,
}

impl AuditRecord {
    /// The record that follows `last` (its `seq` and `hash`), or the first record when the log
    /// is empty. Backends call this inside the transaction that read `last`.
    pub fn next_after(last: Option<(i64, [u8; 32])>, event: AuditEvent) -> Self {
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (seq.saturating_add(1), hash),
            None => (FIRST_SEQ, GENESIS_HASH),
        };
        let hash = chain_hash(seq, &prev_hash, &event);
        Self {
            seq,
            prev_hash,
            hash,
            event,
        }
    }

    /// Whether `hash` matches the record's own contents (not whether it links to its
    /// predecessor: that is [`ChainVerifier`]'s job).
    pub fn is_self_consistent(&self) -> bool {
        chain_hash(self.seq, &self.prev_hash, &self.event) == self.hash
    }
}

/// `SHA-256(prev_hash ‖ canonical JSON of (seq, event))`.
pub fn chain_hash(seq: i64, prev_hash: &[u8; 32], event: &AuditEvent) -> [u8; 32] {
    let body = canonical_record_json(seq, event);
    crate::sha256(&[prev_hash, body.as_bytes()])
}

/// The canonical JSON text hashed for record `seq`.
pub fn canonical_record_json(seq: i64, event: &AuditEvent) -> String {
    let opt = |s: &Option<String>| s.as_ref().map_or(Value::Null, |s| Value::String(s.clone()));
    let mut doc = serde_json::Map::new();
    doc.insert("seq".into(), Value::from(seq));
    doc.insert("at".into(), Value::from(event.at.unix()));
    doc.insert("actor".into(), opt(&event.actor));
    doc.insert("action".into(), Value::String(event.action.clone()));
    doc.insert("target".into(), opt(&event.target));
    doc.insert("detail".into(), event.detail.clone());
    let mut out = String::new();
    write_canonical(&Value::Object(doc), &mut out);
    out
}

/// Canonical JSON of any value (see the module documentation for the rules).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // JCS orders keys by UTF-16 code units, which differs from byte order for
            // characters above U+FFFF versus U+E000–U+FFFF.
            entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

/// A JSON string with only the escapes JSON requires (RFC 8785 §3.2.2.2).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at record {seq}: {kind}")]
pub struct BrokenLink {
    /// The first record that does not verify.
    pub seq: i64,
    pub kind: BrokenLinkKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokenLinkKind {
    /// A record is missing or out of order: `expected` was due here.
    Gap { expected: i64 },
    /// `prev_hash` is not the previous record's hash.
    PrevHash,
    /// `hash` does not match the record's contents: the record was edited.
    Hash,
}

impl fmt::Display for BrokenLinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gap { expected } => write!(
                f,
                "expected record {expected} (missing or reordered records)"
            ),
            Self::PrevHash => f.write_str("it does not link to the previous record"),
            Self::Hash => f.write_str("its contents do not match its hash (edited)"),
        }
    }
}

/// Checks records one at a time, in `seq` order, so a long log can be verified page by page
/// in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: [u8; 32],
    checked: u64,
}

impl ChainVerifier {
    /// Expects the chain from record 1.
    pub const fn new() -> Self {
        Self {
            expected_seq: FIRST_SEQ,
            prev_hash: GENESIS_HASH,
            checked: 0,
        }
    }

    /// Checks the next record. After an error the verifier should be dropped.
    pub fn push(&mut self, record: &AuditRecord) -> Result<(), BrokenLink> {
        let broken = |kind| {
            Err(BrokenLink {
                seq: record.seq,
                kind,
            })
        };
        if record.seq != self.expected_seq {
            return broken(BrokenLinkKind::Gap {
                expected: self.expected_seq,
            });
        }
        // Content first: an edited record is reported as edited, even though its stored
        // `prev_hash` may also have been changed.
        if !record.is_self_consistent() {
            return broken(BrokenLinkKind::Hash);
        }
        if record.prev_hash != self.prev_hash {
            return broken(BrokenLinkKind::PrevHash);
        }
        self.expected_seq = record.seq.saturating_add(1);
        self.prev_hash = record.hash;
        self.checked = self.checked.saturating_add(1);
        Ok(())
    }

    /// Records verified so far.
    pub const fn checked(&self) -> u64 {
        self.checked
    }

    /// Hash of the last verified record (the genesis hash if none): keep it outside the
    /// database to detect truncation later.
    pub const fn head(&self) -> [u8; 32] {
        self.prev_hash
    }
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Verifies a whole chain, from record 1, in order.
pub fn verify_chain<'a>(
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<(), BrokenLink> {
    let mut verifier = ChainVerifier::new();
    records.into_iter().try_for_each(|r| verifier.push(r))
}

/// Hashes as 64 hex digits in JSON output (`palisade audit tail --json`).
mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(&text, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(i: i64) -> AuditEvent {
        AuditEvent {
            at: Timestamp::from_unix(1_700_000_000 + i),
            actor: Some("alice".into()),
            action: "login.success".into(),
            target: None,
            detail: json!({"ip": "127.0.0.1", "n": i}),
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 0..n {
            let last = out.last().map(|r| (r.seq, r.hash));
            out.push(AuditRecord::next_after(last, event(i)));
        }
        out
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let v = json!({"b": 1, "a": [true, null, "x\"\\\n\u{1}é"], "\u{e000}": 0, "\u{1f600}": 0});
        assert_eq!(
            canonical_json(&v),
            "{\"a\":[true,null,\"x\\\"\\\\\\n\\u0001é\"],\"b\":1,\"\u{1f600}\":0,\"\u{e000}\":0}"
        );
    }

    #[test]
    fn record_json_is_fixed() {
        let e = AuditEvent::new(Timestamp::from_unix(5), "user.create");
        assert_eq!(
            canonical_record_json(1, &e),
            r#"{"action":"user.create","actor":null,"at":5,"detail":null,"seq":1,"target":null}"#
        );
    }

    #[test]
    fn first_record_links_to_zeros() {
        let records = chain(1);
        let first = &records[0];
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev_hash, GENESIS_HASH);
        let body = canonical_record_json(1, &first.event);
        assert_eq!(first.hash, crate::sha256(&[&[0u8; 32], body.as_bytes()]));
    }

    #[test]
    fn valid_chain_verifies() {
        let records = chain(10);
        assert_eq!(verify_chain(&records), Ok(()));
        assert_eq!(verify_chain(&[]), Ok(()));
        let mut v = ChainVerifier::new();
        for r in &records {
            v.push(r).unwrap();
        }
        assert_eq!(v.checked(), 10);
        assert_eq!(v.head(), records[9].hash);
    }

    #[test]
    fn edits_are_found_at_the_right_record() {
        let mut records = chain(6);
        records[3].event.action = "login.failure".into();
        assert_eq!(
            verify_chain(&records),
            Err(BrokenLink {
                seq: 4,
                kind: BrokenLinkKind::Hash
            })
        );

        // Re-hashing the edited record moves the break to the next link.
        let mut records = chain(6);
        records[3].event.detail = json!({"forged": true});
        records[3].hash = chain_hash(4, &records[3].prev_hash, &records[3].event);
        assert_eq!(
            verify_chain(&records),
            Err(BrokenLink {
                seq: 5,
                kind: BrokenLinkKind::PrevHash
            })
        );
    }

    #[test]
    fn gaps_and_reordering_are_found() {
        let mut records = chain(5);
        records.remove(2);
        assert_eq!(
            verify_chain(&records),
            Err(BrokenLink {
                seq: 4,
                kind: BrokenLinkKind::Gap { expected: 3 }
            })
        );
        let mut records = chain(3);
        records.swap(0, 1);
        assert_eq!(
            verify_chain(&records),
            Err(BrokenLink {
                seq: 2,
                kind: BrokenLinkKind::Gap { expected: 1 }
            })
        );
    }

    #[test]
    fn records_serialise_with_hex_hashes() {
        let r = &chain(1)[0];
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(v["prev_hash"], json!("0".repeat(64)));
        let back: AuditRecord = serde_json::from_value(v).unwrap();
        assert_eq!(&back, r);
    }
}
