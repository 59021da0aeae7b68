//! `portolan audit`: evaluate an existing ruleset against the plan.

use portolan_core::audit::ruleset::Ruleset;
use portolan_core::audit::{self, Report, RulesetFormat, Verdict};
use portolan_core::diag::{Diagnostic, Errors, Source};
use portolan_core::load;

use crate::args::{AuditArgs, Format, RulesetFormatArg};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_WARNINGS};

pub fn run(args: &AuditArgs, rep: &mut Reporter) -> i32 {
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    let rs = if args.live {
        let spinner = crate::progress::spinner("reading the running ruleset");
        let rs = live();
        spinner.finish_and_clear();
        match rs {
            Ok(rs) => rs,
            Err(e) => {
                rep.emit_all(&e.0);
                return EXIT_ERROR;
            }
        }
    } else {
        match from_files(args) {
            Ok(rs) => rs,
            Err(e) => {
                rep.emit_all(&e.0);
                return EXIT_ERROR;
            }
        }
    };
    let spinner = crate::progress::spinner(&format!(
        "evaluating {} rules",
        rs.chains.iter().map(|c| c.rules.len()).sum::<usize>()
    ));
    let report = audit::audit(&loaded.plan, &rs);
    spinner.finish_and_clear();
    let text = match args.format {
        Format::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        ),
        Format::Table => table(&report),
    };
    if let Err(d) = crate::output::write(None, &text) {
        rep.emit(&d);
        return EXIT_ERROR;
    }
    if report.all_allowed() {
        EXIT_OK
    } else {
        EXIT_WARNINGS
    }
}

/// `--ruleset FILE [--ipset FILE]`.
fn from_files(args: &AuditArgs) -> Result<Ruleset, Errors> {
    let Some(path) = &args.ruleset else {
        return Err(Diagnostic::error("no ruleset given")
            .with_help("give --ruleset FILE or --live")
            .into());
    };
    let src = load::read_ruleset(path)?;
    let ipsets = args.ipset.as_deref().map(load::read_ruleset).transpose()?;
    let format = args.ruleset_format.map(|f| match f {
        RulesetFormatArg::NftJson => RulesetFormat::NftJson,
        RulesetFormatArg::IptablesSave => RulesetFormat::IptablesSave,
    });
    let spinner = crate::progress::spinner("reading the ruleset");
    let rs = audit::parse_ruleset(&src, format, ipsets.as_ref());
    spinner.finish_and_clear();
    rs
}

/// Run a dump command; `Ok(None)` when it is not installed.
fn dump(cmd: &str, args: &[&str]) -> Result<Option<String>, Errors> {
    match std::process::Command::new(cmd).args(args).output() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Diagnostic::error(format!("cannot run {cmd}: {e}")).into()),
        Ok(o) if o.status.success() => Ok(Some(String::from_utf8_lossy(&o.stdout).into_owned())),
        Ok(o) => Err(Diagnostic::error(format!(
            "`{cmd} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
        .with_help("run portolan audit --live as root, or give a dump with --ruleset FILE")
        .into()),
    }
}

/// The running ruleset (see `--live`).
fn live() -> Result<Ruleset, Errors> {
    let ipt = || -> Result<Option<Ruleset>, Errors> {
        let Some(v4) = dump("iptables-save", &[])? else {
            return Ok(None);
        };
        let v6 = dump("ip6tables-save", &[])?.unwrap_or_default();
        let sets = dump("ipset", &["save"]).ok().flatten();
        let src = Source::new("iptables-save + ip6tables-save", format!("{v4}{v6}"));
        let sets = sets
            .map(|t| audit::iptables::parse_ipsets(&Source::new("ipset save", t)))
            .transpose()?;
        Ok(Some(audit::iptables::parse(&src, sets.as_ref())?))
    };
    match dump("nft", &["-j", "list", "ruleset"])? {
        Some(json) => {
            let nft = audit::nft::parse(&Source::new("nft -j list ruleset", json))?;
            if !audit::has_xt(&nft) {
                return Ok(nft);
            }
            match ipt()? {
                Some(i) => Ok(audit::merge_iptables_nft(nft, i)),
                // The note in the ruleset says what to run.
                None => Ok(nft),
            }
        }
        None => ipt()?.ok_or_else(|| {
            Diagnostic::error("neither nft nor iptables-save is installed")
                .with_help("install nftables or iptables, or give a dump with --ruleset FILE")
                .into()
        }),
    }
}

fn table(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "VERDICT".into(),
        "ID".into(),
        "PROTO".into(),
        "PORTS".into(),
        "FROM".into(),
        "TO".into(),
    ]];
    for f in &r.flows {
        rows.push([
            f.verdict_text(),
            f.id.clone(),
            f.protocol.to_string(),
            f.ports.clone(),
            f.from.clone(),
            f.to.clone(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = format!(
        "Audit of the {} ruleset, placement {}.\n\n",
        r.format, r.placement
    );
    for row in &rows {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let problems: Vec<_> = r
        .flows
        .iter()
        .filter(|f| f.verdict != Verdict::Allowed)
        .collect();
    if !problems.is_empty() {
        out.push_str("\nNot allowed:\n");
        for f in problems {
            out.push_str(&format!(
                "  {} ({} {}) is {}\n",
                f.id,
                f.protocol,
                f.ports,
                f.verdict.name()
            ));
            if let Some((p, rule)) = &f.example {
                out.push_str(&format!("    dropped: {p}\n      by {}", rule.loc));
                if !rule.text.is_empty() {
                    out.push_str(&format!(": {}", rule.text));
                }
                out.push('\n');
            }
            if !f.condition.is_empty() {
                let how = if f.verdict == Verdict::AllowedIf {
                    "only if"
                } else {
                    "unless"
                };
                for (i, (rule, what)) in f.condition.iter().enumerate() {
                    out.push_str(&format!(
                        "    {} the rule at {}{} matches ({})\n",
                        if i == 0 {
                            format!("allowed {how}")
                        } else {
                            "    or".to_string()
                        },
                        rule.loc,
                        if rule.text.is_empty() {
                            String::new()
                        } else {
                            format!(" (`{}`)", rule.text)
                        },
                        what.join(", ")
                    ));
                }
            }
            for rule in &f.translated_by {
                out.push_str(&format!("    translated by {}: {}\n", rule.loc, rule.text));
            }
            for (rule, what) in f.unknown.iter().filter(|_| f.condition.is_empty()) {
                out.push_str(&format!(
                    "    unknown: {} at {} decides part of it\n",
                    what.join(", "),
                    rule.loc
                ));
            }
            for n in &f.notes {
                out.push_str(&format!("    note: {n}\n"));
            }
        }
    }
    out.push('\n');
    if r.excess.is_empty() {
        out.push_str(
            "Excess: nothing beyond the planned flows is accepted to or from the appliance.\n",
        );
    } else {
        let total: usize = r.excess.len() + r.excess_more;
        out.push_str(&format!(
            "Excess: {total} kind(s) of packet accepted to or from the appliance that no planned flow needs, by the rule that accepts them (largest first):\n"
        ));
        for g in &r.excess_by_rule {
            out.push_str(&format!(
                "  {}{}: {} line(s)\n",
                g.rule.loc,
                if g.rule.text.is_empty() {
                    String::new()
                } else {
                    format!(" `{}`", g.rule.text)
                },
                g.lines
            ));
            for e in &g.top {
                out.push_str(&excess_line(e, false));
            }
            if g.lines > g.top.len() {
                out.push_str(&format!(
                    "      ... and {} more (see --format json)\n",
                    g.lines - g.top.len()
                ));
            }
        }
    }
    if !r.maybe_excess.is_empty() {
        out.push_str(
            "\nMaybe accepted beyond the plan (rules with matches the audit does not model):\n",
        );
        for e in &r.maybe_excess {
            out.push_str(&excess_line(e, true));
        }
    }
    out.push_str("\nNotes:\n");
    for n in &r.notes {
        out.push_str(&format!("  - {n}\n"));
    }
    out
}

fn excess_line(e: &audit::Excess, with_rules: bool) -> String {
    let mut what = vec![e.protocol.clone()];
    if !e.ports.is_empty() {
        what.push(e.ports.clone());
    }
    let mut s = format!(
        "  {} {} -> {}: {}",
        e.family.label(),
        e.source,
        e.destination,
        what.join(" ")
    );
    if !e.interfaces.is_empty() {
        s.push_str(&format!(" ({})", e.interfaces));
    }
    if with_rules {
        let rules: Vec<&str> = e.rules.iter().map(|r| r.loc.as_str()).collect();
        s.push_str(&format!("\n      by {}\n", rules.join("; ")));
    } else {
        s = format!("  {s}\n");
    }
    s
}
