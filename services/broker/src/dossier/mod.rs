//! A dossier's own RPCs: registration, reads, listing, persons, phases,
//! track reviews, the weekly table and the figures.

pub(crate) mod advance;
pub(crate) mod figures;
pub(crate) mod list;
pub(crate) mod person;
pub(crate) mod read;
pub(crate) mod register;
pub(crate) mod review;
pub(crate) mod table;
