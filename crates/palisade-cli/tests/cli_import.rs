//! `palisade import django`: a real Django 5.2 `dumpdata` export and CSV files, imported
//! through the binary. The hashes must arrive byte for byte (and still verify), and a file
//! with any bad row must import nothing at all.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use palisade_crypto::password::{Argon2Params, Verified, verify_password};
use serde_json::Value;

struct Env {
    tmp: tempfile::TempDir,
    data: PathBuf,
}

impl Env {
    fn new() -> Self {
        let tmp = tempdir();
        let data = tmp.path().join("data");
        Self { tmp, data }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = palisade();
        cmd.args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .env_remove("PALISADE_DATABASE_URL")
            .env_remove("PALISADE_SESSIONS_URL");
        run_cmd(&mut cmd, b"")
    }

    fn import(&self, file: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["import", "django", path_str(file)];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn sql(&self, sql: &str) -> String {
        let out = Command::new("sqlite3")
            .arg(self.data.join("palisade.db"))
            .arg(sql)
            .output()
            .expect("the sqlite3 tool");
        assert!(out.status.success(), "sqlite3: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn users(&self) -> Vec<Value> {
        let out = self.run(&["user", "list", "--json"]);
        assert_code(&out, 0);
        serde_json::from_str::<Value>(&stdout(&out))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `perm check USER PERM`: true for exit 0, false for exit 1, anything else fails.
    fn has(&self, user: &str, permission: &str) -> bool {
        let out = self.run(&["perm", "check", user, permission]);
        match code(&out) {
            0 => true,
            1 => false,
            c => panic!("perm check {user} {permission}: exit {c}: {}", stderr(&out)),
        }
    }

    fn json(&self, args: &[&str]) -> Vec<Value> {
        let out = self.run(args);
        assert_code(&out, 0);
        serde_json::from_str::<Value>(&stdout(&out))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// `group list --json`: name → (members, permissions), each sorted.
    fn groups(&self) -> std::collections::BTreeMap<String, (Vec<String>, Vec<String>)> {
        let strings = |v: &Value| {
            let mut out: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
            out.sort();
            out
        };
        self.json(&["group", "list", "--json"])
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap().to_owned(),
                    (strings(&g["members"]), strings(&g["permissions"])),
                )
            })
            .collect()
    }

    /// `perm list --json`: the description of `permission`, if registered.
    fn description(&self, permission: &str) -> Option<String> {
        self.json(&["perm", "list", "--json"])
            .iter()
            .find(|p| p["name"] == permission)
            .map(|p| p["description"].as_str().unwrap().to_owned())
    }

    fn hash_of(&self, username: &str) -> String {
        self.sql(&format!(
            "SELECT password_hash FROM users WHERE username = '{username}'"
        ))
    }
}

/// Builds users in an in-memory Django database with several hashers, one unusable
/// password, a last login, a group holding a built-in and a custom permission, a member of
/// it who also holds a direct permission, and prints `dumpdata`: with natural keys when
/// `sys.argv[1]` is `natural`; with primary keys plus the auth.permission and
/// contenttypes.contenttype tables when it is `pk`; with bare primary keys (which nothing
/// can resolve) when it is `pk-bare`.
const DJANGO_DUMP: &str = r#"import io, sys, json
import django
from django.conf import settings
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
    USE_TZ=True,
)
django.setup()
from django.core.management import call_command
from django.contrib.auth.models import User, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.auth.hashers import make_password
from django.utils import timezone
import datetime
call_command("migrate", verbosity=0)
staff = Group.objects.create(name="staff-group")
# An app of the project's own (not one palisade registers permissions for), as Django makes
# it for an installed app's model.
reports = ContentType.objects.create(app_label="reports", model="report")
def perm(codename, name):
    return Permission.objects.create(codename=codename, name=name, content_type=reports)
staff.permissions.add(perm("export_report", "Can export reports"), perm("view_report", "Can view report"))
archive = perm("archive_report", "Can archive reports")
def mk(name, email, hasher, **kw):
    u = User.objects.create_user(name, email, None, **kw)
    if hasher:
        u.password = make_password("pw-" + name, hasher=hasher)
    u.save()
    return u
mk("ann", "ann@example.com", "pbkdf2_sha256", first_name="Ann", last_name="Lee")
b = mk("ben", "", "argon2", is_staff=True)
b.groups.add(staff)
b.user_permissions.add(archive)
mk("cat", "cat@Example.COM", "bcrypt_sha256", is_superuser=True, is_staff=True)
mk("dan", "dan@example.com", "scrypt", is_active=False)
mk("eve", "eve@example.com", "pbkdf2_sha1")
e = mk("fay", "fay@example.com", None)  # unusable password
e.last_login = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
e.save()
out = io.StringIO()
shape = sys.argv[1]
if shape == "natural":
    call_command("dumpdata", "auth.user", "auth.group", natural_foreign=True, natural_primary=True, stdout=out)
elif shape == "pk":
    call_command("dumpdata", "auth.user", "auth.group", "auth.permission", "contenttypes.contenttype", stdout=out)
else:
    call_command("dumpdata", "auth.user", "auth.group", stdout=out)
sys.stdout.write(out.getvalue())
"#;

fn django_dump() -> String {
    django_dump_shaped("natural")
}

fn django_dump_shaped(shape: &str) -> String {
    String::from_utf8(py(DJANGO_DUMP, &[shape], b"")).unwrap()
}

const HEADER: &str = "username,email,password,is_active,is_staff,is_superuser\n";
const PBKDF2: &str =
    "pbkdf2_sha256$1000000$2mw9vAeJtsgFCgnVvUL2ei$Ci0sC0hwrvoh+3EwDd+oNC+7KG06acUWB6V5Ypo2KdU=";

#[test]
fn django_dumpdata_imports_with_identical_hashes() {
    let env = Env::new();
    let dump = django_dump();
    let objects: Vec<Value> = serde_json::from_str(&dump).unwrap();
    let path = env.file("dump.json", &dump);

    let out = env.import(&path, &[]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "imported 6 users, 1 group, 3 permissions created, 1 membership, \
         3 grants (2 to groups, 1 to users)"
    );

    let mut expected_algorithms = std::collections::BTreeMap::new();
    for object in objects.iter().filter(|o| o["model"] == "auth.user") {
        let fields = &object["fields"];
        let name = fields["username"].as_str().unwrap();
        let hash = fields["password"].as_str().unwrap();
        assert_eq!(env.hash_of(name), hash, "{name}: hash kept byte for byte");
        expected_algorithms.insert(name.to_owned(), hash.split('$').next().unwrap().to_owned());
    }
    assert_eq!(expected_algorithms.len(), 6);

    let users = env.users();
    let user = |name: &str| {
        users
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(user("ann")["email"], "ann@example.com");
    assert_eq!(user("ann")["password_algorithm"], "pbkdf2_sha256");
    assert_eq!(
        user("ben")["email"],
        Value::Null,
        "blank e-mail kept as none"
    );
    assert_eq!(user("ben")["password_algorithm"], "argon2");
    assert_eq!(user("ben")["is_staff"], true);
    assert_eq!(user("cat")["is_superuser"], true);
    assert_eq!(user("cat")["password_algorithm"], "bcrypt_sha256");
    assert_eq!(user("dan")["is_active"], false);
    assert_eq!(user("dan")["password_algorithm"], "scrypt");
    assert_eq!(user("eve")["password_algorithm"], "pbkdf2_sha1");
    assert_eq!(
        user("fay")["password_algorithm"],
        Value::Null,
        "unusable stays unusable"
    );
    assert!(env.hash_of("fay").starts_with('!'));
    assert_eq!(user("fay")["last_login"], "2024-01-02T03:04:05Z");
    assert_eq!(
        env.sql("SELECT first_name || ' ' || last_name FROM users WHERE username='ann'"),
        "Ann Lee"
    );
    let ann_joined = objects
        .iter()
        .find(|o| o["fields"]["username"] == "ann")
        .unwrap()["fields"]["date_joined"]
        .as_str()
        .unwrap()
        .to_owned();
    // Django writes milliseconds; palisade keeps whole seconds.
    assert_eq!(
        user("ann")["date_joined"].as_str().unwrap(),
        format!("{}Z", &ann_joined[..19])
    );

    // The imported hashes still verify with the passwords Django was given.
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        let verdict = verify_password(
            format!("pw-{name}").as_bytes(),
            &env.hash_of(name),
            &Argon2Params::OWASP,
        )
        .unwrap();
        assert_eq!(verdict, Verified::Valid { needs_rehash: true }, "{name}");
    }

    // Audit: one import event, chain intact.
    let out = env.run(&["audit", "tail", "--json"]);
    assert_code(&out, 0);
    let tail: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(tail.as_array().unwrap().len(), 1);
    assert_eq!(tail[0]["action"], "user.import");
    assert_eq!(tail[0]["detail"]["count"], 6);
    assert_eq!(tail[0]["detail"]["file"], "dump.json");
    assert_eq!(tail[0]["detail"]["groups_created"], 1);
    assert_eq!(tail[0]["detail"]["groups_existing"], 0);
    assert_eq!(tail[0]["detail"]["permissions_created"], 3);
    assert_eq!(tail[0]["detail"]["memberships"], 1);
    assert_eq!(tail[0]["detail"]["group_grants"], 2);
    assert_eq!(tail[0]["detail"]["user_grants"], 1);

    // The group, its permissions and the memberships arrived, and hold as Django said.
    let groups = env.groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(
        groups["staff-group"],
        (
            vec!["ben".to_owned()],
            vec![
                "reports.export_report".to_owned(),
                "reports.view_report".to_owned()
            ]
        )
    );
    assert!(env.has("ben", "reports.export_report"), "through the group");
    assert!(env.has("ben", "reports.view_report"), "through the group");
    assert!(env.has("ben", "reports.archive_report"), "direct");
    assert!(!env.has("ann", "reports.view_report"), "ann is in no group");
    assert!(!env.has("ben", "reports.delete_report"), "never granted");
    // Natural keys carry no description; the default says where the permission came from.
    assert_eq!(
        env.description("reports.export_report").as_deref(),
        Some("Imported from Django")
    );

    // Importing the same file again: every name is taken, nothing is written.
    let out = env.import(&path, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(
        &out,
        Some("dump.json: object 1: ann: username already taken"),
    );
    assert!(stderr(&out).contains("5 more bad rows"), "{}", stderr(&out));
    assert_eq!(env.sql("SELECT count(*) FROM users"), "6");
    assert_eq!(env.sql("SELECT count(*) FROM audit_log"), "1");
    assert_code(&env.run(&["audit", "verify"]), 0);
}

#[test]
fn csv_imports_with_django_booleans() {
    let env = Env::new();
    let csv = format!(
        "{HEADER}alice,alice@example.com,{PBKDF2},True,False,0\n\
         \"bob\",,bcrypt_sha256$$2b$12$7xI3DeVdPjzxvIQBJDFPtOLUWCaYFg9BsJ.evNW9h3oEtHkEIJnty,1,1,1\r\n\
         \n\
         carol,carol@example.com,!Xq3unusableXXXXXXXXXXXXXXXXXXXXXXXXXXXXX,false,false,false\n"
    );
    let path = env.file("users.csv", &csv);
    let out = env.import(&path, &[]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).starts_with("imported 3 users, 0 groups, 0 permissions created"),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.hash_of("alice"), PBKDF2);
    let users = env.users();
    let flags = |name: &str| {
        let u = users.iter().find(|u| u["username"] == name).unwrap();
        (
            u["is_active"].as_bool().unwrap(),
            u["is_staff"].as_bool().unwrap(),
            u["is_superuser"].as_bool().unwrap(),
        )
    };
    assert_eq!(flags("alice"), (true, false, false));
    assert_eq!(flags("bob"), (true, true, true));
    assert_eq!(flags("carol"), (false, false, false));
    assert_eq!(
        users.iter().find(|u| u["username"] == "bob").unwrap()["email"],
        Value::Null
    );
}

#[test]
fn a_bad_csv_row_imports_nothing() {
    let env = Env::new();
    let csv = format!(
        "{HEADER}alice,alice@example.com,{PBKDF2},1,0,0\n\
         bad name,b@example.com,{PBKDF2},1,0,0\n\
         carol,carol@example.com,{PBKDF2},1,0,0\n\
         dave,dave@example.com,rot13$abc$def,1,0,0\n"
    );
    let path = env.file("users.csv", &csv);
    let out = env.import(&path, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("users.csv:3:"));
    let err = stderr(&out);
    assert!(err.contains("bad name"), "{err}");
    assert!(err.contains("1 more bad row"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");
    assert_eq!(env.sql("SELECT count(*) FROM audit_log"), "0");

    // The unknown hash format alone is reported against its own line.
    let csv = format!("{HEADER}alice,alice@example.com,{PBKDF2},1,0,0\ndave,,md4$x$y,1,0,0\n");
    let out = env.import(&env.file("one.csv", &csv), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("one.csv:3: unknown password hash format"));

    // A bad boolean, a short row, a duplicate inside the file (case-insensitive).
    for (body, needle) in [
        ("alice,,x,maybe,0,0\n".to_owned(), "is_active"),
        ("alice,a@example.com\n".to_owned(), "fields"),
        (
            format!("alice,,{PBKDF2},1,0,0\nALICE,,{PBKDF2},1,0,0\n"),
            "duplicate username",
        ),
    ] {
        let out = env.import(&env.file("x.csv", &format!("{HEADER}{body}")), &[]);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(needle));
    }
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");

    // A wrong header is refused before anything else.
    let out = env.import(&env.file("h.csv", "user,pass\nalice,x\n"), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("h.csv: line 1"));
}

#[test]
fn reimporting_an_existing_username_writes_nothing() {
    let env = Env::new();
    let first = format!("{HEADER}alice,alice@example.com,{PBKDF2},1,0,0\n");
    assert_code(&env.import(&env.file("a.csv", &first), &[]), 0);
    // Alice again (another case), with a new user before her: neither is written.
    let second = format!("{HEADER}zed,zed@example.com,{PBKDF2},1,0,0\nAlice,,{PBKDF2},1,1,1\n");
    let out = env.import(&env.file("b.csv", &second), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("b.csv:3: Alice: username already taken"));
    assert_eq!(env.sql("SELECT group_concat(username) FROM users"), "alice");
    assert_eq!(
        env.sql("SELECT is_staff FROM users WHERE username='alice'"),
        "0"
    );
}

#[test]
fn json_errors_and_format_selection() {
    let env = Env::new();
    let json = format!(
        r#"[{{"model": "auth.user", "fields": {{"username": "ok", "email": "", "password": "{PBKDF2}"}}}},
            {{"model": "auth.user", "fields": {{"username": "x", "password": "{PBKDF2}", "is_staff": "yes"}}}}]"#
    );
    let out = env.import(&env.file("d.json", &json), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("d.json: object 1: is_staff"));
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");

    // The extension decides unless --format is given.
    let path = env.file("export.txt", &format!("{HEADER}ok,,{PBKDF2},1,0,0\n"));
    let out = env.import(&path, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("--format"));
    let out = env.import(&path, &["--format", "csv"]);
    assert_code(&out, 0);
    let out = env.import(&env.file("bad.json", "{not json"), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("bad.json"));
    let out = env.import(&env.tmp.path().join("missing.json"), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("missing.json: No such file or directory"));
}

#[test]
fn django_primary_keys_resolve_through_permission_and_contenttype_objects() {
    let env = Env::new();
    let dump = django_dump_shaped("pk");
    let objects: Vec<Value> = serde_json::from_str(&dump).unwrap();
    // The shape under test: references are numbers, and the tables that resolve them are in.
    let ben = objects
        .iter()
        .find(|o| o["fields"]["username"] == "ben")
        .unwrap();
    assert!(ben["fields"]["groups"][0].is_i64(), "{ben}");
    assert!(ben["fields"]["user_permissions"][0].is_i64(), "{ben}");
    assert!(objects.iter().any(|o| o["model"] == "auth.permission"));
    assert!(
        objects
            .iter()
            .any(|o| o["model"] == "contenttypes.contenttype")
    );
    let path = env.file("pk.json", &dump);
    let out = env.import(&path, &[]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "imported 6 users, 1 group, 3 permissions created, 1 membership, \
         3 grants (2 to groups, 1 to users)"
    );
    assert_eq!(
        env.groups()["staff-group"],
        (
            vec!["ben".to_owned()],
            vec![
                "reports.export_report".to_owned(),
                "reports.view_report".to_owned()
            ]
        )
    );
    assert!(env.has("ben", "reports.export_report"));
    assert!(env.has("ben", "reports.archive_report"));
    assert!(!env.has("eve", "reports.archive_report"));
    // Django's own names become the descriptions.
    assert_eq!(
        env.description("reports.export_report").as_deref(),
        Some("Can export reports")
    );
    assert_eq!(
        env.description("reports.archive_report").as_deref(),
        Some("Can archive reports")
    );
    // Only what someone holds is registered, not every row of Django's permission table.
    assert_eq!(env.description("contenttypes.add_contenttype"), None);
}

#[test]
fn unresolvable_references_import_nothing() {
    let env = Env::new();
    // Primary keys without the permission table: nothing can say what permission 25 is.
    let path = env.file("bare.json", &django_dump_shaped("pk-bare"));
    let out = env.import(&path, &[]);
    assert_code(&out, 2);
    assert_one_clear_line(&out, Some("bare.json: object "));
    let err = stderr(&out);
    assert!(err.contains("is a primary key"), "{err}");
    assert!(err.contains("--natural-foreign"), "{err}");
    // The group's permissions and ben's direct one: two bad rows.
    assert!(err.contains("(and 1 more bad row)"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");
    assert_eq!(env.sql("SELECT count(*) FROM groups"), "0");
    assert_eq!(env.sql("SELECT count(*) FROM user_permissions"), "0");
    assert_eq!(
        env.sql("SELECT count(*) FROM permissions WHERE app = 'reports'"),
        "0"
    );
    assert_eq!(env.sql("SELECT count(*) FROM audit_log"), "0");

    // A group pk with no auth.group object; a natural group nobody defines; a permission
    // whose name palisade cannot hold. Each is reported against its own object.
    let user = |n: &str, extra: &str| {
        format!(
            r#"{{"model": "auth.user", "fields": {{"username": "{n}", "password": "{PBKDF2}"{extra}}}}}"#
        )
    };
    for (extra, needle) in [
        (
            r#", "groups": [7]"#,
            "j.json: object 1: group 7 is a primary key",
        ),
        (
            r#", "groups": [["ghosts"]]"#,
            "j.json: object 1: group ghosts is neither in the file nor in palisade",
        ),
        (
            r#", "user_permissions": [["Export", "reports", "report"]]"#,
            "j.json: object 1: permission reports.Export",
        ),
        (
            r#", "groups": "staff""#,
            "j.json: object 1: groups is not a list",
        ),
        (
            r#", "user_permissions": [["a", "b"]]"#,
            "j.json: object 1: user_permissions",
        ),
    ] {
        let json = format!("[{}, {}]", user("ok", ""), user("bad", extra));
        let out = env.import(&env.file("j.json", &json), &[]);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(needle));
    }
    // A group defined twice, and a model that is none of the four.
    let json = r#"[{"model": "auth.group", "fields": {"name": "g", "permissions": []}},
                   {"model": "auth.group", "fields": {"name": "g", "permissions": []}},
                   {"model": "admin.logentry", "fields": {}}]"#;
    let out = env.import(&env.file("j.json", json), &[]);
    assert_code(&out, 2);
    assert_one_clear_line(
        &out,
        Some("j.json: object 1: duplicate group g (also at object 0)"),
    );
    assert!(stderr(&out).contains("(and 1 more bad row)"));
    assert_eq!(env.sql("SELECT count(*) FROM users"), "0");
    assert_eq!(env.sql("SELECT count(*) FROM groups"), "0");
    assert_eq!(env.sql("SELECT count(*) FROM audit_log"), "0");
}

#[test]
fn csv_groups_and_permissions_are_json_lists() {
    let env = Env::new();
    // An existing group: the import reuses it, keeping its permission.
    assert_code(&env.run(&["group", "create", "staff"]), 0);
    assert_code(
        &env.run(&["group", "grant", "staff", "members.view_member"]),
        0,
    );
    let header =
        "username,email,password,is_active,is_staff,is_superuser,groups,user_permissions\n";
    let csv = format!(
        "{header}alice,,{PBKDF2},1,0,0,\"[\"\"staff\"\", \"\"editors, senior\"\"]\",\"[\"\"reports.export_report\"\"]\"\n\
         bob,,{PBKDF2},1,0,0,,\n\
         carol,,{PBKDF2},1,0,0,\"[\"\"editors, senior\"\"]\",\"[\"\"members.approve_member\"\", \"\"reports.export_report\"\"]\"\n"
    );
    let out = env.import(&env.file("users.csv", &csv), &[]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "imported 3 users, 2 groups (1 new, 1 existing reused: imported permissions added), \
         1 permission created, 3 memberships, 3 grants (0 to groups, 3 to users)"
    );
    let groups = env.groups();
    assert_eq!(
        groups["staff"],
        (
            vec!["alice".to_owned()],
            vec!["members.view_member".to_owned()]
        )
    );
    assert_eq!(
        groups["editors, senior"],
        (vec!["alice".to_owned(), "carol".to_owned()], vec![])
    );
    assert!(env.has("alice", "members.view_member"), "through staff");
    assert!(env.has("alice", "reports.export_report"));
    assert!(!env.has("alice", "members.approve_member"));
    assert!(env.has("carol", "members.approve_member"));
    assert!(!env.has("bob", "reports.export_report"));
    assert_eq!(
        env.description("reports.export_report").as_deref(),
        Some("Imported from Django")
    );
    let out = env.run(&["audit", "tail", "--json"]);
    let tail: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let last = tail.as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "user.import");
    let detail = &last["detail"];
    assert_eq!(detail["groups_created"], 1);
    assert_eq!(detail["groups_existing"], 1);
    assert_eq!(detail["user_grants"], 3);

    // A plain list is ambiguous (group names may hold commas) and refused; so is a
    // permission palisade cannot name. Nothing of the file is written.
    for (cells, needle) in [
        (
            "\"staff, editors\",",
            "x.csv:3: groups \"staff, editors\" is not a JSON list",
        ),
        (
            ",\"[\"\"Reports.Export\"\"]\"",
            "x.csv:3: permission \"Reports.Export\"",
        ),
        (",reports.export_report", "x.csv:3: user_permissions"),
    ] {
        let csv = format!("{header}dave,,{PBKDF2},1,0,0,,\nerin,,{PBKDF2},1,0,0,{cells}\n");
        let out = env.import(&env.file("x.csv", &csv), &[]);
        assert_code(&out, 2);
        assert_one_clear_line(&out, Some(needle));
    }
    assert_eq!(env.sql("SELECT count(*) FROM users"), "3");
}

#[test]
fn a_group_already_in_palisade_is_reused_and_gains_the_imported_permissions() {
    let env = Env::new();
    assert_code(&env.run(&["group", "create", "staff-group"]), 0);
    assert_code(
        &env.run(&["group", "grant", "staff-group", "members.view_member"]),
        0,
    );
    // A permission registered already keeps its own description.
    assert_code(
        &env.run(&["perm", "create", "reports.view_report", "Read reports"]),
        0,
    );
    let out = env.import(&env.file("dump.json", &django_dump()), &[]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "imported 6 users, 1 group (0 new, 1 existing reused: imported permissions added), \
         2 permissions created, 1 membership, 3 grants (2 to groups, 1 to users)"
    );
    assert_eq!(
        env.groups()["staff-group"],
        (
            vec!["ben".to_owned()],
            vec![
                "members.view_member".to_owned(),
                "reports.export_report".to_owned(),
                "reports.view_report".to_owned()
            ]
        )
    );
    assert_eq!(env.sql("SELECT count(*) FROM groups"), "1");
    assert!(
        env.has("ben", "members.view_member"),
        "the group kept its own"
    );
    assert!(env.has("ben", "reports.export_report"));
    assert_eq!(
        env.description("reports.view_report").as_deref(),
        Some("Read reports")
    );
}
