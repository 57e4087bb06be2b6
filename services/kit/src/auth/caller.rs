//! The authenticated principal of a call.

use std::{fmt, str::FromStr};

use schakel_proto::v1 as pb;
use tonic::{Request, Status};

use crate::error;

/// A role a person (or partner system) holds. Citizens have none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Registers dossiers (aanmelding).
    Aanmelder,
    /// Operational-team member.
    TeamMember,
    /// Case director.
    Casusregisseur,
    /// Data-protection officer; sees no dossier content.
    PrivacyOfficer,
    /// Justitiehuizen coordinator; sees no dossier content.
    Coordinator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Aanmelder,
        Role::TeamMember,
        Role::Casusregisseur,
        Role::PrivacyOfficer,
        Role::Coordinator,
    ];

    /// The code used in tokens, policies and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Aanmelder => "aanmelder",
            Role::TeamMember => "team_member",
            Role::Casusregisseur => "casusregisseur",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Coordinator => "coordinator",
        }
    }

    /// From the proto enum; `None` for `ROLE_UNSPECIFIED` or unknown values.
    pub fn from_proto(value: i32) -> Option<Role> {
        match pb::Role::try_from(value).ok()? {
            pb::Role::Unspecified => None,
            pb::Role::Aanmelder => Some(Role::Aanmelder),
            pb::Role::TeamMember => Some(Role::TeamMember),
            pb::Role::Casusregisseur => Some(Role::Casusregisseur),
            pb::Role::PrivacyOfficer => Some(Role::PrivacyOfficer),
            pb::Role::Coordinator => Some(Role::Coordinator),
        }
    }

    /// Whether this is an oversight role (privacy officer, coordinator):
    /// roles that review and configure, and see no dossier content.
    pub fn is_oversight(self) -> bool {
        matches!(self, Role::PrivacyOfficer | Role::Coordinator)
    }

    /// Checks the separation of duties of one account's roles: an
    /// oversight role is never combined with a content role (aanmelder,
    /// team member, casusregisseur), so that whoever reviews or configures
    /// the chain cannot also read what it shares. The message names the
    /// conflicting pair.
    pub fn check_separation(roles: &[Role]) -> Result<(), String> {
        let oversight = roles.iter().find(|r| r.is_oversight());
        let content = roles.iter().find(|r| !r.is_oversight());
        match (oversight, content) {
            (Some(o), Some(c)) => Err(format!(
                "the oversight role {o} cannot be combined with the content role {c} in one account"
            )),
            _ => Ok(()),
        }
    }

    /// To the proto enum.
    pub fn to_proto(self) -> pb::Role {
        match self {
            Role::Aanmelder => pb::Role::Aanmelder,
            Role::TeamMember => pb::Role::TeamMember,
            Role::Casusregisseur => pb::Role::Casusregisseur,
            Role::PrivacyOfficer => pb::Role::PrivacyOfficer,
            Role::Coordinator => pb::Role::Coordinator,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}

/// What kind of principal a token speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// A partner organisation's system.
    ServiceAccount,
    /// One of Schakel's own services.
    InternalService,
}

impl PrincipalKind {
    /// The code used in the `knd` claim.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::ServiceAccount => "service_account",
            PrincipalKind::InternalService => "internal_service",
        }
    }

    /// To the proto enum.
    pub fn to_proto(self) -> pb::PrincipalKind {
        match self {
            PrincipalKind::User => pb::PrincipalKind::User,
            PrincipalKind::ServiceAccount => pb::PrincipalKind::ServiceAccount,
            PrincipalKind::InternalService => pb::PrincipalKind::InternalService,
        }
    }
}

impl FromStr for PrincipalKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            PrincipalKind::User,
            PrincipalKind::ServiceAccount,
            PrincipalKind::InternalService,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown principal kind {s:?}"))
    }
}

/// Subjects of internal-service tokens are this prefix and the service name.
pub const INTERNAL_SUBJECT_PREFIX: &str = "svc-";

/// The verified principal of a call, put into the request extensions by the
/// [`AuthLayer`](super::AuthLayer). Carries ids and codes only, never names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// User, service-account or service id (`sub`).
    pub subject: String,
    /// What kind of principal.
    pub kind: PrincipalKind,
    /// Organisation id (`org`).
    pub organisation_id: String,
    /// Partner type code of the organisation (`ptype`).
    pub partner_type: String,
    /// Roles (`roles`).
    pub roles: Vec<Role>,
    /// Judicial district of the organisation (`region`).
    pub region: String,
    /// Token id (`jti`).
    pub token_id: String,
    /// Expiry, seconds since the Unix epoch (`exp`).
    pub expires_at: i64,
}

impl Caller {
    /// The caller of this request. Only absent when a method was wrongly
    /// exempted from authentication, which is then refused.
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| error::unauthenticated("NO_TOKEN", "authentication required"))
    }

    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `PERMISSION_DENIED` (reason `ROLE_REQUIRED`) unless the caller holds `role`.
    pub fn require_role(&self, role: Role) -> Result<(), Status> {
        if self.has_role(role) {
            Ok(())
        } else {
            Err(error::permission_denied(
                "ROLE_REQUIRED",
                format!("this call requires the role {role}"),
            ))
        }
    }

    /// The Schakel service this caller is (`broker` for subject
    /// `svc-broker`), if it holds an internal-service token.
    pub fn service(&self) -> Option<&str> {
        (self.kind == PrincipalKind::InternalService)
            .then(|| self.subject.strip_prefix(INTERNAL_SUBJECT_PREFIX))
            .flatten()
    }

    /// `PERMISSION_DENIED` (reason `PEER_NOT_ALLOWED`) unless the caller is one
    /// of Schakel's `services`: each method names the peers that need it.
    pub fn require_service(&self, services: &[&str]) -> Result<(), Status> {
        match self.service() {
            Some(s) if services.contains(&s) => Ok(()),
            _ => Err(error::permission_denied(
                "PEER_NOT_ALLOWED",
                format!("only Schakel's {} may call this", services.join(", ")),
            )),
        }
    }

    /// The caller as recorded in audit entries.
    pub fn to_actor(&self) -> pb::Actor {
        pb::Actor {
            subject: self.subject.clone(),
            kind: self.kind.to_proto() as i32,
            organisation_id: self.organisation_id.clone(),
            partner_type: self.partner_type.clone(),
            roles: self.roles.iter().map(|r| r.to_proto() as i32).collect(),
        }
    }
}
