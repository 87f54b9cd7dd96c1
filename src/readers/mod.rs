//! Who may read the archive besides its owner at the shell: web users and API
//! tokens, each with a [`Role`] and, for the `user` role, the accounts granted.
//! A signed-in reader is a [`Principal`]; the web interface passes it to every
//! read, so the access log names the reader and what they may see is decided in
//! one place ([`Principal::may_see`]).
//!
//! The rules are pure (this module); [`store`] keeps users and tokens in the
//! archive's secret store, [`password`] hashes passwords with Argon2id.

pub mod password;
pub mod store;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReaderError {
    #[error("reader name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("{name}: {why}")]
    BadGrant { name: String, why: String },
    #[error("no user {0:?}")]
    NoUser(String),
    #[error("user {0:?} exists already (`mailvault user passwd` changes a password)")]
    UserExists(String),
    #[error("no token {0:?}")]
    NoToken(String),
    #[error("token {0:?} exists already")]
    TokenExists(String),
    #[error("password: {0}")]
    Password(String),
    #[error("{path}: {detail}")]
    Store { path: std::path::PathBuf, detail: String },
}

pub type Result<T, E = ReaderError> = std::result::Result<T, E>;

/// What a reader may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything; manages holds, tags and users.
    Admin,
    /// Reads everything, changes nothing; reads the access log.
    Auditor,
    /// Reads only the accounts granted, and tags messages there.
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::User => "user",
        }
    }
}

/// The longest reader name.
pub const MAX_NAME: usize = 64;

/// A reader's name: 1 to [`MAX_NAME`] letters, digits, `.`, `_`, `-` or `@`,
/// starting with a letter or digit (it names a file lock and appears in logs).
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why| {
        Err(ReaderError::BadName {
            name: name.chars().take(MAX_NAME + 8).collect(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > MAX_NAME {
        return bad("longer than 64 bytes");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return bad("must start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return bad("only letters, digits, '.', '_', '-' and '@'");
    }
    Ok(())
}

/// The accounts a reader of `role` may see: `None` (all) for admins and auditors,
/// the accounts granted for a user — who must be granted at least one, while the
/// others may not be granted any (they see everything; a grant would mislead).
pub fn grant(name: &str, role: Role, accounts: &[String]) -> Result<Option<BTreeSet<String>>> {
    let set: BTreeSet<String> = accounts
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    match (role, set.is_empty()) {
        (Role::User, true) => Err(ReaderError::BadGrant {
            name: name.into(),
            why: "a reader with role user needs --accounts (the accounts they may read)".into(),
        }),
        (Role::User, false) => Ok(Some(set)),
        (_, true) => Ok(None),
        (r, false) => Err(ReaderError::BadGrant {
            name: name.into(),
            why: format!("role {} reads every account; --accounts is for role user", r.as_str()),
        }),
    }
}

/// How a reader proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// A web session after a password.
    Password,
    /// A bearer token of the API.
    Token,
}

/// A signed-in reader: who, how, with what role, seeing which accounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub via: Via,
    pub role: Role,
    /// `None`: every account.
    pub accounts: Option<BTreeSet<String>>,
}

impl Principal {
    /// Whether the reader may see mail of `account`.
    pub fn may_see(&self, account: &str) -> bool {
        self.accounts.as_ref().is_none_or(|a| a.contains(account))
    }

    /// Whether the reader may see a message filed in `accounts` (any of them).
    pub fn may_see_any<'a>(&self, mut accounts: impl Iterator<Item = &'a str>) -> bool {
        accounts.any(|a| self.may_see(a))
    }

    /// Holds, tags and users.
    pub fn may_manage(&self) -> bool {
        self.role == Role::Admin
    }

    /// The access log.
    /// Adds and removes tags (admins everywhere, users within their grant).
    pub fn may_tag(&self) -> bool {
        matches!(self.role, Role::Admin | Role::User)
    }

    pub fn may_audit(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Auditor)
    }

    /// The name the access log records: `web:NAME` or `token:NAME`.
    pub fn logged_as(&self) -> String {
        match self.via {
            Via::Password => format!("web:{}", self.name),
            Via::Token => format!("token:{}", self.name),
        }
    }
}

/// Whether two secrets (token hashes, CSRF tokens) are equal, in time that does not
/// tell where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `query` narrowed to what `p` may see: unchanged for readers of every account,
/// else `(query') AND (account:A OR account:B …)`, where `query'` has every
/// `account:` term naming an account outside the grant replaced by one matching
/// nothing — so a message filed both in a granted account and another is not
/// found by naming the other (which would tell where else it is filed).
pub fn restrict(p: &Principal, query: crate::query::Expr) -> crate::query::Expr {
    use crate::query::{ExactField, Expr};
    fn hide(p: &Principal, e: Expr) -> Expr {
        match e {
            Expr::Exact {
                field: ExactField::Account,
                value,
            } if !p.may_see(&value) => Expr::Or(Vec::new()),
            Expr::And(v) => Expr::And(v.into_iter().map(|e| hide(p, e)).collect()),
            Expr::Or(v) => Expr::Or(v.into_iter().map(|e| hide(p, e)).collect()),
            Expr::Not(e) => Expr::Not(Box::new(hide(p, *e))),
            other => other,
        }
    }
    match &p.accounts {
        None => query,
        Some(accounts) => Expr::And(vec![
            hide(p, query),
            Expr::Or(
                accounts
                    .iter()
                    .map(|a| Expr::Exact {
                        field: ExactField::Account,
                        value: a.clone(),
                    })
                    .collect(),
            ),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_short_plain_and_start_with_a_letter_or_digit() {
        for ok in ["ann", "ann.lee@example.com", "x", "a-b_c", &"a".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".hidden", "-x", "a b", "a/b", "ä", "a\0", &"a".repeat(65), "../x"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_users_are_granted_accounts_and_they_must_be() {
        assert_eq!(
            grant("ann", Role::User, &accounts(&["a", " b ", "a", ""])).unwrap(),
            Some(["a".to_string(), "b".to_string()].into())
        );
        assert!(grant("ann", Role::User, &[]).is_err());
        assert!(grant("ann", Role::User, &accounts(&[" "])).is_err());
        assert_eq!(grant("root", Role::Admin, &[]).unwrap(), None);
        assert_eq!(grant("aud", Role::Auditor, &[]).unwrap(), None);
        assert!(grant("root", Role::Admin, &accounts(&["a"])).is_err());
        assert!(grant("aud", Role::Auditor, &accounts(&["a"])).is_err());
    }

    #[test]
    fn a_query_is_narrowed_to_the_accounts_granted() {
        use crate::query::{parse, ExactField, Expr};
        let q = parse("from:ann").unwrap();
        let p = |accounts: Option<&[&str]>| Principal {
            name: "n".into(),
            via: Via::Token,
            role: if accounts.is_some() { Role::User } else { Role::Auditor },
            accounts: accounts.map(|a| a.iter().map(|s| s.to_string()).collect()),
        };
        assert_eq!(restrict(&p(None), q.clone()), q);
        let account = |a: &str| Expr::Exact {
            field: ExactField::Account,
            value: a.into(),
        };
        assert_eq!(
            restrict(&p(Some(&["b", "a"])), q.clone()),
            Expr::And(vec![q.clone(), Expr::Or(vec![account("a"), account("b")])])
        );
        // Naming an account outside the grant matches nothing, however nested.
        let other = parse("account:b OR (from:x AND NOT account:a)").unwrap();
        assert_eq!(
            restrict(&p(Some(&["a"])), other.clone()),
            Expr::And(vec![
                match other {
                    Expr::Or(v) => Expr::Or(vec![Expr::Or(vec![]), v[1].clone()]),
                    e => panic!("{e:?}"),
                },
                Expr::Or(vec![account("a")])
            ])
        );
    }

    #[test]
    fn a_user_sees_only_the_accounts_granted_and_manages_nothing() {
        let p = |role, accounts: Option<&[&str]>| Principal {
            name: "n".into(),
            via: Via::Password,
            role,
            accounts: accounts.map(|a| a.iter().map(|s| s.to_string()).collect()),
        };
        let user = p(Role::User, Some(&["a"]));
        assert!(user.may_see("a") && !user.may_see("b") && !user.may_see(""));
        assert!(user.may_see_any(["b", "a"].into_iter()));
        assert!(!user.may_see_any(["b", "c"].into_iter()));
        assert!(!user.may_see_any(std::iter::empty()));
        assert!(!user.may_manage() && !user.may_audit());
        let auditor = p(Role::Auditor, None);
        assert!(auditor.may_see("b") && auditor.may_audit() && !auditor.may_manage());
        let admin = p(Role::Admin, None);
        assert!(admin.may_see("zz") && admin.may_audit() && admin.may_manage());
        assert_eq!(admin.logged_as(), "web:n");
        assert_eq!(
            Principal {
                via: Via::Token,
                ..admin
            }
            .logged_as(),
            "token:n"
        );
    }
}
