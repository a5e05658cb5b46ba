//! `palisade drop rotate-keys`: new current secure-drop keys, the RSA-3072 encryption key and
//! the Ed25519 receipt-signing key that `palisade_server::secrets` keeps in the database
//! under the master key. The old keys stay active (they still decrypt and verify); `palisade
//! keys list` shows them all. Audited as `drop.rotate-keys`, one record naming both new kids.
//!
//! As the `keys` commands do, every existing active drop key is opened with the master key
//! first, so a run with another deployment's master key is a clear error and adds nothing.

use palisade_server::secrets::{self, DropKeyKind, MasterKey};
use serde_json::json;

use crate::cli::{DropCommand, GlobalOpts};
use crate::error::CliResult;
use crate::io::print_stdout;

use super::admin::{Admin, now};
use super::keys::secret_err;

pub fn run(global: GlobalOpts, command: DropCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = admin.master_key().and_then(|master| match command {
        DropCommand::RotateKeys => rotate_keys(&admin, &master),
    });
    admin.close();
    result.map(|()| 0)
}

fn rotate_keys(admin: &Admin, master: &MasterKey) -> CliResult<()> {
    // Both kinds are checked before either is rotated: a mismatch on the second would
    // otherwise leave the first rotated and the operator unsure what happened.
    for kind in [DropKeyKind::Encryption, DropKeyKind::Receipt] {
        admin
            .block_on(secrets::active_drop_keys(&admin.store, master, kind))
            .map_err(|e| secret_err(admin, e))?;
    }
    let mut out = String::new();
    let mut kids = serde_json::Map::new();
    for kind in [DropKeyKind::Encryption, DropKeyKind::Receipt] {
        let kid = admin
            .block_on(secrets::rotate_drop_key(&admin.store, master, kind, now()))
            .map_err(|e| secret_err(admin, e))?;
        out.push_str(&format!("{} {kid}\n", kind.purpose()));
        kids.insert(kind.purpose().to_owned(), kid.into());
    }
    admin.audit("drop.rotate-keys", None, json!({ "kids": kids }))?;
    print_stdout(out.as_bytes())
}
