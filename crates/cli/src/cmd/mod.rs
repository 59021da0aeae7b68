//! One function per subcommand. Each returns the process exit code.

pub mod catalog;
pub mod check;
pub mod plan;
pub mod render;
pub mod schema;
