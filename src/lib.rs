//! Portico: a SMART-on-FHIR patient access gateway. The library builds the [`App`] from a
//! [`config::Config`]; the `portico` binary is a thin CLI over it.

pub mod config;
pub mod fhir;
pub mod sources;
pub mod store;
pub mod identity;
pub mod simulator;
pub mod aggregate;
pub mod auth;
pub mod read;
pub mod api;
mod app;

pub use app::{App, AppError};
