//! One function per subcommand. Each returns the process exit code.

pub mod apply;
pub mod audit;
pub mod catalog;
pub mod check;
pub mod diff;
pub mod dns_proxy;
pub mod docs;
pub mod import;
pub mod listen;
pub mod load;
pub mod plan;
pub mod probe;
pub mod render;
pub mod report;
pub mod schema;
pub mod sync;
