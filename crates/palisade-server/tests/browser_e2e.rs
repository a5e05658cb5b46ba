//! End to end in a real browser: Debian's headless chromium, driven over WebDriver by
//! chromedriver, against the real server over real TLS. A user registers, activates the
//! account from the emailed link, signs in and is refused the members page; an admin, in a
//! second browser (its own cookie jar), puts the user in a group from the admin console; the
//! user's members page then offers the Approve button, the user approves a member and signs
//! out. Every step goes through the pages as a person would use them (typing into the
//! fields, clicking the buttons), and every page is saved as a PNG screenshot in
//! `$PALISADE_TEST_OUTPUT/browser_e2e/` (default: `CARGO_TARGET_TMPDIR/browser_e2e/`).
//!
//! Chromium trusts exactly the server's leaf key (`--ignore-certificate-errors-spki-list`
//! with the SHA-256 of its SubjectPublicKeyInfo), not every certificate: a browser started
//! without the pin is shown to refuse the server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{TestServer, parse_eml, wait_for_files};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use palisade_core::{
    AuthzStore, Email, GroupName, MemberId, MemberName, MemberStore, NewMember, NewUser,
    Permission, Timestamp, UserStore, Username,
};
use palisade_crypto::hash::{Algorithm, hash};
use palisade_crypto::password::{Argon2Params, hash_password};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one page may take to show what is expected: a broken step fails in
/// seconds with a screenshot instead of hanging.
const WAIT: Duration = Duration::from_secs(10);
/// The whole flow, as a backstop for a WebDriver call that never answers (the WebDriver
/// client itself has no request timeout).
const WHOLE: Duration = Duration::from_secs(240);

const USER: &str = "erin";
const USER_EMAIL: &str = "erin@example.com";
const USER_PASSWORD: &str = "violet kestrel harbour 1987 lantern";
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "quartz meadow orbit tangerine 4417";
const GROUP: &str = "approvers";
const MEMBER: &str = "Ada Lovelace";
/// Cheap hashes for the seeded admin: the test is about pages, not hashing cost.
const LOW: Argon2Params = Argon2Params {
    memory_kib: 1024,
    iterations: 1,
    parallelism: 1,
};

/// Where the screenshots go, emptied first so that it shows one run only.
fn output_dir() -> PathBuf {
    let dir = match std::env::var_os("PALISADE_TEST_OUTPUT") {
        Some(base) => PathBuf::from(base).join("browser_e2e"),
        None => PathBuf::from(concat!(env!("CARGO_TARGET_TMPDIR"), "/browser_e2e")),
    };
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn require_browser() {
    for path in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: run scripts/test-setup.sh (scripts/test.sh runs it), which \
             installs Debian's chromium and chromium-driver"
        );
    }
}

/// chromedriver on a free loopback port, in its own process group so that dropping this
/// (at the end, or while a failed assertion unwinds) ends it and every chromium it started.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    fn start(log: &Path) -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {CHROMEDRIVER}: {e}"));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "chromedriver exited ({status}) before listening; its log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            if start.elapsed() > WAIT {
                let _ = child.kill();
                panic!("chromedriver did not listen on {addr} within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            url: format!("http://{addr}"),
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group (chromedriver made it with its own pid): a chromium left behind
        // would outlive the test. kill(1) because std can signal only the one child.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of the leaf certificate the server presents: the
/// form `--ignore-certificate-errors-spki-list` takes.
fn leaf_spki_pin(data_dir: &Path) -> String {
    let pem = data_dir.join("tls/server.pem");
    let leaf = CertificateDer::pem_file_iter(&pem)
        .unwrap()
        .next()
        .expect("a certificate in server.pem")
        .unwrap();
    let cert = webpki::EndEntityCert::try_from(&leaf).unwrap();
    let spki = cert.subject_public_key_info();
    STANDARD.encode(hash(Algorithm::Sha256, spki.as_ref()))
}

/// A new headless chromium session with a fresh profile in `profile` (a separate cookie
/// jar), trusting the server's leaf key when `pin` is given and nothing else.
async fn open_browser(driver: &str, profile: &Path, pin: Option<&str>) -> Client {
    let mut args = vec![
        "--headless=new".to_owned(),
        // CI runs as root, where chromium's sandbox cannot start.
        "--no-sandbox".to_owned(),
        // /dev/shm is small in containers; chromium crashes tabs when it fills up.
        "--disable-dev-shm-usage".to_owned(),
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        // No desktop keyring here: without this chromium may wait for one.
        "--password-store=basic".to_owned(),
        "--window-size=1280,900".to_owned(),
        "--lang=en-US".to_owned(),
        // chromium honours the SPKI list only with an explicit profile directory.
        format!("--user-data-dir={}", profile.display()),
    ];
    if let Some(pin) = pin {
        args.push(format!("--ignore-certificate-errors-spki-list={pin}"));
    }
    let caps = json!({
        "browserName": "chrome",
        // Said explicitly: certificate errors must fail, the pin is the only way in.
        "acceptInsecureCerts": false,
        "timeouts": { "pageLoad": 10_000, "script": 10_000, "implicit": 0 },
        "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
    });
    let caps = serde_json::from_value(caps).unwrap();
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .unwrap_or_else(|e| panic!("chromedriver could not start chromium ({CHROMIUM}): {e}"))
}

/// Numbered screenshots, one per page, across both browsers.
struct Shots {
    dir: PathBuf,
    n: usize,
}

impl Shots {
    /// Saves the next numbered screenshot, `NN-name.png`.
    async fn take(&mut self, tab: &Client, name: &str) -> PathBuf {
        self.n += 1;
        self.save(tab, &format!("{:02}-{name}.png", self.n)).await
    }

    /// A screenshot that cannot be saved is reported, not fatal: the pages are what the
    /// test checks, and another run of the suite may be clearing the same folder.
    async fn save(&self, tab: &Client, file: &str) -> PathBuf {
        let path = self.dir.join(file);
        let saved = match tab.screenshot().await {
            Ok(png) => std::fs::create_dir_all(&self.dir)
                .and_then(|()| std::fs::write(&path, png))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = saved {
            eprintln!("browser_e2e: no screenshot {}: {e}", path.display());
        }
        path
    }
}

/// The visible text of the page, or "" while it is being replaced.
async fn body_text(tab: &Client) -> String {
    match tab.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits until the tab is at `path` and shows every one of `texts`, then saves a screenshot
/// as `name` and returns the page's text. When that does not happen within [`WAIT`] the
/// screenshot is still saved, and the panic says where the browser is and what it shows.
async fn expect_page(
    shots: &mut Shots,
    tab: &Client,
    name: &str,
    path: &str,
    texts: &[&str],
) -> String {
    let start = Instant::now();
    loop {
        let url = tab.current_url().await.ok();
        let text = body_text(tab).await;
        let at = url.as_ref().is_some_and(|u| u.path() == path);
        if at && texts.iter().all(|t| text.contains(t)) {
            shots.take(tab, name).await;
            return text;
        }
        if start.elapsed() > WAIT {
            let shot = shots.take(tab, &format!("{name}-FAILED")).await;
            panic!(
                "step {name}: expected {path} showing {texts:?} within {WAIT:?}; the browser \
                 is at {} showing:\n{text}\n(screenshot {})",
                url.map(|u| u.to_string()).unwrap_or_default(),
                shot.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element `locator` finds (waiting for it up to [`WAIT`]); `what` names it for the
/// failure message.
async fn element(tab: &Client, locator: Locator<'_>, what: &str) -> fantoccini::elements::Element {
    match tab.wait().at_most(WAIT).for_element(locator).await {
        Ok(el) => el,
        Err(e) => {
            let url = tab
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            panic!(
                "no {what} on {url} within {WAIT:?} ({e}); the page shows:\n{}",
                body_text(tab).await
            )
        }
    }
}

/// Types `value` into the input named `name`, as a person would.
async fn type_into(tab: &Client, name: &str, value: &str) {
    let field = element(
        tab,
        Locator::Css(&format!("input[name='{name}']")),
        &format!("field {name}"),
    )
    .await;
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Clicks the button labelled `label` inside the form posting to `action`.
async fn click_button(tab: &Client, action: &str, label: &str) {
    let xpath = format!("//form[@action='{action}']//button[normalize-space()='{label}']");
    element(
        tab,
        Locator::XPath(&xpath),
        &format!("button \"{label}\" of form {action}"),
    )
    .await
    .click()
    .await
    .unwrap();
}

async fn goto(tab: &Client, url: &str) {
    tab.goto(url)
        .await
        .unwrap_or_else(|e| panic!("the browser could not open {url}: {e}"));
}

/// Signs in through the login form; the server then sends the browser to `/`.
async fn sign_in(shots: &mut Shots, tab: &Client, site: &str, who: &str, user: &str, pw: &str) {
    goto(tab, &format!("{site}/accounts/login/")).await;
    expect_page(
        shots,
        tab,
        &format!("{who}-login"),
        "/accounts/login/",
        &["Sign in"],
    )
    .await;
    type_into(tab, "username", user).await;
    type_into(tab, "password", pw).await;
    click_button(tab, "/accounts/login/", "Sign in").await;
    expect_page(shots, tab, &format!("{who}-signed-in"), "/", &["Palisade"]).await;
    let cookie = tab
        .get_named_cookie("__Host-palisade_session")
        .await
        .unwrap_or_else(|e| panic!("{who}: no session cookie after signing in: {e}"));
    assert_eq!(cookie.secure(), Some(true), "the session cookie is Secure");
    assert_eq!(
        cookie.http_only(),
        Some(true),
        "the session cookie is HttpOnly"
    );
}

/// The path of the first link in `text` that starts with `site` + `prefix`.
fn link(text: &str, site: &str, prefix: &str) -> String {
    let start = text
        .find(&format!("{site}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
    let rest = &text[start..];
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The admin (staff and superuser), the `approvers` group with the two members
/// permissions, and one member waiting for approval: made through the store as
/// `palisade user create` and the admin console would.
async fn seed(server: &TestServer) -> MemberId {
    let store = server.state.store();
    let mut admin = NewUser::new(
        Username::parse(ADMIN).unwrap(),
        Some(Email::parse("admin@example.com").unwrap()),
        hash_password(ADMIN_PASSWORD.as_bytes(), &LOW).unwrap(),
        Timestamp::from_unix(1_700_000_000),
    );
    admin.is_staff = true;
    admin.is_superuser = true;
    store.create_user(admin).await.unwrap();
    let group = store
        .create_group(&GroupName::parse(GROUP).unwrap())
        .await
        .unwrap();
    for perm in ["members.view_member", "members.approve_member"] {
        store
            .grant_to_group(group.id, &Permission::parse(perm).unwrap())
            .await
            .unwrap();
    }
    store
        .add_member(NewMember {
            name: MemberName::parse(MEMBER).unwrap(),
            email: None,
            added_by: None,
            added_at: Timestamp::from_unix(1_700_000_000),
        })
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_user_is_granted_a_group_in_the_console_and_approves_a_member() {
    require_browser();
    let out = output_dir();
    println!("browser_e2e: screenshots in {}", out.display());
    let mut server = TestServer::start(|_| {}).await;
    let member = seed(&server).await;
    let pin = leaf_spki_pin(&server.data_dir);
    let driver = ChromeDriver::start(&out.join("chromedriver.log"));
    let profiles = tempfile::tempdir().unwrap();
    let ctx = Flow {
        site: server.url.clone(),
        outbox: server.outbox(),
        state: server.state.clone(),
        driver: driver.url.clone(),
        pin,
        profiles: profiles.path().to_owned(),
        shots: Shots {
            dir: out.clone(),
            n: 0,
        },
        member,
    };
    // A task of its own, so that a failed step (a panic in it) still leaves the runtime
    // running: the WebDriver sessions its browsers belong to are then closed by chromedriver
    // (which ends and reaps chromium) before the process group is killed.
    let mut task = tokio::spawn(flow(ctx));
    let outcome = match tokio::time::timeout(WHOLE, &mut task).await {
        Ok(joined) => joined.map_err(|e| {
            if e.is_panic() {
                e.into_panic()
            } else {
                Box::new(format!("the browser flow was cancelled: {e}"))
            }
        }),
        Err(_) => {
            task.abort();
            Err(Box::new(format!(
                "the browser flow did not finish within {WHOLE:?} (a WebDriver call hung?); \
                 screenshots so far in {}",
                out.display()
            )) as Box<dyn std::any::Any + Send>)
        }
    };
    if let Err(panic) = outcome {
        // Time for the dropped clients to close their sessions; see above.
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(driver);
        std::panic::resume_unwind(panic);
    }
    drop(driver);
    server.stop().await;
}

/// What the flow needs, owned, so it can run as a task of its own.
struct Flow {
    site: String,
    outbox: PathBuf,
    state: palisade_server::AppState,
    driver: String,
    pin: String,
    profiles: PathBuf,
    shots: Shots,
    member: MemberId,
}

async fn flow(ctx: Flow) {
    let Flow {
        site,
        outbox,
        state,
        driver,
        pin,
        profiles,
        mut shots,
        member,
    } = ctx;
    let (site, driver, pin, profiles, shots) = (
        site.as_str(),
        driver.as_str(),
        pin.as_str(),
        profiles.as_path(),
        &mut shots,
    );

    // Without the pin chromium must refuse the development certificate: proof that the pin,
    // not a blanket exception, is what lets the browser in below.
    let unpinned = open_browser(driver, &profiles.join("unpinned"), None).await;
    let refused = unpinned.goto(&format!("{site}/accounts/login/")).await;
    let text = body_text(&unpinned).await;
    shots.save(&unpinned, "00-no-pin-refused.png").await;
    assert!(
        refused.is_err() || (text.contains("ERR_CERT") && !text.contains("Sign in")),
        "a browser without the pin was not refused by the certificate check: {text}"
    );
    unpinned.close().await.unwrap();

    let user = open_browser(driver, &profiles.join("user"), Some(pin)).await;

    // a. Register → "check your email".
    goto(&user, &format!("{site}/accounts/register/")).await;
    expect_page(
        shots,
        &user,
        "register",
        "/accounts/register/",
        &["Create an account"],
    )
    .await;
    type_into(&user, "username", USER).await;
    type_into(&user, "email", USER_EMAIL).await;
    type_into(&user, "password1", USER_PASSWORD).await;
    type_into(&user, "password2", USER_PASSWORD).await;
    click_button(&user, "/accounts/register/", "Create account").await;
    expect_page(
        shots,
        &user,
        "check-email",
        "/accounts/register/",
        &["Check your email"],
    )
    .await;

    // b. The activation link from the mail in the outbox → confirm button → activated.
    let mails = wait_for_files(&outbox, ".eml", 1).await;
    assert_eq!(mails.len(), 1, "one mail: the activation");
    let mail = &parse_eml(&mails)[0];
    assert_eq!(mail["to"], USER_EMAIL);
    assert_eq!(mail["subject"], "Activate your account");
    let activate = link(mail["text"].as_str().unwrap(), site, "/accounts/activate/");
    goto(&user, &activate).await;
    let path = url::Url::parse(&activate).unwrap().path().to_owned();
    expect_page(
        shots,
        &user,
        "activate",
        &path,
        &["Activate your account", USER],
    )
    .await;
    click_button(&user, &path, "Activate account").await;
    expect_page(shots, &user, "activated", &path, &["Account activated"]).await;

    // c. Sign in → the home page.
    sign_in(shots, &user, site, "user", USER, USER_PASSWORD).await;

    // d. The members page needs a permission the new account lacks: the 403 page says so.
    goto(&user, &format!("{site}/members/")).await;
    expect_page(
        shots,
        &user,
        "members-forbidden",
        "/members/",
        &["403 Forbidden", "members.view_member", "does not have"],
    )
    .await;

    // e. The admin, in a browser of their own, adds the user to `approvers` in the console.
    let user_id = state
        .store()
        .get_by_username(&Username::parse(USER).unwrap())
        .await
        .unwrap()
        .expect("the registered account")
        .id;
    let admin = open_browser(driver, &profiles.join("admin"), Some(pin)).await;
    sign_in(shots, &admin, site, "admin", ADMIN, ADMIN_PASSWORD).await;
    goto(&admin, &format!("{site}/admin/users/?q={USER}")).await;
    expect_page(shots, &admin, "admin-users", "/admin/users/", &[USER]).await;
    let detail = format!("/admin/users/{user_id}/");
    let xpath = format!("//a[normalize-space()='{USER}']");
    let to_user = element(&admin, Locator::XPath(&xpath), &format!("link \"{USER}\"")).await;
    let href = to_user.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.ends_with(&detail), "the link to {USER} goes to {href}");
    to_user.click().await.unwrap();
    expect_page(shots, &admin, "admin-user", &detail, &[USER]).await;
    element(
        &admin,
        Locator::Css("form#add-to-group select[name='group']"),
        "group choice of form#add-to-group",
    )
    .await
    .select_by_label(GROUP)
    .await
    .unwrap_or_else(|e| panic!("no option {GROUP} in form#add-to-group: {e}"));
    element(
        &admin,
        Locator::Css("form#add-to-group [type='submit']"),
        "submit button of form#add-to-group",
    )
    .await
    .click()
    .await
    .unwrap();
    expect_page(shots, &admin, "admin-user-in-group", &detail, &[GROUP]).await;
    // Listed as one of the user's groups, not merely an option of the form's choice.
    let listed = format!(
        "//body//*[not(self::option) and not(self::select) and \
         not(ancestor::form[@id='add-to-group'])][text()[normalize-space()='{GROUP}']]"
    );
    element(
        &admin,
        Locator::XPath(&listed),
        &format!("{GROUP} among the groups"),
    )
    .await;

    // f. Back as the user: the members page now lists the member with an Approve button.
    goto(&user, &format!("{site}/members/")).await;
    expect_page(
        shots,
        &user,
        "members-approve",
        "/members/",
        &["Members", MEMBER, "waiting for approval"],
    )
    .await;
    let approve = format!("/members/{member}/approve/");
    click_button(&user, &approve, "Approve").await;
    let text = expect_page(
        shots,
        &user,
        "members-approved",
        "/members/",
        &[MEMBER, "approved"],
    )
    .await;
    assert!(!text.contains("waiting for approval"), "{text}");
    let buttons = user
        .find_all(Locator::XPath("//button[normalize-space()='Approve']"))
        .await
        .unwrap();
    assert!(buttons.is_empty(), "no Approve button once approved");

    // g. Sign out (the button is on the profile page), then /members/ sends to sign-in.
    goto(&user, &format!("{site}/accounts/profile/")).await;
    expect_page(
        shots,
        &user,
        "profile",
        "/accounts/profile/",
        &[USER, GROUP],
    )
    .await;
    click_button(&user, "/accounts/logout/", "Sign out").await;
    expect_page(shots, &user, "signed-out", "/accounts/login/", &["Sign in"]).await;
    goto(&user, &format!("{site}/members/")).await;
    expect_page(
        shots,
        &user,
        "members-login",
        "/accounts/login/",
        &["Sign in"],
    )
    .await;
    let next = user.current_url().await.unwrap();
    assert!(
        next.query_pairs()
            .any(|(k, v)| k == "next" && v == "/members/"),
        "the sign-in page comes back to /members/: {next}"
    );

    admin.close().await.unwrap();
    user.close().await.unwrap();
}
