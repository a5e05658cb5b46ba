//! What every administration command shares: resolving the configuration exactly as `serve`
//! does, opening and migrating the database, the audit trail of what the command did, the
//! password policy as configured (the same `[password_policy]` settings and word lists the
//! server applies), and the small formats (ISO 8601 times, passwords from standard input or
//! the terminal).
//!
//! Admin commands are short-lived and sequential, so one current-thread Tokio runtime drives
//! the async store; nothing here needs the server's multi-threaded runtime.

use std::future::Future;
use std::io::{BufRead, IsTerminal, Read};

use palisade_core::password_policy::PasswordPolicy;
use palisade_core::{
    AuditEvent, AuditLog, AuthzStore as _, StoreError, Timestamp, User, UserStore, Username,
};
use palisade_crypto::password::Argon2Params;
use palisade_server::config::{MAX_PASSWORD_BYTES, MasterKeyText};
use palisade_server::secrets::MasterKey;
use palisade_server::{Config, Flags, Sources};
use palisade_store::SqliteStore;

use crate::cli::GlobalOpts;
use crate::error::{CliError, CliResult};

/// Who admin commands act as in the audit log.
pub const ACTOR: &str = "cli";

/// An open, migrated database and the configuration it came from.
#[derive(Debug)]
pub struct Admin {
    pub config: Config,
    pub store: SqliteStore,
    runtime: tokio::runtime::Runtime,
}

impl Admin {
    /// Resolves the configuration, creates the data directory (0700), opens the database and
    /// applies pending migrations. Migrating every time is cheap (one query when up to date)
    /// and means no admin command ever meets an old schema.
    pub fn open(global: GlobalOpts) -> CliResult<Self> {
        let flags = Flags {
            data_dir: global.data_dir,
            config: global.config,
            database: global.database,
            sessions: global.sessions,
            ..Flags::default()
        };
        let sources = Sources::from_process(flags).map_err(|e| CliError::usage(e.to_string()))?;
        let config = Config::load(&sources).map_err(|e| CliError::usage(e.to_string()))?;
        if config.database.scheme() != "sqlite" {
            return Err(CliError::usage(format!(
                "{}: PostgreSQL support is not built yet",
                config.database
            )));
        }
        if config.sessions != config.database {
            // Sessions live in the database for now; a separate store (Redis) would make
            // `session revoke` silently miss the sessions that matter.
            return Err(CliError::usage(format!(
                "{}: a session store separate from the database is not built yet",
                config.sessions
            )));
        }
        palisade_server::ensure_data_dir(&config.data_dir)
            .map_err(|e| CliError::usage(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::usage(format!("starting the async runtime: {e}")))?;
        let store = runtime
            .block_on(async {
                let store = SqliteStore::open(config.database.expose()).await?;
                store.migrate().await?;
                // As Django's post_migrate: the built-in apps' permissions exist as soon as
                // the schema does, so they can be granted before the server first starts.
                store
                    .ensure_permissions(&palisade_core::builtin_permissions())
                    .await?;
                Ok::<_, StoreError>(store)
            })
            .map_err(|e| db_err(&config, &e))?;
        Ok(Self {
            config,
            store,
            runtime,
        })
    }

    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// A storage failure as one line naming the database (its password redacted).
    pub fn store_err(&self, err: &StoreError) -> CliError {
        db_err(&self.config, err)
    }

    /// The configured Argon2id parameters for new hashes.
    pub fn argon2(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.config.password.argon2_memory_kib,
            iterations: self.config.password.argon2_iterations,
            parallelism: self.config.password.argon2_parallelism,
        }
    }

    /// The configured password policy, its word lists loaded: the same settings `serve`
    /// uses, so a password the command line accepts is one the server would accept. Built
    /// only by the commands that set a password (reading a breach corpus is not free), and
    /// before the password is asked for, so a broken list fails before anyone types.
    pub fn password_policy(&self) -> CliResult<PasswordPolicy> {
        self.config
            .password_policy
            .build()
            .map_err(|e| CliError::usage(e.to_string()))
    }

    /// The deployment's master key, loaded as `serve` loads it: `$PALISADE_MASTER_KEY`, else
    /// `DIR/master.key`, made (0600) if neither exists. Only the commands that open the
    /// shared secrets ask for it.
    pub fn master_key(&self) -> CliResult<MasterKey> {
        palisade_server::secrets::load_or_create_master_key(
            &self.config.data_dir,
            self.config.master_key.as_ref().map(MasterKeyText::expose),
        )
        .map_err(|e| CliError::usage(e.to_string()))
    }

    /// The user called `name` (case-insensitively), or exit 2 "no user named NAME".
    pub fn find_user(&self, name: &str) -> CliResult<User> {
        let no_such = || CliError::usage(format!("no user named {name}"));
        let Ok(username) = Username::parse(name) else {
            return Err(no_such());
        };
        self.block_on(self.store.get_by_username(&username))
            .map_err(|e| self.store_err(&e))?
            .ok_or_else(no_such)
    }

    /// Appends an event by [`ACTOR`] to the audit log.
    pub fn audit(
        &self,
        action: &str,
        target: Option<&str>,
        detail: serde_json::Value,
    ) -> CliResult<()> {
        let event = AuditEvent {
            at: now(),
            actor: Some(ACTOR.to_owned()),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            detail,
        };
        self.block_on(self.store.append(event))
            .map(|_| ())
            .map_err(|e| self.store_err(&e))
    }

    /// Closes the pool, checkpointing SQLite's write-ahead log so other tools see a tidy file.
    pub fn close(self) {
        self.runtime.block_on(self.store.close());
    }
}

fn db_err(config: &Config, err: &StoreError) -> CliError {
    // Display of SecretUrl hides any password in the URL.
    CliError::usage(format!("{}: {err}", config.database))
}

/// The current time, in whole seconds.
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_unix(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (ISO 8601, UTC).
pub fn iso(ts: Timestamp) -> String {
    let secs = ts.unix();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses the ISO 8601 forms Django's serializer writes: `YYYY-MM-DDTHH:MM:SS`, optional
/// fraction (dropped), then `Z`, `±HH:MM` or nothing (a naive time from `USE_TZ = False`,
/// taken as UTC). A space instead of `T` is accepted too.
pub fn parse_iso(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let (date, time) = text.split_once(['T', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let year: i64 = date_parts.next()?.parse().ok()?;
    let month: i64 = date_parts.next()?.parse().ok()?;
    let day: i64 = date_parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Split off the zone: Z, +HH:MM or -HH:MM after the clock time.
    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zone = zone.get(1..)?;
        let (zh, zm) = zone.split_once(':').unwrap_or((zone, "0"));
        let zh: i64 = zh.parse().ok()?;
        let zm: i64 = zm.parse().ok()?;
        (clock, sign * (zh * 3600 + zm * 60))
    } else {
        (time, 0)
    };
    let clock = clock.split_once('.').map_or(clock, |(whole, _)| whole);
    let mut clock_parts = clock.splitn(3, ':');
    let h: i64 = clock_parts.next()?.parse().ok()?;
    let mi: i64 = clock_parts.next()?.parse().ok()?;
    let s: i64 = clock_parts.next().unwrap_or("0").parse().ok()?;
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Timestamp::from_unix(
        days * 86_400 + h * 3600 + mi * 60 + s - offset_secs,
    ))
}

// Howard Hinnant's civil-calendar algorithms (proleptic Gregorian, exact for all i64 days
// we can meet), to avoid a date-time dependency for two conversions.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Longest password line read from standard input: the highest byte limit the policy can be
/// configured with, plus a line ending, plus one so an over-limit password is seen as such
/// rather than cut to fit.
const PASSWORD_READ_LIMIT: u64 = MAX_PASSWORD_BYTES as u64 + 3;

/// The new password: the first line of standard input (line ending stripped) with
/// `--password-stdin`, else typed twice at the terminal.
pub fn read_new_password(from_stdin: bool) -> CliResult<String> {
    if from_stdin {
        let mut line = Vec::new();
        std::io::stdin()
            .lock()
            .take(PASSWORD_READ_LIMIT)
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::io_named("-", &e))?;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        return String::from_utf8(line)
            .map_err(|_| CliError::usage("-: the password is not valid UTF-8"));
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(
            "no terminal to prompt for the password on; use --password-stdin",
        ));
    }
    let first =
        rpassword::prompt_password("Password: ").map_err(|e| CliError::io_named("terminal", &e))?;
    let second = rpassword::prompt_password("Password (again): ")
        .map_err(|e| CliError::io_named("terminal", &e))?;
    if first != second {
        return Err(CliError::usage("the two passwords do not match"));
    }
    Ok(first)
}

/// Applies the password policy. Every violation is reported, each a whole sentence, on the
/// one line of standard error the command-line contract allows a failure (exit 2). A
/// breached-password lookup that could not be done is a warning, not a refusal: the policy
/// fails open on it (see `palisade_core::password_policy`), but the operator must know the
/// file is broken.
pub fn check_policy(
    policy: &PasswordPolicy,
    password: &str,
    user_inputs: &[&str],
) -> CliResult<()> {
    let outcome = policy.evaluate(password, user_inputs);
    if let Some(e) = &outcome.breach_check_error {
        eprintln!("palisade: warning: {e}");
    }
    outcome.into_result().map_err(|violations| {
        let reasons: Vec<String> = violations.iter().map(ToString::to_string).collect();
        CliError::usage(format!("password refused: {}", reasons.join(" ")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_700_000_000, "2023-11-14T22:13:20Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(iso(Timestamp::from_unix(secs)), text);
            assert_eq!(parse_iso(text), Some(Timestamp::from_unix(secs)));
        }
    }

    #[test]
    fn django_time_forms_parse() {
        let t = Some(Timestamp::from_unix(1_700_000_000));
        assert_eq!(parse_iso("2023-11-14T22:13:20.123Z"), t);
        assert_eq!(parse_iso("2023-11-14T22:13:20.123456"), t);
        assert_eq!(parse_iso("2023-11-15T00:13:20+02:00"), t);
        assert_eq!(parse_iso("2023-11-14T20:13:20-02:00"), t);
        assert_eq!(parse_iso("2023-11-14 22:13:20"), t);
        assert_eq!(parse_iso("yesterday"), None);
        assert_eq!(parse_iso("2023-13-01T00:00:00Z"), None);
    }
}
