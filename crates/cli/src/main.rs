//! The `portolan` binary: arguments -> one function per subcommand -> exit code.
//!
//! Thin on purpose: all logic lives in `portolan-core`. Exit codes: 0 ok, 1 a check failed
//! (warnings with --strict), 2 bad input, 3 the kernel refused valid input. Never a panic
//! message for bad input.

/// `println!` that does not panic when standard output is closed (`| head`): the reader
/// has what it wanted, so the rest is dropped.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod args;
mod cmd;
mod inputs;
mod log;
mod output;
mod progress;
mod report;

use clap::Parser;

/// mimalloc: the importer and the audit allocate many small objects; glibc's allocator
/// spent a quarter of their time in malloc and free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = args::Cli::parse();
    let mut rep = report::Reporter::default();
    rep.color = match cli.color {
        args::ColorArg::Auto => None,
        args::ColorArg::Always => Some(true),
        args::ColorArg::Never => Some(false),
    };
    let code = match &cli.command {
        args::Command::Catalog(c) => cmd::catalog::run(c, &mut rep),
        args::Command::Check(a) => cmd::check::run(a, &mut rep),
        args::Command::Plan(a) => cmd::plan::run(a, &mut rep),
        args::Command::Render(a) => cmd::render::run(a, &mut rep),
        args::Command::Load(a) => cmd::load::run(a, &mut rep),
        args::Command::Apply(a) => cmd::apply::run(a, &mut rep),
        args::Command::ApplyRollback(a) => cmd::apply::rollback_helper(a),
        args::Command::Diff(a) => cmd::diff::run(a, &mut rep),
        args::Command::Completions { shell } => cmd::docs::completions(*shell, &mut rep),
        args::Command::Man { command } => cmd::docs::man(command.as_deref(), &mut rep),
        args::Command::Probe(a) => cmd::probe::run(a, &mut rep),
        args::Command::Listen(a) => cmd::listen::run(a, &mut rep),
        args::Command::Sync(a) => cmd::sync::run(a, &mut rep),
        args::Command::DnsProxy(a) => cmd::dns_proxy::run(a, &mut rep),
        args::Command::Audit(a) => cmd::audit::run(a, &mut rep),
        args::Command::Report(a) => cmd::report::run(a, &mut rep),
        args::Command::Import(a) => cmd::import::run(a, &mut rep),
        args::Command::Schema(a) => cmd::schema::run(a.kind, &mut rep),
    };
    rep.finish();
    std::process::exit(code);
}
