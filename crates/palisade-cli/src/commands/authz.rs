//! `palisade group …` and `palisade perm …`: groups, their members, and permissions granted
//! to groups and users, as cli.md lists them. Every change is written to the audit log (by
//! `cli`) in the same command; a change that changes nothing (granting what is held already)
//! says so and writes nothing. `perm check` applies the server's own rule
//! ([`palisade_core::allowed`]): exit 0 when the user has the permission, 1 when not.
//!
//! Names are parsed before the database is asked anything, so a malformed permission or
//! group name is a usage error (exit 2) naming what was wrong; an unknown user, group or
//! permission is exit 2 too, with its name.

use palisade_core::{
    AuthzStore, Group, GroupName, Permission, StoreError, User, UserStore, allowed,
};
use serde_json::{Value, json};

use crate::cli::{GlobalOpts, GroupCommand, PermCommand};
use crate::error::{CliError, CliResult};
use crate::io::print_stdout;

use super::admin::Admin;
use super::user::{print_json, table};

pub fn run_group(global: GlobalOpts, command: GroupCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = group(&admin, command);
    admin.close();
    result.map(|()| 0)
}

pub fn run_perm(global: GlobalOpts, command: PermCommand) -> CliResult<u8> {
    let admin = Admin::open(global)?;
    let result = perm(&admin, command);
    admin.close();
    result
}

fn parse_perm(text: &str) -> CliResult<Permission> {
    Permission::parse(text.trim()).map_err(|e| CliError::usage(format!("{text:?}: {e}")))
}

fn parse_group(text: &str) -> CliResult<GroupName> {
    GroupName::parse(text).map_err(|e| CliError::usage(format!("{text:?}: {e}")))
}

fn find_group(admin: &Admin, name: &str) -> CliResult<Group> {
    let parsed = parse_group(name)?;
    admin
        .block_on(admin.store.get_group(&parsed))
        .map_err(|e| admin.store_err(&e))?
        .ok_or_else(|| CliError::usage(format!("no group named {name}")))
}

/// A grant or membership change: NotFound from the store means the permission is not
/// registered (the user and group were found just before).
fn changed(
    admin: &Admin,
    result: Result<bool, StoreError>,
    permission: Option<&Permission>,
) -> CliResult<bool> {
    match result {
        Ok(changed) => Ok(changed),
        Err(StoreError::NotFound) => Err(CliError::usage(match permission {
            Some(p) => format!("no permission {p} (see `palisade perm list`, or `perm create`)"),
            None => "the user or group no longer exists".to_owned(),
        })),
        Err(e) => Err(admin.store_err(&e)),
    }
}

/// Audits a change and reports it, or says nothing changed.
fn report(
    admin: &Admin,
    changed: bool,
    action: &str,
    target: &str,
    detail: Value,
    done: String,
    unchanged: String,
) -> CliResult<()> {
    if changed {
        admin.audit(action, Some(target), detail)?;
        print_stdout(format!("{done}\n").as_bytes())
    } else {
        print_stdout(format!("{unchanged}\n").as_bytes())
    }
}

fn group(admin: &Admin, command: GroupCommand) -> CliResult<()> {
    match command {
        GroupCommand::Create { name } => {
            let name = parse_group(&name)?;
            let group = match admin.block_on(admin.store.create_group(&name)) {
                Ok(group) => group,
                Err(StoreError::Conflict) => {
                    return Err(CliError::usage(format!(
                        "a group named {name} exists already"
                    )));
                }
                Err(e) => return Err(admin.store_err(&e)),
            };
            admin.audit(
                "group.create",
                Some(group.name.as_str()),
                json!({"id": group.id}),
            )?;
            print_stdout(format!("created group {}\n", group.name).as_bytes())
        }
        GroupCommand::AddUser { group, user } => membership(admin, &group, &user, true),
        GroupCommand::RemoveUser { group, user } => membership(admin, &group, &user, false),
        GroupCommand::Grant { group, permission } => group_grant(admin, &group, &permission, true),
        GroupCommand::Revoke { group, permission } => {
            group_grant(admin, &group, &permission, false)
        }
        GroupCommand::List { json } => list_groups(admin, json),
    }
}

fn membership(admin: &Admin, group: &str, user: &str, add: bool) -> CliResult<()> {
    let group = find_group(admin, group)?;
    let user = admin.find_user(user)?;
    let result = if add {
        admin.block_on(admin.store.add_user_to_group(user.id, group.id))
    } else {
        admin.block_on(admin.store.remove_user_from_group(user.id, group.id))
    };
    let changed = changed(admin, result, None)?;
    let (name, g) = (user.username.as_str(), group.name.as_str());
    let detail = json!({"group": g, "user": name});
    if add {
        report(
            admin,
            changed,
            "group.add_user",
            g,
            detail,
            format!("added {name} to {g}"),
            format!("{name} is in {g} already"),
        )
    } else {
        report(
            admin,
            changed,
            "group.remove_user",
            g,
            detail,
            format!("removed {name} from {g}"),
            format!("{name} is not in {g}"),
        )
    }
}

fn group_grant(admin: &Admin, group: &str, permission: &str, grant: bool) -> CliResult<()> {
    let permission = parse_perm(permission)?;
    let group = find_group(admin, group)?;
    let result = if grant {
        admin.block_on(admin.store.grant_to_group(group.id, &permission))
    } else {
        admin.block_on(admin.store.revoke_from_group(group.id, &permission))
    };
    let changed = changed(admin, result, Some(&permission))?;
    let g = group.name.as_str();
    let detail = json!({"group": g, "permission": permission.as_str()});
    if grant {
        report(
            admin,
            changed,
            "group.grant",
            g,
            detail,
            format!("granted {permission} to group {g}"),
            format!("group {g} has {permission} already"),
        )
    } else {
        report(
            admin,
            changed,
            "group.revoke",
            g,
            detail,
            format!("revoked {permission} from group {g}"),
            format!("group {g} does not have {permission}"),
        )
    }
}

fn list_groups(admin: &Admin, as_json: bool) -> CliResult<()> {
    let groups = admin
        .block_on(admin.store.list_groups())
        .map_err(|e| admin.store_err(&e))?;
    let mut rows = Vec::with_capacity(groups.len());
    for group in &groups {
        let members = admin
            .block_on(admin.store.members_of_group(group.id))
            .map_err(|e| admin.store_err(&e))?;
        let mut names = Vec::with_capacity(members.len());
        for id in members {
            if let Some(user) = admin
                .block_on(admin.store.get_by_id(id))
                .map_err(|e| admin.store_err(&e))?
            {
                names.push(user.username.as_str().to_owned());
            }
        }
        let perms: Vec<String> = admin
            .block_on(admin.store.permissions_of_group(group.id))
            .map_err(|e| admin.store_err(&e))?
            .into_iter()
            .map(String::from)
            .collect();
        rows.push((group, names, perms));
    }
    if as_json {
        let values: Vec<Value> = rows
            .iter()
            .map(|(g, members, perms)| {
                json!({"name": g.name.as_str(), "members": members, "permissions": perms})
            })
            .collect();
        return print_json(&Value::Array(values));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(g, members, perms)| {
            vec![
                g.name.as_str().to_owned(),
                members.join(","),
                perms.join(","),
            ]
        })
        .collect();
    print_stdout(table(&["GROUP", "MEMBERS", "PERMISSIONS"], &cells).as_bytes())
}

/// Returns the exit code: `perm check` answers 0 or 1, everything else 0.
fn perm(admin: &Admin, command: PermCommand) -> CliResult<u8> {
    match command {
        PermCommand::List { json } => list_perms(admin, json).map(|()| 0),
        PermCommand::Create {
            permission,
            description,
        } => {
            let permission = parse_perm(&permission)?;
            let description = description.trim();
            if description.is_empty() || description.chars().count() > 255 {
                return Err(CliError::usage(
                    "the description must be 1 to 255 characters",
                ));
            }
            match admin.block_on(admin.store.create_permission(&permission, description)) {
                Ok(()) => {}
                Err(StoreError::Conflict) => {
                    return Err(CliError::usage(format!(
                        "the permission {permission} exists already"
                    )));
                }
                Err(e) => return Err(admin.store_err(&e)),
            }
            admin.audit(
                "perm.create",
                Some(permission.as_str()),
                json!({"description": description}),
            )?;
            print_stdout(format!("created permission {permission}\n").as_bytes()).map(|()| 0)
        }
        PermCommand::Grant { user, permission } => {
            user_grant(admin, &user, &permission, true).map(|()| 0)
        }
        PermCommand::Revoke { user, permission } => {
            user_grant(admin, &user, &permission, false).map(|()| 0)
        }
        PermCommand::Check { user, permission } => check(admin, &user, &permission),
    }
}

fn user_grant(admin: &Admin, user: &str, permission: &str, grant: bool) -> CliResult<()> {
    let permission = parse_perm(permission)?;
    let user = admin.find_user(user)?;
    let result = if grant {
        admin.block_on(admin.store.grant_to_user(user.id, &permission))
    } else {
        admin.block_on(admin.store.revoke_from_user(user.id, &permission))
    };
    let changed = changed(admin, result, Some(&permission))?;
    let name = user.username.as_str();
    let detail = json!({"user": name, "permission": permission.as_str()});
    if grant {
        report(
            admin,
            changed,
            "perm.grant",
            name,
            detail,
            format!("granted {permission} to {name}"),
            format!("{name} has {permission} directly already"),
        )
    } else {
        report(
            admin,
            changed,
            "perm.revoke",
            name,
            detail,
            format!("revoked {permission} from {name}"),
            format!("{name} does not have {permission} directly"),
        )
    }
}

fn check(admin: &Admin, user: &str, permission: &str) -> CliResult<u8> {
    let permission = parse_perm(permission)?;
    let user: User = admin.find_user(user)?;
    let held = admin
        .block_on(admin.store.held_permissions(user.id))
        .map_err(|e| admin.store_err(&e))?;
    let name = user.username.as_str();
    if allowed(&user, &held, &permission) {
        let how = if held.contains(&permission) {
            "granted"
        } else {
            "superuser"
        };
        print_stdout(format!("{name} has {permission} ({how})\n").as_bytes())?;
        Ok(0)
    } else {
        let why = if user.is_active { "" } else { " (inactive)" };
        print_stdout(format!("{name} does not have {permission}{why}\n").as_bytes())?;
        Ok(1)
    }
}

fn list_perms(admin: &Admin, as_json: bool) -> CliResult<()> {
    let perms = admin
        .block_on(admin.store.list_permissions())
        .map_err(|e| admin.store_err(&e))?;
    if as_json {
        let values: Vec<Value> = perms
            .iter()
            .map(|p| json!({"name": p.permission.as_str(), "description": p.description}))
            .collect();
        return print_json(&Value::Array(values));
    }
    if perms.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = perms
        .into_iter()
        .map(|p| vec![String::from(p.permission), p.description])
        .collect();
    print_stdout(table(&["PERMISSION", "DESCRIPTION"], &rows).as_bytes())
}
