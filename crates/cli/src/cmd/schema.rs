//! `portolan schema profile|site`: the JSON Schema generated from the file types.

use crate::args::SchemaKind;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK};

pub fn run(kind: SchemaKind, rep: &mut Reporter) -> i32 {
    let v = match kind {
        SchemaKind::Profile => portolan_core::profile::schema(),
        SchemaKind::Site => portolan_core::site::schema(),
    };
    let text = format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default());
    match crate::output::write(None, &text) {
        Ok(()) => EXIT_OK,
        Err(d) => {
            rep.emit(&d);
            EXIT_ERROR
        }
    }
}
