//! `palisade group …` and `palisade perm …` driving the real binary against a fresh data
//! directory: the built-in permissions exist after migrate, grants through groups and
//! directly, the superuser and inactive rules of `perm check`, clear errors, and the audit
//! trail of every change.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use common::*;
use serde_json::Value;

const PASSWORD: &str = "Tr0ub4dor&3-kayak-Quartz";

fn with_users(names: &[&str]) -> DataDir {
    let env = DataDir::new();
    for name in names {
        let out = env.run(
            &[
                "user",
                "create",
                name,
                "--email",
                &format!("{name}@example.com"),
                "--password-stdin",
            ],
            format!("{PASSWORD}\n").as_bytes(),
        );
        assert_code(&out, 0);
    }
    env
}

fn json(env: &DataDir, args: &[&str]) -> Vec<Value> {
    match serde_json::from_str(&env.ok(args)).expect("JSON output") {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

fn check(env: &DataDir, user: &str, perm: &str) -> i32 {
    let out = env.run(&["perm", "check", user, perm], b"");
    let c = code(&out);
    assert!(c == 0 || c == 1, "{}", stderr(&out));
    c
}

#[test]
fn built_in_permissions_are_registered_and_custom_ones_can_be_added() {
    let env = DataDir::new();
    env.ok(&["migrate"]);
    let perms = json(&env, &["perm", "list", "--json"]);
    let names: Vec<&str> = perms.iter().map(|p| p["name"].as_str().unwrap()).collect();
    for expected in [
        "members.view_member",
        "members.approve_member",
        "drop.add_sender",
        "drop.view_message",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "ordered by name");

    assert_eq!(
        env.ok(&[
            "perm",
            "create",
            "reports.export_report",
            "Can export reports"
        ]),
        "created permission reports.export_report\n"
    );
    let again = env.run(&["perm", "create", "reports.export_report", "x"], b"");
    assert_code(&again, 2);
    assert!(stderr(&again).contains("exists already"));
    for bad in ["reports", "Reports.x", "a.b.c", "reports.export-report"] {
        let out = env.run(&["perm", "create", bad, "Something"], b"");
        assert_one_clear_line(&out, None);
        assert_code(&out, 2);
    }
    let listed = env.ok(&["perm", "list"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("reports.export_report "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(row.ends_with(" Can export reports"), "{row}");
    assert!(listed.starts_with("PERMISSION "), "{listed}");
}

#[test]
fn groups_grant_permissions_to_their_members_until_revoked() {
    let env = with_users(&["ann", "ben"]);
    assert_eq!(
        env.ok(&["group", "create", "Editors"]),
        "created group Editors\n"
    );
    assert_code(&env.run(&["group", "create", "Editors"], b""), 2);
    assert_eq!(
        env.ok(&["group", "add-user", "Editors", "ann"]),
        "added ann to Editors\n"
    );
    assert_eq!(
        env.ok(&["group", "add-user", "Editors", "ANN"]),
        "ann is in Editors already\n"
    );
    assert_eq!(check(&env, "ann", "members.approve_member"), 1);
    env.ok(&["group", "grant", "Editors", "members.approve_member"]);
    assert_eq!(check(&env, "ann", "members.approve_member"), 0);
    assert_eq!(check(&env, "ben", "members.approve_member"), 1);

    let groups = json(&env, &["group", "list", "--json"]);
    assert_eq!(
        groups,
        [serde_json::json!({
            "name": "Editors",
            "members": ["ann"],
            "permissions": ["members.approve_member"],
        })]
    );

    // A direct grant survives the group's revocation, and the other way round.
    env.ok(&["perm", "grant", "ben", "members.view_member"]);
    env.ok(&["group", "add-user", "Editors", "ben"]);
    env.ok(&["group", "revoke", "Editors", "members.approve_member"]);
    assert_eq!(check(&env, "ann", "members.approve_member"), 1);
    assert_eq!(check(&env, "ben", "members.view_member"), 0);
    env.ok(&["perm", "revoke", "ben", "members.view_member"]);
    assert_eq!(check(&env, "ben", "members.view_member"), 1);
    assert_eq!(
        env.ok(&["perm", "revoke", "ben", "members.view_member"]),
        "ben does not have members.view_member directly\n"
    );
    env.ok(&["group", "remove-user", "Editors", "ann"]);
    assert_eq!(
        env.ok(&["group", "remove-user", "Editors", "ann"]),
        "ann is not in Editors\n"
    );

    // Unknown names are exit 2 with the name.
    for (args, what) in [
        (
            vec!["group", "add-user", "Nobody", "ann"],
            "no group named Nobody",
        ),
        (
            vec!["group", "add-user", "Editors", "zed"],
            "no user named zed",
        ),
        (
            vec!["group", "grant", "Editors", "members.fly"],
            "no permission members.fly",
        ),
        (
            vec!["perm", "grant", "ann", "members.fly"],
            "no permission members.fly",
        ),
        (
            vec!["perm", "check", "zed", "members.view_member"],
            "no user named zed",
        ),
    ] {
        let out = env.run(&args, b"");
        assert_code(&out, 2);
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
    }

    // Every change is on the audit record, by the CLI, and the chain verifies.
    let audit = json(&env, &["audit", "tail", "-n", "50", "--json"]);
    let actions: Vec<&str> = audit
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "group.create",
        "group.add_user",
        "group.grant",
        "group.revoke",
        "group.remove_user",
        "perm.grant",
        "perm.revoke",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    // Changes that changed nothing are not recorded.
    assert_eq!(
        actions.iter().filter(|a| **a == "group.add_user").count(),
        2
    );
    assert!(env.ok(&["audit", "verify"]).starts_with("OK"));
}

#[test]
fn superusers_have_everything_and_inactive_users_nothing() {
    let env = with_users(&["cat"]);
    let out = env.run(
        &[
            "user",
            "create",
            "root",
            "--email",
            "root@example.com",
            "--superuser",
            "--password-stdin",
        ],
        format!("{PASSWORD}\n").as_bytes(),
    );
    assert_code(&out, 0);
    assert_eq!(
        env.ok(&["perm", "check", "root", "drop.view_message"]),
        "root has drop.view_message (superuser)\n"
    );
    env.ok(&["perm", "grant", "cat", "drop.view_message"]);
    assert_eq!(check(&env, "cat", "drop.view_message"), 0);
    env.ok(&["user", "deactivate", "cat"]);
    let out = env.run(&["perm", "check", "cat", "drop.view_message"], b"");
    assert_code(&out, 1);
    assert_eq!(
        stdout(&out),
        "cat does not have drop.view_message (inactive)\n"
    );
    env.ok(&["user", "deactivate", "root"]);
    assert_eq!(check(&env, "root", "drop.view_message"), 1);
}
