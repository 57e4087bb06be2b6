//! The need-to-know circle and its casusregisseur.

pub(crate) mod director;
pub(crate) mod participants;
