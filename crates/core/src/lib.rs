//! portolan's deterministic core: no sockets, no async, no clock.
//!
//! Pipeline: [`profile`] and [`site`] files (front-ends) are parsed and checked into the
//! [`model`]; [`plan::build`] binds them into the [`plan::Plan`], the one intermediate
//! representation; [`render`] back-ends turn a plan into firewall configuration, [`report`]
//! into an HTML report with a diagram. The built-in
//! [`catalog`] holds the curated profiles of the seed appliances. See ARCHITECTURE.md.

pub mod addr;
pub mod audit;
pub mod catalog;
pub mod diag;
pub mod diff;
pub mod import;
pub mod load;
pub mod model;
pub mod plan;
pub mod profile;
pub mod render;
pub mod report;
pub mod site;

pub use diag::{Diagnostic, Errors, Severity, Source};
pub use plan::Plan;
