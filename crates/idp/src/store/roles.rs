//! Staff roles held by people: `auditor`, `helpdesk`, `admin`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::user_roles;
use super::{DbConnection, StoreError, StoreResult};

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and exports the audit log.
    Auditor,
    /// Repairs accounts.
    Helpdesk,
    /// Clients, keys, imports.
    Admin,
}

impl Role {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auditor => "auditor",
            Self::Helpdesk => "helpdesk",
            Self::Admin => "admin",
        }
    }

    /// The role a stored or typed name names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auditor" => Some(Self::Auditor),
            "helpdesk" => Some(Self::Helpdesk),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// Grants `role` to the person; false when they held it already.
pub fn grant(
    conn: &mut DbConnection,
    user_id: &str,
    role: Role,
    now: NaiveDateTime,
) -> StoreResult<bool> {
    let inserted = diesel::insert_into(user_roles::table)
        .values((
            user_roles::user_id.eq(user_id),
            user_roles::role.eq(role.as_str()),
            user_roles::granted_at.eq(now),
        ))
        .execute(conn)
        .map_err(StoreError::from);
    match inserted {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes `role` from the person; false when they did not hold it.
pub fn revoke(conn: &mut DbConnection, user_id: &str, role: Role) -> StoreResult<bool> {
    Ok(diesel::delete(
        user_roles::table
            .filter(user_roles::user_id.eq(user_id))
            .filter(user_roles::role.eq(role.as_str())),
    )
    .execute(conn)?
        > 0)
}

/// Whether the person holds `role`.
pub fn has(conn: &mut DbConnection, user_id: &str, role: Role) -> StoreResult<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        user_roles::table
            .filter(user_roles::user_id.eq(user_id))
            .filter(user_roles::role.eq(role.as_str())),
    ))
    .get_result(conn)?)
}
