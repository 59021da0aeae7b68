//! Log lines of the long-running commands (`sync`, `dns-proxy`): a UTC timestamp, the
//! program, a level and a message, as text or as one JSON object per line (`--log-format`),
//! on standard error.

use serde_json::{Map, Value};

use crate::args::LogFormat;

#[derive(Debug, Clone, Copy)]
pub struct Log {
    pub format: LogFormat,
    pub program: &'static str,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Log {
    /// One line: `message` with extra `fields` (shown after it in text, as keys in JSON).
    pub fn line(&self, level: &str, message: &str, fields: &[(&str, Value)]) {
        match self.format {
            LogFormat::Text => {
                let mut s = format!("{} {}: ", now(), self.program);
                if level != "info" {
                    s.push_str(level);
                    s.push_str(": ");
                }
                s.push_str(message);
                for (k, v) in fields {
                    let v = match v {
                        Value::String(t) => t.clone(),
                        other => other.to_string(),
                    };
                    s.push_str(&format!(" {k}={v}"));
                }
                eprintln!("{s}");
            }
            LogFormat::Json => {
                let mut m = Map::new();
                m.insert("time".into(), Value::String(now()));
                m.insert("program".into(), Value::String(self.program.into()));
                m.insert("level".into(), Value::String(level.into()));
                m.insert("message".into(), Value::String(message.into()));
                for (k, v) in fields {
                    m.insert((*k).into(), v.clone());
                }
                eprintln!("{}", Value::Object(m));
            }
        }
    }
    pub fn info(&self, message: &str, fields: &[(&str, Value)]) {
        self.line("info", message, fields);
    }
    pub fn warn(&self, message: &str, fields: &[(&str, Value)]) {
        self.line("warning", message, fields);
    }
    pub fn error(&self, message: &str, fields: &[(&str, Value)]) {
        self.line("error", message, fields);
    }
}
