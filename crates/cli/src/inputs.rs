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
    /// The profile the plan was built from (caveats, descriptions).
    pub profile: portolan_core::model::Profile,
    /// The site file's name; `None`: the profile's built-in demo site.
    pub site_name: Option<String>,
    /// Warnings from reading the site (the plan's own are in `plan.warnings`).
    pub warnings: Vec<Diagnostic>,
    /// The site's `tls_ca`, resolved against the site file's directory.
    pub tls_ca: Option<std::path::PathBuf>,
}

/// The site file used when neither `--site` nor `--profile` is given.
pub const DEFAULT_SITE: &str = "/etc/portolan/site.toml";

/// The site file to read when neither `--site` nor `--profile` is given, and where its name
/// came from: `$PORTOLAN_SITE`, else [`DEFAULT_SITE`] if it exists.
fn default_site() -> Result<(std::path::PathBuf, &'static str), Errors> {
    if let Some(p) = std::env::var_os("PORTOLAN_SITE").filter(|p| !p.is_empty()) {
        return Ok((p.into(), "$PORTOLAN_SITE"));
    }
    let p = std::path::PathBuf::from(DEFAULT_SITE);
    if p.exists() {
        return Ok((p, "the default location"));
    }
    Err(Diagnostic::error(format!(
        "no site given: no --site, no --profile, no $PORTOLAN_SITE, and no {DEFAULT_SITE}"
    ))
    .with_help("give --site FILE, or --profile ID to try a catalog profile on its demo site")
    .into())
}

pub fn load(sel: &Selection) -> Result<Loaded, Errors> {
    let features = sel.features.as_deref().map(parse_features);
    let mut notes = Vec::new();
    let site_path = match (&sel.input.site, &sel.input.profile) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) => None,
        (None, None) => {
            let (path, from) = default_site()?;
            notes.push(Diagnostic::note(format!(
                "using the site file {} ({from})",
                path.display()
            )));
            Some(path)
        }
    };
    let (site, profile, mut warnings) = match &site_path {
        Some(path) => load::site_and_profile(path)?,
        None => {
            // No site path means --profile was given.
            let profile = load::profile(sel.input.profile.as_deref().unwrap_or_default(), None)?;
            (site::demo(&profile), profile, vec![])
        }
    };
    notes.append(&mut warnings);
    let warnings = notes;
    let plan = plan::build(&profile, &site, features.as_ref())?;
    let tls_ca = site.tls_ca.as_ref().map(|c| {
        let base = site_path.as_deref().and_then(std::path::Path::parent);
        match base {
            Some(b) if std::path::Path::new(c).is_relative() => b.join(c),
            _ => std::path::PathBuf::from(c),
        }
    });
    let site_name = site_path.as_ref().map(|p| p.display().to_string());
    Ok(Loaded {
        plan,
        profile,
        site_name,
        warnings,
        tls_ca,
    })
}

/// [`load`], reporting the errors, or the warnings and notes of reading the site (which
/// site file was used, when it was the default); `None` means exit 2.
pub fn load_reported(sel: &Selection, rep: &mut crate::report::Reporter) -> Option<Loaded> {
    match load(sel) {
        Ok(l) => {
            rep.emit_all(&l.warnings);
            Some(l)
        }
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

/// `--target NAME`: a built-in target, or an error naming them all.
pub fn target(
    name: &str,
    rep: &mut crate::report::Reporter,
) -> Option<&'static dyn portolan_core::render::Target> {
    let t = portolan_core::render::target(name);
    if t.is_none() {
        let names: Vec<&str> = portolan_core::render::TARGETS
            .iter()
            .map(|t| t.name())
            .collect();
        rep.emit(
            &Diagnostic::error(format!("unknown target `{}`", name.escape_debug()))
                .with_help(format!("use one of: {}", names.join(", "))),
        );
    }
    t
}
