//! Issue 3's Django interop chain, end to end with real Django 5.2 and the real binary:
//! Django makes users with every hasher and `dumpdata`s them; `palisade import django`
//! takes the dump; `palisade serve` signs each user in over real TLS, upgrading the hash to
//! palisade's Argon2id; and Django's own `check_password` still accepts every upgraded
//! hash, so rolling back to Django loses nobody.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Running, assert_code, clean_palisade, path_str, py, run_cmd, start, stderr, stdout, tempdir,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

/// The prefix every hash palisade writes with its default parameters starts with.
const UPGRADED_PREFIX: &str = "argon2$argon2id$v=19$m=19456,t=2,p=1$";
/// The server's one message for every failed sign-in.
const LOGIN_ERROR: &str = "Please enter a correct username and password.";

/// (username, Django hasher algorithm); each user's password is `password_of(username)`.
const ACTIVE_USERS: &[(&str, &str)] = &[
    ("u_pbkdf2", "pbkdf2_sha256"),
    ("u_pbkdf2sha1", "pbkdf2_sha1"),
    ("u_argon2", "argon2"),
    ("u_bcryptsha256", "bcrypt_sha256"),
    ("u_bcrypt", "bcrypt"),
    ("u_scrypt", "scrypt"),
    ("u_md5", "md5"),
];
const INACTIVE_USER: &str = "u_inactive";

fn password_of(username: &str) -> String {
    format!("Pw {username} ünïcode & = + %!")
}

const DJANGO_SETTINGS: &str = r#"import django
from django.conf import settings
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes"],
    PASSWORD_HASHERS=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.BCryptPasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ],
    USE_TZ=True,
)
django.setup()
"#;

/// The Django group the export holds, with the permissions it grants (Django `app_label`,
/// `model`, `codename`), and the user who is in it.
const GROUP: &str = "approvers";
const GROUP_PERMISSIONS: &[(&str, &str, &str)] = &[
    // The members app's own permission, made in Django under the same app label: after the
    // import it is palisade's built-in `members.approve_member`, reused, not duplicated.
    ("members", "member", "approve_member"),
    ("auth", "user", "change_user"),
];
const GROUP_MEMBER: &str = "u_pbkdf2";
/// A user holding a Django permission directly, not through a group.
const DIRECT_USER: &str = "u_argon2";
const DIRECT_PERMISSION: (&str, &str, &str) = ("auth", "user", "view_user");

/// Reads `{"users": [[username, hasher, password, is_active], …], "group": NAME,
/// "group_permissions": [[app_label, model, codename], …], "member": USER, "direct": USER,
/// "direct_permission": [app_label, model, codename]}` on stdin, creates those users, the
/// group and the grants in an in-memory Django database, and prints `dumpdata` with natural
/// keys.
const DJANGO_DUMP: &str = r#"
import io, sys, json
from django.core.management import call_command
from django.contrib.auth.models import User, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.auth.hashers import make_password
call_command("migrate", verbosity=0)
spec = json.load(sys.stdin)
def permission(app_label, model, codename):
    ct, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
    p, _ = Permission.objects.get_or_create(
        content_type=ct, codename=codename,
        defaults={"name": "Django can " + codename.replace("_", " ")})
    return p
for name, hasher, pw, active in spec["users"]:
    u = User.objects.create_user(name, name + "@example.com", None, is_active=active)
    u.password = make_password(pw, hasher=hasher)
    u.save()
group = Group.objects.create(name=spec["group"])
group.permissions.add(*[permission(*p) for p in spec["group_permissions"]])
User.objects.get(username=spec["member"]).groups.add(group)
User.objects.get(username=spec["direct"]).user_permissions.add(permission(*spec["direct_permission"]))
# Django's own check first: the export is of users who really hold these.
member = User.objects.get(username=spec["member"])
assert all(member.has_perm(a + "." + c) for a, _, c in spec["group_permissions"])
direct = User.objects.get(username=spec["direct"])
assert direct.has_perm(spec["direct_permission"][0] + "." + spec["direct_permission"][2])
out = io.StringIO()
call_command("dumpdata", "auth.user", "auth.group", natural_foreign=True, natural_primary=True, stdout=out)
sys.stdout.write(out.getvalue())
"#;

/// Reads `[[password, encoded], …]` on stdin and prints Django's `check_password` verdict
/// for each, and the hasher Django identifies, as JSON.
const DJANGO_CHECK: &str = r#"
import sys, json
from django.contrib.auth.hashers import check_password, identify_hasher
out = []
for pw, encoded in json.load(sys.stdin):
    out.append([check_password(pw, encoded), identify_hasher(encoded).algorithm])
print(json.dumps(out))
"#;

fn django(script: &str, input: &Value) -> Value {
    let code = format!("{DJANGO_SETTINGS}{script}");
    let out = py(&code, &[], input.to_string().as_bytes());
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "Django printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out)
        )
    })
}

fn sql(data: &Path, query: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(data.join("palisade.db"))
        .arg(query)
        .output()
        .expect("the sqlite3 tool");
    assert!(out.status.success(), "sqlite3 {query:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn hash_of(data: &Path, username: &str) -> String {
    assert!(
        username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "{username}"
    );
    let hash = sql(
        data,
        &format!("SELECT password_hash FROM users WHERE username = '{username}'"),
    );
    assert!(!hash.is_empty(), "{username} is not in the users table");
    hash
}

/// Starts `palisade serve` on a free port with data directory `data`.
fn start_server(data: &Path) -> Running {
    start(clean_palisade().args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path_str(data),
    ]))
}

/// SIGTERM, then the server must exit 0 (a clean shutdown closes the database).
fn stop_server(mut server: Running) {
    server.sigterm();
    assert_eq!(server.wait_exit(Duration::from_secs(15)), 0, "server exit");
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

struct Page {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn csrf_token(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no csrf_token in the page:\n{}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').unwrap() + start;
        self.body[start..end].to_owned()
    }

    fn location(&self) -> &str {
        self.headers
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// One user's browser: TLS trusting only the data directory's development CA, redirects
/// not followed, and a cookie jar kept by hand (the workspace's reqwest has no `cookies`
/// feature).
struct Browser {
    client: reqwest::Client,
    url: String,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new(data: &Path, url: &str) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(data.join("tls/ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Browser {
            client,
            url: url.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("__Host-palisade_session")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req.header(reqwest::header::COOKIE, jar)
        };
        let resp = req.send().await.expect("request to palisade serve");
        let status = resp.status();
        let headers = resp.headers().clone();
        for set in headers.get_all(reqwest::header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.url));
        self.send(req).await
    }

    /// Loads the login form (which sets the anonymous CSRF cookie) and submits it.
    async fn login(&mut self, username: &str, password: &str) -> Page {
        let form = self.get("/accounts/login/").await;
        assert_eq!(form.status, 200, "login form for {username}");
        assert!(
            self.cookies.contains_key("__Host-palisade_csrf"),
            "no CSRF cookie with the login form"
        );
        let token = form.csrf_token();
        let body = [
            ("username", username),
            ("password", password),
            ("csrf_token", token.as_str()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let req = self
            .client
            .post(format!("{}/accounts/login/", self.url))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ORIGIN, self.url.clone())
            .body(body);
        self.send(req).await
    }
}

/// Asserts a sign-in was refused the generic way: 200, the one error, no session.
#[track_caller]
fn assert_refused(page: &Page, b: &Browser, who: &str) {
    assert_eq!(
        page.status, 200,
        "{who}: a refused sign-in answers 200; body:\n{}",
        page.body
    );
    assert!(
        page.body.contains(LOGIN_ERROR),
        "{who}: the generic error is missing:\n{}",
        page.body
    );
    assert!(b.session().is_none(), "{who} got a session cookie");
}

#[test]
fn django_users_import_sign_in_upgrade_and_roll_back() {
    let began = Instant::now();
    let tmp = tempdir();
    let data: PathBuf = tmp.path().join("data");

    // 1. Real Django makes one user per hasher plus an inactive one, and dumps them.
    let mut spec: Vec<Value> = ACTIVE_USERS
        .iter()
        .map(|(name, hasher)| serde_json::json!([name, hasher, password_of(name), true]))
        .collect();
    spec.push(serde_json::json!([
        INACTIVE_USER,
        "pbkdf2_sha256",
        password_of(INACTIVE_USER),
        false
    ]));
    let input = serde_json::json!({
        "users": spec,
        "group": GROUP,
        "group_permissions": GROUP_PERMISSIONS,
        "member": GROUP_MEMBER,
        "direct": DIRECT_USER,
        "direct_permission": DIRECT_PERMISSION,
    });
    let dump = django(DJANGO_DUMP, &input);
    let mut django_hashes = BTreeMap::new();
    for object in dump.as_array().unwrap() {
        if object["model"] == "auth.user" {
            let fields = &object["fields"];
            django_hashes.insert(
                fields["username"].as_str().unwrap().to_owned(),
                fields["password"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert_eq!(django_hashes.len(), ACTIVE_USERS.len() + 1, "{dump}");
    for (name, hasher) in ACTIVE_USERS {
        let hash = &django_hashes[*name];
        assert!(
            hash.starts_with(&format!("{hasher}$")),
            "Django gave {name} {hash:?}, not a {hasher} hash"
        );
    }
    let dump_path = tmp.path().join("dump.json");
    std::fs::write(&dump_path, dump.to_string()).unwrap();

    // 2. The import.
    let out = run_cmd(
        clean_palisade().args([
            "--data-dir",
            path_str(&data),
            "import",
            "django",
            path_str(&dump_path),
        ]),
        b"",
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).starts_with(&format!("imported {} users", django_hashes.len())),
        "import said: {}",
        stdout(&out)
    );
    for (name, hash) in &django_hashes {
        assert_eq!(
            &hash_of(&data, name),
            hash,
            "{name}: imported hash differs from Django's"
        );
    }
    // The group and the grants came along: what Django's has_perm said yes to, palisade's
    // check says yes to, through the group and directly, and nothing more.
    let perm_check = |user: &str, permission: &str| {
        let out = run_cmd(
            clean_palisade().args([
                "--data-dir",
                path_str(&data),
                "perm",
                "check",
                user,
                permission,
            ]),
            b"",
        );
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "perm check {user} {permission}: {}",
            stderr(&out)
        );
        code == Some(0)
    };
    for (app_label, _, codename) in GROUP_PERMISSIONS {
        let permission = format!("{app_label}.{codename}");
        assert!(
            perm_check(GROUP_MEMBER, &permission),
            "{GROUP_MEMBER} lacks {permission} from group {GROUP}"
        );
        assert!(
            !perm_check(DIRECT_USER, &permission),
            "{DIRECT_USER} is not in {GROUP} yet has {permission}"
        );
    }
    let direct = format!("{}.{}", DIRECT_PERMISSION.0, DIRECT_PERMISSION.2);
    assert!(
        perm_check(DIRECT_USER, &direct),
        "{DIRECT_USER} lacks its direct {direct}"
    );
    assert!(!perm_check(GROUP_MEMBER, &direct));
    assert_eq!(
        sql(
            &data,
            "SELECT description FROM permissions WHERE name = 'members.approve_member'"
        ),
        "Can approve member",
        "the built-in permission is reused as palisade registered it"
    );

    // 3. The server.
    let server = start_server(&data);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut upgraded: BTreeMap<String, String> = BTreeMap::new();
    rt.block_on(async {
        // A wrong password first (one of only two failures in the whole test, far under the
        // throttle): generic refusal, and the Django hash is left exactly as it was.
        let victim = "u_md5";
        let mut b = Browser::new(&data, &server.url);
        let page = b.login(victim, "not the password").await;
        assert_refused(&page, &b, &format!("{victim} with a wrong password"));
        assert_eq!(
            hash_of(&data, victim),
            django_hashes[victim],
            "{victim}: a failed sign-in changed the stored hash"
        );

        // 4. Every imported user signs in, and leaves with an Argon2id hash.
        for (name, hasher) in ACTIVE_USERS {
            let old = &django_hashes[*name];
            let mut b = Browser::new(&data, &server.url);
            let page = b.login(name, &password_of(name)).await;
            assert_eq!(
                page.status,
                303,
                "{name} ({hasher}): sign-in was not accepted; body:\n{}\nserver stderr:\n{}",
                page.body,
                server.stderr()
            );
            assert!(
                b.session().is_some(),
                "{name} ({hasher}): 303 without a session cookie"
            );
            assert_eq!(page.location(), "/", "{name}");
            let profile = b.get("/accounts/profile/").await;
            assert_eq!(
                profile.status,
                200,
                "{name} ({hasher}): profile refused after sign-in (Location {:?})",
                profile.location()
            );
            assert!(
                profile.body.contains(name),
                "{name}: the profile page does not show the username:\n{}",
                profile.body
            );

            let new = hash_of(&data, name);
            assert!(
                new.starts_with(UPGRADED_PREFIX),
                "{name} ({hasher}): hash not upgraded at sign-in, still {:?}",
                new.split('$').take(2).collect::<Vec<_>>().join("$")
            );
            assert_ne!(&new, old, "{name}");
            assert_eq!(
                sql(
                    &data,
                    &format!(
                        "SELECT count(*) FROM users WHERE password_hash = '{}'",
                        old.replace('\'', "''")
                    )
                ),
                "0",
                "{name} ({hasher}): the old Django hash is still stored"
            );
            upgraded.insert((*name).to_owned(), new);
        }

        // After the upgrade a wrong password is still refused the generic way, and the new
        // hash is untouched.
        let victim = "u_pbkdf2";
        let before = hash_of(&data, victim);
        let mut b = Browser::new(&data, &server.url);
        let page = b.login(victim, "wrong again").await;
        assert_refused(
            &page,
            &b,
            &format!("{victim} (upgraded) with a wrong password"),
        );
        assert_eq!(hash_of(&data, victim), before, "{victim}: hash changed");

        // The inactive user cannot sign in even with the right password.
        let mut b = Browser::new(&data, &server.url);
        let page = b.login(INACTIVE_USER, &password_of(INACTIVE_USER)).await;
        assert_refused(&page, &b, INACTIVE_USER);
        assert_eq!(
            b.get("/accounts/profile/").await.status,
            303,
            "{INACTIVE_USER}: profile must send an anonymous visitor to sign in"
        );
        assert_eq!(
            hash_of(&data, INACTIVE_USER),
            django_hashes[INACTIVE_USER],
            "{INACTIVE_USER}: hash changed without a sign-in"
        );
    });
    assert!(
        !server.stderr().contains("panicked"),
        "server stderr:\n{}",
        server.stderr()
    );
    stop_server(server);

    // 5. Rollback: Django itself accepts every upgraded hash, and only the right password.
    let mut pairs: Vec<Value> = upgraded
        .iter()
        .map(|(name, hash)| serde_json::json!([password_of(name), hash]))
        .collect();
    let (first_name, first_hash) = upgraded.iter().next().unwrap();
    pairs.push(serde_json::json!(["wrong password", first_hash]));
    pairs.push(serde_json::json!([
        password_of(first_name) + "x",
        first_hash
    ]));
    let verdicts = django(DJANGO_CHECK, &Value::Array(pairs));
    let verdicts = verdicts.as_array().unwrap();
    assert_eq!(verdicts.len(), upgraded.len() + 2);
    for ((name, _), verdict) in upgraded.iter().zip(verdicts) {
        assert_eq!(
            verdict[0], true,
            "Django's check_password rejects {name}'s upgraded hash"
        );
        assert_eq!(
            verdict[1], "argon2",
            "Django identifies {name}'s hash as {}",
            verdict[1]
        );
    }
    for verdict in &verdicts[upgraded.len()..] {
        assert_eq!(
            verdict[0], false,
            "Django accepted a wrong password for {first_name}"
        );
    }
    eprintln!("django_migration_e2e took {:?}", began.elapsed());
}
