//! Integration tests of schakel, in one test binary (one link, one process).
#![allow(clippy::unwrap_used)]

mod support;

mod agreement_cli;
mod audit_cli;
mod broker_dev;
mod cross_language;
mod deploy_manifests;
mod dev_quickstart;
mod dossier_cli;
mod login_flood;
mod policy_cli;
mod policy_files;
mod serve_services;
