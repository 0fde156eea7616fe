//! The admin console's rules outside HTTP: passwords, sessions, logins and
//! who may do what. `routes::console` translates HTTP to them and back.

pub mod login;
pub mod password;
pub mod session;

use crate::store::console::Role;

/// What a signed-in user may do, decided by role on the server only.
#[derive(Debug, Clone, Copy)]
pub struct Permissions {
    pub role: Role,
}

impl Permissions {
    /// Change status and notes, retry deliveries, export.
    pub fn triage(self) -> bool {
        self.role >= Role::Triager
    }

    /// Erase, run erasure requests, manage users and tokens, read the audit log.
    pub fn administer(self) -> bool {
        self.role >= Role::Admin
    }
}
