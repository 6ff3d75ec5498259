//! The integration tests: one test program (issue 11 part 6), so a build links the library
//! into one binary instead of one per file. Each module below was once its own
//! `tests/<name>.rs`; run one with `cargo test --test it <name>::` (a filter on the module
//! path), e.g. `cargo test --test it policy_matrix::`.
//!
//! Tests of different modules now share one process and run concurrently: a test must not
//! change process-wide state (environment variables, the current directory). Pass settings
//! to the gateway or the child process instead (`Command::env`, the config text).
// Tests may unwrap and expect (Cargo.toml's [lints] deny them outside tests), and their
// fixtures' tuple types are spelled out where they are used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]

mod common;

/// The Bulk Data client the export tests share (`tests/it/bulk/client.rs`).
mod bulk {
    pub mod client;
}

mod access_reach;
mod aggregation;
mod audit_log;
mod authored_r4;
mod backend_services;
mod bad_input;
mod bad_text;
mod backend_services_cli;
mod browser_pages;
mod bulk_client;
mod bulk_export;
mod bulk_export_jobs;
mod bulk_from_sources;
mod bulk_source_groups;
mod cli;
mod corrections;
mod dev_tokens;
mod disclosures;
mod documents;
mod download_jobs;
mod downloads;
mod enrollment;
mod export_storage;
mod mail;
mod fhir_api;
mod imaging;
mod floods;
mod front_door;
mod generated_population;
mod scale_population;
mod index_store;
mod keys;
mod metrics;
mod notices;
mod oauth_tokens;
mod oidc_login;
mod partner_export;
mod patient_index;
mod policy_leaks;
mod policy_matrix;
mod portal_pages;
mod postgres;
mod precision;
mod proxy_birthdays;
mod proxy_invitations;
mod resilience;
mod reused_decisions;
mod search_params;
mod share_links;
mod smart_launch;
mod spanish;
mod source_calls;
mod store_races;
mod synthea_privacy;
mod token_checks;
mod upstream_sources;
mod whole_record;
