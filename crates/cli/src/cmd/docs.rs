//! `portolan completions SHELL` and `portolan man [COMMAND]`: generated from the clap
//! definitions in `args.rs` (clap_complete, clap_mangen), never written by hand.

use clap::CommandFactory;
use portolan_core::diag::Diagnostic;

use crate::args::Cli;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

fn emit(bytes: Vec<u8>, rep: &mut Reporter) -> i32 {
    match crate::output::write(None, &String::from_utf8_lossy(&bytes)) {
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}

pub fn completions(shell: clap_complete::Shell, rep: &mut Reporter) -> i32 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "portolan", &mut out);
    emit(out, rep)
}

pub fn man(command: Option<&str>, rep: &mut Reporter) -> i32 {
    let root = Cli::command();
    let man = match command {
        None => clap_mangen::Man::new(root),
        Some(name) => match root.find_subcommand(name) {
            Some(c) => clap_mangen::Man::new(c.clone()).title(format!("portolan-{name}")),
            None => {
                let names: Vec<String> = root
                    .get_subcommands()
                    .map(|c| c.get_name().to_string())
                    .collect();
                rep.emit(
                    &Diagnostic::error(format!("no command `{}`", name.escape_debug()))
                        .with_help(format!("one of: {}", names.join(", "))),
                );
                return EXIT_ERROR;
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = man.render(&mut out) {
        rep.emit(&Diagnostic::error(format!(
            "cannot render the man page: {e}"
        )));
        return EXIT_ERROR;
    }
    emit(out, rep)
}
