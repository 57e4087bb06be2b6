//! A dossier's own RPCs: registration, reads, listing, persons and phases.

pub(crate) mod advance;
pub(crate) mod list;
pub(crate) mod person;
pub(crate) mod read;
pub(crate) mod register;
