//! From arguments to checked objects: `--site` / `--profile` / `--features` to a [`Plan`].

use portolan_core::diag::{Diagnostic, Errors};
use portolan_core::load;
use portolan_core::plan::{self, Plan};
use portolan_core::site::{self, Features};

use crate::args::Selection;

/// `--features all|a,b`.
pub fn parse_features(text: &str) -> Features {
    if text.trim() == "all" {
        return Features::All;
    }
    Features::Some(
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), None))
            .collect(),
    )
}

/// Everything a command needs to work on a plan.
pub struct Loaded {
    pub plan: Plan,
    /// Warnings from reading the site (the plan's own are in `plan.warnings`).
    pub warnings: Vec<Diagnostic>,
    /// The site's `tls_ca`, resolved against the site file's directory.
    pub tls_ca: Option<std::path::PathBuf>,
}

pub fn load(sel: &Selection) -> Result<Loaded, Errors> {
    let features = sel.features.as_deref().map(parse_features);
    let (site, profile, warnings) = match (&sel.input.site, &sel.input.profile) {
        (Some(path), _) => load::site_and_profile(path)?,
        (None, Some(p)) => {
            let profile = load::profile(p, None)?;
            (site::demo(&profile), profile, vec![])
        }
        (None, None) => {
            return Err(Diagnostic::error("give --site FILE or --profile ID|FILE").into());
        }
    };
    let plan = plan::build(&profile, &site, features.as_ref())?;
    let tls_ca = site.tls_ca.as_ref().map(|c| {
        let base = sel.input.site.as_deref().and_then(std::path::Path::parent);
        match base {
            Some(b) if std::path::Path::new(c).is_relative() => b.join(c),
            _ => std::path::PathBuf::from(c),
        }
    });
    Ok(Loaded {
        plan,
        warnings,
        tls_ca,
    })
}

/// [`load`], reporting the errors; `None` means exit 2.
pub fn load_reported(sel: &Selection, rep: &mut crate::report::Reporter) -> Option<Loaded> {
    match load(sel) {
        Ok(l) => Some(l),
        Err(e) => {
            rep.emit_all(&e.0);
            None
        }
    }
}

/// `--resolver` (each ADDR or ADDR:PORT), or every nameserver of /etc/resolv.conf when none
/// is given.
pub fn resolver_addresses(args: &[String]) -> Result<Vec<std::net::SocketAddr>, Diagnostic> {
    if args.is_empty() {
        return Ok(portolan_net::dns::system_servers());
    }
    args.iter()
        .map(|r| {
            portolan_net::dns::parse_server(r).ok_or_else(|| {
                Diagnostic::error(format!("`{}` is not a resolver address", r.escape_debug()))
                    .with_help("write ADDR or ADDR:PORT, e.g. 192.0.2.53 or [2001:db8::53]:5353")
            })
        })
        .collect()
}

/// The async runtime for the network commands.
pub fn runtime() -> Result<tokio::runtime::Runtime, Diagnostic> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Diagnostic::error(format!("cannot start the async runtime: {e}")))
}
