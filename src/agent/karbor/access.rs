//! Who may do what on Karbor's routes (`/v1/{project_id}/...`): the one table of roles,
//! and the project a caller's requests are scoped to.
//!
//! With `auth: keystone` the gate hands each request its [`Caller`] (the token's project
//! and roles). Then:
//!
//! | role | project in the URL | may |
//! |---|---|---|
//! | `admin` | any | everything, on every project's records |
//! | `member` | its token's project only | list, show, create, update, delete its project's records |
//! | `reader` | its token's project only | list and show its project's records |
//!
//! What Karbor reserves for admins ([`ADMIN_ONLY`]: a checkpoint's reset-state) stays
//! admin only. Another project in the URL is a 403, as Karbor answers; a record of another
//! project is a 404 (its id does not leak). Without Keystone (`auth: token`, one static
//! token for a single-tenant set-up) the token's holder is the cluster's admin.

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::types::Fault;
use crate::engine::identity::Caller;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Lists and shows.
    Read,
    /// Creates, updates, deletes, runs.
    Write,
    /// What Karbor reserves for admins.
    Admin,
}

/// The (method, route) pairs only an admin may call.
pub const ADMIN_ONLY: &[(&str, &str)] = &[(
    "PUT",
    "/v1/{project_id}/providers/{provider_id}/checkpoints/{checkpoint_id}",
)];

/// The roles and what each may, in order of power: the one table.
pub const ROLES: &[(&str, Need)] = &[
    ("admin", Need::Admin),
    ("member", Need::Write),
    ("reader", Need::Read),
];

/// Whose records a request sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every project's (the admin, or the static token's holder).
    All,
    /// Only this project's.
    Project(String),
}

impl Scope {
    /// Whether a record of `project_id` is visible in this scope.
    pub fn sees(&self, project_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Project(p) => p == project_id,
        }
    }
}

/// What a request needs: [`ADMIN_ONLY`], else reads for GET and HEAD, else writes.
pub fn need_of(method: &Method, route: &str) -> Need {
    if ADMIN_ONLY
        .iter()
        .any(|(m, r)| *m == method.as_str() && *r == route)
    {
        Need::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Need::Read
    } else {
        Need::Write
    }
}

/// The most a caller's roles allow, if any of them is known.
fn power(caller: &Caller) -> Option<Need> {
    ROLES
        .iter()
        .filter(|(role, _)| caller.roles.iter().any(|r| r.eq_ignore_ascii_case(role)))
        .map(|(_, need)| *need)
        .max()
}

/// Whether `caller` may do what needs `need` in `project`, and in which scope.
pub fn decide(caller: Option<&Caller>, project: &str, need: Need) -> Result<Scope, Fault> {
    let Some(caller) = caller else {
        return Ok(Scope::All);
    };
    let forbidden = |why: String| Fault::new(StatusCode::FORBIDDEN, why).with_code("forbidden");
    let Some(power) = power(caller) else {
        return Err(forbidden(format!(
            "Policy doesn't allow this: the token has none of the roles {} on its project.",
            ROLES.iter().map(|(r, _)| *r).collect::<Vec<_>>().join(", ")
        )));
    };
    if power == Need::Admin {
        return Ok(Scope::All);
    }
    if caller.project_id.as_deref() != Some(project) {
        return Err(forbidden(format!(
            "Policy doesn't allow this: the token is scoped to project {}, not {project}.",
            caller.project_id.as_deref().unwrap_or("(none)")
        )));
    }
    if need > power {
        let what = match need {
            Need::Admin => "only an admin may",
            _ => "a reader may only list and show",
        };
        return Err(forbidden(format!("Policy doesn't allow this: {what}.")));
    }
    Ok(Scope::Project(project.to_string()))
}

/// The middleware: refuses with Karbor's 403 what the caller may not do, and hands the
/// handlers the request's [`Scope`].
pub async fn authorize(mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    // `/v1/{project_id}/...`: the project is the path's second segment.
    let project = req
        .uri()
        .path()
        .split('/')
        .nth(2)
        .unwrap_or_default()
        .to_string();
    let need = need_of(req.method(), &route);
    match decide(req.extensions().get::<Caller>(), &project, need) {
        Ok(scope) => {
            req.extensions_mut().insert(scope);
            next.run(req).await
        }
        Err(fault) => fault.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(project: &str, roles: &[&str]) -> Caller {
        Caller {
            project_id: Some(project.to_string()),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            user_id: "u".into(),
        }
    }

    #[test]
    fn the_roles_table_decides() {
        let reset = need_of(&Method::PUT, ADMIN_ONLY[0].1);
        assert_eq!(reset, Need::Admin);
        assert_eq!(need_of(&Method::GET, "/v1/{project_id}/plans"), Need::Read);
        assert_eq!(
            need_of(&Method::POST, "/v1/{project_id}/plans"),
            Need::Write
        );
        // No Keystone: the static token's holder is the admin.
        assert_eq!(decide(None, "p", Need::Admin).ok(), Some(Scope::All));
        // An admin acts on every project.
        assert_eq!(
            decide(Some(&caller("a", &["admin"])), "b", Need::Admin).ok(),
            Some(Scope::All)
        );
        // A member: its own project, not admin-only calls, not another project.
        let m = caller("a", &["member", "reader"]);
        assert_eq!(
            decide(Some(&m), "a", Need::Write).ok(),
            Some(Scope::Project("a".into()))
        );
        for (project, need) in [("a", Need::Admin), ("b", Need::Read)] {
            let e = decide(Some(&m), project, need).expect_err("refused");
            assert_eq!(e.status, StatusCode::FORBIDDEN);
        }
        // A reader lists and shows only.
        let r = caller("a", &["reader"]);
        assert!(decide(Some(&r), "a", Need::Read).is_ok());
        assert!(decide(Some(&r), "a", Need::Write).is_err());
        // No known role: nothing.
        assert!(decide(Some(&caller("a", &["other"])), "a", Need::Read).is_err());
    }

    #[test]
    fn a_scope_sees_its_own_project_only() {
        assert!(Scope::All.sees(""));
        let s = Scope::Project("a".into());
        assert!(s.sees("a"));
        assert!(!s.sees("b"));
        assert!(!s.sees(""));
    }
}
