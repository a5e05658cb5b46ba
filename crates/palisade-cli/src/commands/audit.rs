//! `palisade audit tail [-n N] [--json]` and `audit verify`.

use palisade_core::{AuditLog, AuditVerifyError, StoreError};
use serde_json::{Value, json};

use crate::cli::{AuditCommand, GlobalOpts};
use crate::error::{CliError, CliResult};
use crate::io::print_stdout;

use super::admin::{Admin, iso};
use super::user::print_json;

pub fn run(global: GlobalOpts, command: AuditCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = match command {
        AuditCommand::Tail { n, json } => tail(&admin, n, json),
        AuditCommand::Verify => verify(&admin),
    };
    admin.close();
    result.map(|()| 0)
}

fn tail(admin: &Admin, n: u32, as_json: bool) -> CliResult<()> {
    let records = admin
        .block_on(admin.store.tail(n))
        .map_err(|e| admin.store_err(&e))?;
    if as_json {
        let values: Vec<Value> = records
            .iter()
            .map(|r| {
                json!({
                    "seq": r.seq,
                    "time": iso(r.event.at),
                    "actor": r.event.actor,
                    "action": r.event.action,
                    "target": r.event.target,
                    "detail": r.event.detail,
                    "hash": hex::encode(r.hash),
                })
            })
            .collect();
        return print_json(&Value::Array(values));
    }
    let mut out = String::new();
    for r in &records {
        let e = &r.event;
        out.push_str(&format!(
            "{}  {}  {}  {}  {}  {}\n",
            r.seq,
            iso(e.at),
            e.actor.as_deref().unwrap_or("-"),
            e.action,
            e.target.as_deref().unwrap_or("-"),
            palisade_core::audit::canonical_json(&e.detail),
        ));
    }
    print_stdout(out.as_bytes())
}

fn verify(admin: &Admin) -> CliResult<()> {
    match admin.block_on(admin.store.verify()) {
        Ok(verifier) => print_stdout(format!("OK: {} records\n", verifier.checked()).as_bytes()),
        Err(AuditVerifyError::Broken(link)) => {
            print_stdout(format!("FAILED: {link}\n").as_bytes())?;
            Err(CliError::check(link.to_string()))
        }
        // A record that no longer parses (a hash cut short, detail that is not JSON) was
        // altered outside palisade: that is a failed check too, not a usage error.
        Err(AuditVerifyError::Store(StoreError::Corrupt(reason))) => {
            print_stdout(format!("FAILED: {reason}\n").as_bytes())?;
            Err(CliError::check(format!("audit log unreadable: {reason}")))
        }
        Err(AuditVerifyError::Store(e)) => Err(admin.store_err(&e)),
    }
}
