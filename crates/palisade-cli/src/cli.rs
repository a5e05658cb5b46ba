//! The `palisade` command line: argument definitions only. Bodies live in `commands/`.
//! Names, flags and defaults follow `shared/spec/cli.md`, which outside tests drive exactly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Palisade: a crypto toolkit and an identity server in one binary.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of the server and administration commands, accepted before or after the
/// subcommand. Only the values given are kept here: defaults and the `PALISADE_*` variables
/// are resolved by `palisade_server::config`, in one place for every command. The crypto
/// toolkit ignores them.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalOpts {
    /// Data directory (embedded database, development TLS certificate, mail outbox)
    /// [default: $PALISADE_DATA_DIR, else ./palisade-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: DIR/palisade.toml if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL [default: $PALISADE_DATABASE_URL, else sqlite://DIR/palisade.db].
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// Session store URL [default: $PALISADE_SESSIONS_URL, else the database].
    #[arg(long, global = true, value_name = "URL")]
    pub sessions: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Hash files like sha256sum, or verify a sums list with --check.
    Hash(HashArgs),
    /// Keyed hash (HMAC or keyed BLAKE2b) of a file, or a constant-time check with --verify.
    Mac(MacArgs),
    /// Random bytes from the operating system's CSPRNG.
    Random(RandomArgs),
    /// A diceware passphrase drawn from the EFF large word list.
    Passphrase(PassphraseArgs),
    /// Fernet symmetric tokens (compatible with Python's cryptography.fernet).
    #[command(subcommand)]
    Fernet(FernetCommand),
    /// Generate a key: an age identity, or an RSA, P-256 or Ed25519 key pair.
    #[command(subcommand)]
    Keygen(KeygenCommand),
    /// Encrypt a file to the age v1 format (interoperable with age and rage).
    Encrypt(EncryptArgs),
    /// Decrypt an age v1 file.
    Decrypt(DecryptArgs),
    /// RSA-OAEP (SHA-256, MGF1-SHA-256) encryption of small messages.
    #[command(subcommand)]
    Rsa(RsaCommand),
    /// Sign a file: RSA-PSS, ECDSA P-256 or Ed25519, chosen by the key type. The whole file
    /// is held in memory (limit: 256 MiB).
    Sign(SignArgs),
    /// Verify a signature made by `palisade sign` (or OpenSSL / Python cryptography). The
    /// whole file is held in memory (limit: 256 MiB).
    Verify(VerifyArgs),
    /// Run the server: HTTPS on 127.0.0.1:8443 by default, with a development certificate
    /// whose CA is DIR/tls/ca.pem. Prints `listening on URL` as its first line of output;
    /// stops gracefully on SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Apply the database schema migrations (idempotent; `serve` also migrates on start).
    Migrate,
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage groups: their members and the permissions they hold.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage permissions (app.codename): register, grant to and revoke from users, check.
    #[command(subcommand)]
    Perm(PermCommand),
    /// List and revoke login sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Read and verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Manage the token-signing keys kept in the database under the master key
    /// (DIR/master.key or $PALISADE_MASTER_KEY).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Administer the secure drop (its keys are kept in the database under the master key).
    #[command(subcommand)]
    Drop(DropCommand),
    /// Import accounts from another system.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an active user. The password policy applies.
    Create {
        /// The new username (letters, digits and @ . + - _; unique regardless of case).
        #[arg(value_name = "USERNAME")]
        username: String,
        /// E-mail address.
        #[arg(long, value_name = "EMAIL")]
        email: String,
        /// Give every permission (implies --staff, as Django's createsuperuser).
        #[arg(long)]
        superuser: bool,
        /// May use the admin console.
        #[arg(long)]
        staff: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List every user (never their password hashes).
    List {
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one user and their number of sessions.
    Show {
        #[arg(value_name = "NAME")]
        name: String,
        /// JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password (policy applies) and end all their sessions.
    SetPassword {
        #[arg(value_name = "NAME")]
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from logging in, and end their sessions.
    Deactivate {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Allow a deactivated user to log in again.
    Activate {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group (a name of up to 150 characters, unique as written).
    Create {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Put a user in a group.
    AddUser {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Take a user out of a group.
    RemoveUser {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Give a group a permission (app.codename, e.g. members.approve_member).
    Grant {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "PERM")]
        permission: String,
    },
    /// Take a permission away from a group.
    Revoke {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "PERM")]
        permission: String,
    },
    /// List every group with its members and permissions.
    List {
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PermCommand {
    /// List every registered permission with its description.
    List {
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Register a permission of your own (the built-in apps register theirs at migrate).
    Create {
        #[arg(value_name = "PERM")]
        permission: String,
        #[arg(value_name = "DESCRIPTION")]
        description: String,
    },
    /// Give a user a permission directly.
    Grant {
        #[arg(value_name = "USER")]
        user: String,
        #[arg(value_name = "PERM")]
        permission: String,
    },
    /// Take a directly granted permission away from a user (grants through groups stay).
    Revoke {
        #[arg(value_name = "USER")]
        user: String,
        #[arg(value_name = "PERM")]
        permission: String,
    },
    /// Exit 0 if USER has PERM (directly, through a group, or as an active superuser), 1 if
    /// not; prints which.
    Check {
        #[arg(value_name = "USER")]
        user: String,
        #[arg(value_name = "PERM")]
        permission: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List sessions, of one user or of everyone. SESSION_ID is the stored key (the SHA-256
    /// of the cookie, which is never stored), as `session revoke` takes it.
    List {
        #[arg(value_name = "USER")]
        user: Option<String>,
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End one session (by the 64-hex id that `session list` shows) or all of a user's.
    #[command(group = clap::ArgGroup::new("which").required(true).multiple(false))]
    Revoke {
        #[arg(value_name = "SESSION_ID", group = "which")]
        session_id: Option<String>,
        /// End every session of USER.
        #[arg(long, value_name = "USER", group = "which")]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the account-token signing keys, then the secure drop's keys, newest first:
    /// purpose, key id, created, state (current signs or encrypts; previous still verifies
    /// or decrypts; retired is never used). Never the keys.
    List {
        /// JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a new current signing key (the first one on a new database) and print its id.
    /// Links signed by the previous keys keep working until those are retired.
    Rotate,
    /// Retire key KID: links it signed stop working. The only active key cannot be retired
    /// (rotate first).
    Retire {
        #[arg(value_name = "KID")]
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DropCommand {
    /// Make a new current encryption key (RSA-3072) and receipt-signing key (Ed25519) and
    /// print their ids. The previous keys stay active: messages encrypted to them still
    /// decrypt and their receipts still verify.
    RotateKeys,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The last N audit records, oldest first.
    Tail {
        #[arg(short = 'n', value_name = "N", default_value_t = 20)]
        n: u32,
        /// JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify the hash chain: `OK: N records` (exit 0), or the first broken link (exit 1).
    Verify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Users exported from Django, with their groups and permissions: `manage.py dumpdata
    /// auth.user auth.group --natural-foreign --natural-primary` (JSON; without natural keys,
    /// add auth.permission and contenttypes.contenttype so the primary keys resolve), or a CSV
    /// with the header `username,email,password,is_active,is_staff,is_superuser` and the
    /// optional columns `first_name,last_name,groups,user_permissions`, the last two each a
    /// JSON list in the cell (`["staff", "editors"]`, `["app_label.codename"]`). Password
    /// hashes are kept as they are; missing permissions and groups are created, existing ones
    /// reused (a group gains the imported permissions). Every row is checked first; a bad row
    /// imports nothing.
    Django {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Input format [default: from the file extension].
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one) [default: 127.0.0.1:8443].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Serve plain HTTP, for use behind a TLS-terminating proxy.
    #[arg(long)]
    pub insecure_http: bool,
    /// A proxy (CIDR or address) whose X-Forwarded-For/-Proto headers are believed; may be
    /// repeated. Only with --insecure-http.
    #[arg(
        long = "trusted-proxy",
        value_name = "CIDR",
        requires = "insecure_http"
    )]
    pub trusted_proxies: Vec<String>,
    /// Send mail through this SMTP server instead of writing it to DIR/outbox/:
    /// smtp://[USER@]HOST[:PORT] (STARTTLS required, port 587) or smtps://… (implicit TLS,
    /// port 465); ?tls=none for a local relay. Give the password in $PALISADE_SMTP_PASSWORD
    /// rather than in the URL, where ps shows it [default: $PALISADE_SMTP, else the outbox].
    #[arg(long, value_name = "URL")]
    pub smtp: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashAlgo {
    Sha256,
    Sha224,
    Sha384,
    Sha512,
    #[value(name = "sha3-256")]
    Sha3_256,
    #[value(name = "sha3-512")]
    Sha3_512,
    Blake2b,
    Blake2s,
    Blake3,
    Crc32,
    Md5,
    Sha1,
}

#[derive(Debug, Args)]
pub struct HashArgs {
    /// Hash algorithm.
    #[arg(short = 'a', long = "algorithm", value_enum, default_value = "sha256")]
    pub algorithm: HashAlgo,
    /// Read a sha256sum-style list from SUMS and check every file in it.
    #[arg(
        short = 'c',
        long = "check",
        value_name = "SUMS",
        conflicts_with = "files"
    )]
    pub check: Option<PathBuf>,
    /// Files to hash; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MacAlgo {
    #[value(name = "hmac-sha256")]
    HmacSha256,
    #[value(name = "hmac-sha512")]
    HmacSha512,
    Blake2b,
}

#[derive(Debug, Args)]
pub struct MacArgs {
    /// MAC algorithm.
    #[arg(
        short = 'a',
        long = "algorithm",
        value_enum,
        default_value = "hmac-sha256"
    )]
    pub algorithm: MacAlgo,
    /// File holding the raw key bytes.
    #[arg(long = "key-file", value_name = "K")]
    pub key_file: PathBuf,
    /// Compare the MAC with HEX in constant time: prints OK (exit 0) or FAILED (exit 1).
    #[arg(long = "verify", value_name = "HEX")]
    pub verify: Option<String>,
    /// Input file; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("encoding").multiple(false))]
pub struct RandomArgs {
    /// Number of random bytes.
    #[arg(
        short = 'n',
        long = "bytes",
        default_value_t = 32,
        value_name = "BYTES"
    )]
    pub bytes: usize,
    /// Lowercase hex.
    #[arg(long, group = "encoding")]
    pub hex: bool,
    /// Unpadded base64url (the default, like Python's secrets.token_urlsafe).
    #[arg(long, group = "encoding")]
    pub urlsafe: bool,
    /// The raw bytes.
    #[arg(long, group = "encoding")]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// Number of words.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub words: usize,
    /// Separator between words.
    #[arg(long, default_value = " ", value_name = "S")]
    pub separator: String,
}

/// Where a command writes: standard output, or `-o FILE` written atomically.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Output file (written atomically, only on success); standard output if absent or `-`.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum FernetCommand {
    /// Generate a new Fernet key (44 characters of padded base64url).
    Keygen {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Encrypt a message into a Fernet token (printed as one line). The whole message is held
    /// in memory (limit: 256 MiB = 268435456 bytes; larger input exits with code 2).
    Encrypt {
        /// Fernet key file.
        #[arg(long = "key-file", value_name = "K")]
        key_file: PathBuf,
        /// Input file; `-` or none reads standard input.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Decrypt a Fernet token with the first key that authenticates it (as MultiFernet).
    /// Tokens stamped more than 60 s in the future are rejected. The whole token is held in
    /// memory (limit: 342 MiB = 358612992 bytes of token text, a 256 MiB message).
    Decrypt {
        /// Fernet key file; repeat to try several keys in order.
        #[arg(long = "key-file", value_name = "K", required = true)]
        key_files: Vec<PathBuf>,
        /// Reject tokens older than SECONDS.
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Token file; `-` or none reads standard input.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Re-encrypt a token under the first key, keeping its timestamp (as MultiFernet.rotate).
    /// The whole token is held in memory (limit: 342 MiB = 358612992 bytes of token text).
    Rotate {
        /// The new key first, then the old keys.
        #[arg(long = "key-file", value_name = "K", required = true)]
        key_files: Vec<PathBuf>,
        /// Token file; `-` or none reads standard input.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RsaBits {
    #[value(name = "2048")]
    B2048,
    #[value(name = "3072")]
    B3072,
    #[value(name = "4096")]
    B4096,
}

#[derive(Debug, Args)]
pub struct KeyPairOut {
    /// Private key output (PKCS#8 PEM, mode 0600).
    #[arg(short = 'o', long = "output", value_name = "KEY.pem")]
    pub output: PathBuf,
    /// Public key output (SubjectPublicKeyInfo PEM); printed on standard output if absent.
    #[arg(long = "public-out", value_name = "PUB.pem")]
    pub public_out: Option<PathBuf>,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeygenCommand {
    /// An age X25519 identity (AGE-SECRET-KEY-1…), as age-keygen writes it.
    Age {
        /// Identity file (mode 0600).
        #[arg(short = 'o', long = "output", value_name = "IDENTITY")]
        output: PathBuf,
        /// Write the recipient (age1…) here instead of standard output.
        #[arg(long = "public-out", value_name = "RECIPIENT")]
        public_out: Option<PathBuf>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// An RSA key pair (default 3072 bits).
    Rsa {
        /// Modulus size in bits.
        #[arg(long, value_enum, default_value = "3072")]
        bits: RsaBits,
        #[command(flatten)]
        out: KeyPairOut,
    },
    /// An ECDSA P-256 key pair.
    P256 {
        #[command(flatten)]
        out: KeyPairOut,
    },
    /// An Ed25519 key pair.
    Ed25519 {
        #[command(flatten)]
        out: KeyPairOut,
    },
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("to").required(true).multiple(true))]
pub struct EncryptArgs {
    /// Encrypt to this recipient (age1…); repeatable.
    #[arg(
        short = 'r',
        long = "recipient",
        value_name = "RECIPIENT",
        group = "to"
    )]
    pub recipients: Vec<String>,
    /// Encrypt to the recipients listed in FILE, one per line; repeatable.
    #[arg(
        short = 'R',
        long = "recipients-file",
        value_name = "FILE",
        group = "to"
    )]
    pub recipients_files: Vec<PathBuf>,
    /// Encrypt with a passphrase, read from the terminal or PALISADE_PASSPHRASE.
    #[arg(short = 'p', long, group = "to", conflicts_with_all = ["recipients", "recipients_files"])]
    pub passphrase: bool,
    /// Input file; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("with").required(true).multiple(true))]
pub struct DecryptArgs {
    /// Identity file (age-keygen format); repeatable.
    #[arg(
        short = 'i',
        long = "identity",
        value_name = "IDENTITY",
        group = "with"
    )]
    pub identities: Vec<PathBuf>,
    /// Decrypt with a passphrase, read from the terminal or PALISADE_PASSPHRASE.
    #[arg(short = 'p', long, group = "with", conflicts_with = "identities")]
    pub passphrase: bool,
    /// Input file; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum RsaCommand {
    /// Encrypt with RSA-OAEP (SHA-256, MGF1-SHA-256, empty label). The message must fit
    /// in one RSA block: at most key bytes - 66 (190 bytes for RSA-2048).
    Encrypt {
        /// Recipient's public key (SubjectPublicKeyInfo or PKCS#1 PEM).
        #[arg(long = "public-key", value_name = "PUB.pem")]
        public_key: PathBuf,
        /// Write lowercase hex instead of raw bytes.
        #[arg(long)]
        hex: bool,
        /// Input file; `-` or none reads standard input.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Decrypt RSA-OAEP ciphertext (PKCS#8 or PKCS#1 private key). The ciphertext is one
    /// RSA block (key bytes long; input limit: 64 KiB).
    Decrypt {
        /// Private key (PKCS#8 or PKCS#1 PEM).
        #[arg(long = "private-key", value_name = "KEY.pem")]
        private_key: PathBuf,
        /// The input is lowercase hex instead of raw bytes.
        #[arg(long)]
        hex: bool,
        /// Input file; `-` or none reads standard input.
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Private key (PKCS#8 PEM; PKCS#1 for RSA, SEC1 for P-256 accepted too).
    #[arg(long = "private-key", value_name = "KEY.pem")]
    pub private_key: PathBuf,
    /// Signature encoding for ECDSA keys.
    #[arg(long, value_enum, default_value = "der")]
    pub format: SigFormat,
    /// Input file; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SigFormat {
    /// ASN.1 DER (OpenSSL, Python cryptography).
    Der,
    /// Fixed-width r‖s (IEEE P1363, JWS ES256).
    P1363,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Signer's public key (SubjectPublicKeyInfo PEM).
    #[arg(long = "public-key", value_name = "PUB.pem")]
    pub public_key: PathBuf,
    /// File holding the raw signature bytes.
    #[arg(long, value_name = "SIG")]
    pub signature: PathBuf,
    /// Signature encoding for ECDSA keys.
    #[arg(long, value_enum, default_value = "der")]
    pub format: SigFormat,
    /// Signed file; `-` or none reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}
