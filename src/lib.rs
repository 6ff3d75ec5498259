//! Portico: a SMART-on-FHIR patient access gateway. The library builds the [`App`] from a
//! [`config::Config`]; the `portico` binary is a thin CLI over it.

pub mod aggregate;
pub mod api;
mod app;
pub mod audit;
pub mod auth;
pub mod causes;
pub mod clock;
pub mod config;
pub mod export;
pub mod fhir;
pub mod generate;
pub mod him;
pub mod i18n;
pub mod identity;
pub mod json;
pub mod label;
pub mod mail;
pub mod notices;
pub mod policy;
pub mod portal;
pub mod proxies;
pub mod read;
pub mod rights;
pub mod settings;
pub mod share;
pub mod simulator;
pub mod sources;
pub mod store;

pub use app::{App, AppError};
pub use clock::Clock;
