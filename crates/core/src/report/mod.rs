//! `portolan report`: the plan explained in one self-contained HTML file (inline CSS and
//! SVG, no script, nothing fetched when opened), printable on A4, in English or German: the
//! site, a diagram of the appliance with its zones and flows ([`diagram`]) and the same as
//! a table, every planned flow with the source document row it comes from, the profile's
//! caveats, probe and audit results when given, and the rendered target's rule count.
//!
//! Every text from the profile, the site or a result file goes through [`esc`]: a profile
//! cannot add markup or script to the report.

pub mod diagram;
pub mod i18n;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::diag::{Diagnostic, Errors, Source};
use crate::model::Profile;
use crate::plan::{Direction, Plan, PlannedFlow, SetKind};
use crate::site::Placement;
use i18n::{Lang, Texts};

/// What a probe or an audit found for a flow (or a diagram edge: the worst of its flows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Unchecked,
    Ok,
    Unknown,
    Fail,
}

impl Status {
    pub fn worst(self, other: Status) -> Status {
        self.max(other)
    }
    /// An audit verdict (`portolan audit --format json`) as a status.
    pub fn of_audit(verdict: &str) -> Status {
        match verdict {
            "allowed" => Status::Ok,
            "blocked" | "partial" => Status::Fail,
            _ => Status::Unknown,
        }
    }
    pub(crate) fn class(self) -> &'static str {
        match self {
            Status::Unchecked => "unchecked",
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Fail => "fail",
        }
    }
    /// The symbol that says it without colour (empty when unchecked).
    pub(crate) fn mark(self) -> &'static str {
        match self {
            Status::Unchecked => "",
            Status::Ok => "✔",
            Status::Unknown => "?",
            Status::Fail => "✘",
        }
    }
}

/// Escape text for HTML and SVG (element content and quoted attributes). Control
/// characters other than tab and newline are dropped.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// One probe result, as `portolan probe --format json` writes it.
#[derive(Debug, Clone)]
pub struct ProbeRow {
    pub flow: String,
    pub protocol: String,
    pub host: String,
    pub address: String,
    pub port: String,
    pub verdict: String,
    pub detail: String,
    pub ok: bool,
}

/// One audited flow, as `portolan audit --format json` writes it.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub protocol: String,
    pub ports: String,
    pub verdict: String,
}

/// An audit result file: its flows and how many kinds of excess it found.
#[derive(Debug, Clone, Default)]
pub struct AuditResult {
    pub format: String,
    pub rows: Vec<AuditRow>,
    pub excess: usize,
}

fn json_of(src: &Source, what: &str, command: &str) -> Result<Value, Errors> {
    serde_json::from_str(&src.text).map_err(|e| {
        Diagnostic::error(format!("not {what} JSON: {e}"))
            .in_file(src)
            .with_help(format!("give the output of `{command}`"))
            .into()
    })
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Read `portolan probe --format json` output.
pub fn parse_probe(src: &Source) -> Result<Vec<ProbeRow>, Errors> {
    let v = json_of(src, "probe", "portolan probe --format json")?;
    let Some(rs) = v.get("results").and_then(Value::as_array) else {
        return Err(
            Diagnostic::error("no \"results\" array: not a probe result")
                .in_file(src)
                .with_help("give the output of `portolan probe --format json`")
                .into(),
        );
    };
    Ok(rs
        .iter()
        .map(|r| ProbeRow {
            flow: s(&r["flow"]),
            protocol: s(&r["protocol"]),
            host: s(&r["host"]),
            address: s(&r["address"]),
            port: s(&r["port"]),
            verdict: s(&r["verdict"]),
            detail: s(&r["detail"]),
            ok: r["ok"].as_bool().unwrap_or(false),
        })
        .collect())
}

/// Read `portolan audit --format json` output.
pub fn parse_audit(src: &Source) -> Result<AuditResult, Errors> {
    let v = json_of(src, "audit", "portolan audit --format json")?;
    let Some(fs) = v.get("flows").and_then(Value::as_array) else {
        return Err(Diagnostic::error("no \"flows\" array: not an audit result")
            .in_file(src)
            .with_help("give the output of `portolan audit --format json`")
            .into());
    };
    Ok(AuditResult {
        format: s(&v["ruleset_format"]),
        rows: fs
            .iter()
            .map(|f| AuditRow {
                id: s(&f["id"]),
                protocol: s(&f["protocol"]),
                ports: s(&f["ports"]),
                verdict: s(&f["verdict"]),
            })
            .collect(),
        excess: v["excess"].as_array().map_or(0, Vec::len)
            + v["excess_more"].as_u64().unwrap_or(0) as usize,
    })
}

/// Everything the report shows.
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub profile: &'a Profile,
    /// The site file's name; `None`: the profile's built-in demo site.
    pub site_name: Option<String>,
    pub probe: Option<Vec<ProbeRow>>,
    pub audit: Option<AuditResult>,
    pub lang: Lang,
    /// (year, month, day) the report is dated.
    pub date: (i64, u32, u32),
    /// (target, rule or policy count).
    pub rules: Option<(String, usize)>,
    /// The portolan version.
    pub version: String,
}

impl Inputs<'_> {
    /// Checked status of planned flow `k`: the audit's verdict, else the probe's.
    pub fn status(&self, k: usize) -> Status {
        let f = &self.plan.flows[k];
        let proto = f.protocol.to_string();
        let mut st = Status::Unchecked;
        if let Some(a) = &self.audit {
            for r in a
                .rows
                .iter()
                .filter(|r| r.id == f.id && r.protocol == proto)
            {
                st = st.worst(Status::of_audit(&r.verdict));
            }
        }
        if let Some(p) = &self.probe {
            for r in p.iter().filter(|r| r.flow == f.id && r.protocol == proto) {
                st = st.worst(if r.ok {
                    Status::Ok
                } else if f.required {
                    Status::Fail
                } else {
                    Status::Unknown
                });
            }
        }
        st
    }

    fn function(&self, f: &PlannedFlow) -> String {
        match (self.lang, &f.function_de) {
            (Lang::De, Some(de)) => de.clone(),
            _ => f.function.clone(),
        }
    }
}

const CSS: &str = r#"
@page { size: A4; margin: 14mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10.5pt; color: #111; margin: 0 auto; max-width: 1000px; padding: 12px; }
h1 { font-size: 18pt; margin: 0 0 4px; }
h2 { font-size: 14pt; border-bottom: 2px solid #1f4e9c; padding-bottom: 2px; margin-top: 28px; }
.meta { color: #444; margin: 0 0 12px; }
nav ol { columns: 2; }
table { border-collapse: collapse; width: 100%; table-layout: fixed; margin: 8px 0; }
th, td { border: 1px solid #bbb; padding: 3px 5px; text-align: left; vertical-align: top; overflow-wrap: anywhere; word-break: break-word; }
th { background: #e8eefb; }
tr { break-inside: avoid; }
dl.site { display: grid; grid-template-columns: 14em 1fr; gap: 2px 12px; }
dl.site dt { font-weight: bold; }
dl.site dd { margin: 0; overflow-wrap: anywhere; }
figure { margin: 8px 0; }
figure svg { width: 100%; height: auto; }
.ok { color: #1b7a2f; font-weight: bold; }
.fail { color: #b00020; font-weight: bold; }
.unknown { color: #555; font-weight: bold; }
.optional { color: #b35c00; }
code { overflow-wrap: anywhere; }
section { break-before: page; }
section.first { break-before: auto; }
@media print { body { max-width: none; padding: 0; } nav { display: none; } }
"#;

fn table(head: &[&str], rows: &[Vec<String>], widths: &[u32]) -> String {
    let mut o = String::from("<table><colgroup>");
    for w in widths {
        o.push_str(&format!(r#"<col style="width:{w}%">"#));
    }
    o.push_str("</colgroup><thead><tr>");
    for h in head {
        o.push_str(&format!("<th>{}</th>", esc(h)));
    }
    o.push_str("</tr></thead><tbody>");
    for r in rows {
        o.push_str("<tr>");
        for c in r {
            // Cells are already escaped (they may carry a status span).
            o.push_str(&format!("<td>{c}</td>"));
        }
        o.push_str("</tr>");
    }
    o.push_str("</tbody></table>");
    o
}

fn status_cell(st: Status, text: &str) -> String {
    if st == Status::Unchecked {
        return esc(text);
    }
    format!(
        r#"<span class="{}">{} {}</span>"#,
        st.class(),
        st.mark(),
        esc(text)
    )
}

fn direction_text(t: &Texts, d: Direction) -> &'static str {
    match d {
        Direction::Inbound => t.inbound,
        Direction::Outbound => t.outbound,
        Direction::Internal => t.internal,
    }
}

/// The appliance box's lines: the profile name and the addresses.
fn appliance_lines(i: &Inputs) -> (Vec<String>, usize) {
    // The name, wrapped at word boundaries to fit the box.
    let mut v: Vec<String> = Vec::new();
    for w in i.plan.profile_name.split_whitespace() {
        match v.last_mut() {
            Some(l) if l.chars().count() + 1 + w.chars().count() <= 22 => {
                l.push(' ');
                l.push_str(w);
            }
            _ => v.push(w.to_string()),
        }
    }
    if v.is_empty() {
        v.push(String::new());
    }
    v.truncate(4);
    let name_lines = v.len();
    for a in i.plan.appliance().addresses() {
        v.push(a.to_string());
    }
    (v, name_lines)
}

/// The diagram alone (`portolan report --format svg`).
pub fn svg(i: &Inputs) -> String {
    let t = i.lang.texts();
    let edges = diagram::edges(i.plan, &|k| i.status(k));
    let (lines, name_lines) = appliance_lines(i);
    diagram::svg(
        &format!("{}: {}", t.diagram, i.plan.profile_name),
        &lines,
        name_lines,
        &edges,
        t,
    )
}

/// The whole report.
pub fn html(i: &Inputs) -> String {
    let t = i.lang.texts();
    let plan = i.plan;
    let mut o = String::new();
    let title = format!("{}: {}", t.title, plan.profile_name);
    o.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\"><title>{}</title><style>{CSS}</style></head><body>\n",
        i.lang.code(),
        esc(&title)
    ));
    o.push_str(&format!(
        "<header><h1>{}</h1><p class=\"meta\">{}: {} · {}: {} · {} {} (portolan {})</p></header>\n",
        esc(&title),
        esc(t.vendor),
        esc(&plan.vendor),
        esc(t.flows_count),
        i.lang.number(plan.flows.len()),
        esc(t.generated),
        esc(&i.lang.date(i.date)),
        esc(&i.version)
    ));
    let sections: Vec<(&str, &str)> = vec![
        ("site", t.site),
        ("diagram", t.diagram),
        ("flows", t.flows),
        ("caveats", t.caveats),
        ("probe", t.probe),
        ("audit", t.audit),
        ("rendering", t.rendering),
    ];
    o.push_str(&format!("<nav><h2>{}</h2><ol>", esc(t.contents)));
    for (id, name) in &sections {
        o.push_str(&format!("<li><a href=\"#{id}\">{}</a></li>", esc(name)));
    }
    o.push_str("</ol></nav>\n");

    // Site.
    o.push_str(&format!(
        "<section id=\"site\" class=\"first\"><h2>{}</h2><dl class=\"site\">",
        esc(t.site)
    ));
    let mut dl = |k: &str, v: String| {
        o.push_str(&format!("<dt>{}</dt><dd>{v}</dd>", esc(k)));
    };
    dl(
        t.site_file,
        esc(i.site_name.as_deref().unwrap_or(t.demo_site)),
    );
    dl(
        t.profile,
        format!(
            "{} (<code>{}</code>)",
            esc(&i.profile.name),
            esc(&i.profile.id)
        ),
    );
    let addrs: Vec<String> = plan
        .appliance()
        .addresses()
        .iter()
        .map(|a| esc(&a.to_string()))
        .collect();
    dl(t.addresses, addrs.join(", "));
    if !plan.public.is_empty() {
        dl(
            t.public_addresses,
            plan.public
                .iter()
                .map(|a| esc(&a.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    match &plan.placement {
        Placement::Host => dl(t.placement, esc(t.placement_host)),
        Placement::Gateway {
            appliance_interface,
            zones,
            default_interface,
            ..
        } => {
            dl(t.placement, esc(t.placement_gateway));
            dl(t.appliance_interface, esc(appliance_interface));
            let mut z: Vec<String> = zones
                .iter()
                .map(|(r, i)| format!("{} → {}", esc(r), esc(i)))
                .collect();
            if let Some(d) = default_interface {
                z.push(format!("* → {}", esc(d)));
            }
            dl(t.zone, z.join(", "));
        }
    }
    dl(
        t.features,
        if plan.features.is_empty() {
            esc(t.none)
        } else {
            plan.features
                .iter()
                .map(|f| esc(f))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    o.push_str("</dl>");
    let mut role_rows = Vec::new();
    let mut pins = Vec::new();
    for set in plan.sets.values() {
        let nets: Vec<String> = set.addresses().iter().map(|a| a.to_string()).collect();
        match set.kind {
            SetKind::Role => role_rows.push(vec![
                esc(&set.name),
                esc(&if nets.len() > 12 {
                    format!("{} … (+{})", nets[..12].join(", "), nets.len() - 12)
                } else {
                    nets.join(", ")
                }),
            ]),
            SetKind::Dns | SetKind::Wildcard if set.pinned => {
                pins.push(vec![esc(&set.name), esc(&nets.join(", "))]);
            }
            _ => {}
        }
    }
    o.push_str(&format!("<h3>{}</h3>", esc(t.roles)));
    o.push_str(&table(&[t.role, t.networks], &role_rows, &[25, 75]));
    if !pins.is_empty() {
        o.push_str(&format!("<h3>{}</h3>", esc(t.pinned_names)));
        o.push_str(&table(&["DNS", t.addresses], &pins, &[35, 65]));
    }
    o.push_str("</section>\n");

    // Diagram and its table.
    let edges = diagram::edges(plan, &|k| i.status(k));
    let (lines, name_lines) = appliance_lines(i);
    o.push_str(&format!(
        "<section id=\"diagram\"><h2>{}</h2><figure>{}<figcaption>{}</figcaption></figure>",
        esc(t.diagram),
        diagram::svg(
            &format!("{}: {}", t.diagram, plan.profile_name),
            &lines,
            name_lines,
            &edges,
            t
        ),
        esc(t.diagram_alt)
    ));
    if plan
        .flows
        .iter()
        .any(|f| f.direction == Direction::Internal)
    {
        o.push_str(&format!("<p>{}</p>", esc(t.internal_note)));
    }
    o.push_str(&format!("<h3>{}</h3>", esc(t.diagram_table)));
    let rows: Vec<Vec<String>> = edges
        .iter()
        .map(|e| {
            vec![
                esc(e.zone.label(t)),
                esc(&e.peer),
                esc(if e.inbound {
                    t.to_appliance
                } else {
                    t.from_appliance
                }),
                esc(&e.services_text()),
                if e.required {
                    format!("● {}", esc(t.required))
                } else {
                    format!(
                        "<span class=\"optional\">○ {} ({}: {})</span>",
                        esc(t.optional),
                        esc(t.feature),
                        esc(&e.features.join(", "))
                    )
                },
                status_cell(e.status, ""),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            t.zone,
            t.peer,
            t.direction,
            t.services,
            t.required,
            t.status,
        ],
        &rows,
        &[15, 22, 13, 22, 18, 10],
    ));
    o.push_str("</section>\n");

    // Flows.
    o.push_str(&format!("<section id=\"flows\"><h2>{}</h2>", esc(t.flows)));
    let docs: BTreeMap<&str, &str> = plan
        .sources
        .iter()
        .map(|d| (d.id.as_str(), d.title.as_str()))
        .collect();
    let rows: Vec<Vec<String>> = plan
        .flows
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let src: Vec<String> = f
                .source_lines
                .iter()
                .map(|(doc, line)| {
                    format!(
                        "{}, {} {}",
                        esc(docs.get(doc.as_str()).copied().unwrap_or(doc)),
                        esc(t.line),
                        i.lang.number(*line as usize)
                    )
                })
                .collect();
            vec![
                format!("<code>{}</code>", esc(&f.id)),
                esc(&i.function(f)),
                esc(direction_text(t, f.direction)),
                esc(&f.protocol.to_string()),
                esc(&f.ports_text()),
                esc(&f.source.text()),
                esc(&f.destination.text()),
                if f.required {
                    esc(t.required)
                } else {
                    format!(
                        "<span class=\"optional\">{} ({})</span>",
                        esc(t.optional),
                        esc(f.feature.as_deref().unwrap_or(""))
                    )
                },
                src.join("<br>"),
                status_cell(i.status(k), ""),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            t.id,
            t.function,
            t.direction,
            t.protocol,
            t.ports,
            t.from,
            t.to,
            t.required,
            t.source,
            t.status,
        ],
        &rows,
        &[10, 18, 8, 6, 8, 11, 12, 9, 11, 7],
    ));
    o.push_str("</section>\n");

    // Caveats.
    o.push_str(&format!(
        "<section id=\"caveats\"><h2>{}</h2>",
        esc(t.caveats)
    ));
    if i.profile.caveats.is_empty() {
        o.push_str(&format!("<p>{}</p>", esc(t.no_caveats)));
    } else {
        o.push_str("<ul>");
        for c in &i.profile.caveats {
            let mut where_ = Vec::new();
            if let Some(s) = &c.source {
                let title = docs.get(s.as_str()).copied().unwrap_or(s);
                match c.line {
                    Some(l) => where_.push(format!(
                        "{}, {} {}",
                        esc(title),
                        esc(t.line),
                        i.lang.number(l as usize)
                    )),
                    None => where_.push(esc(title)),
                }
            }
            if !c.flows.is_empty() {
                where_.push(
                    c.flows
                        .iter()
                        .map(|f| format!("<code>{}</code>", esc(f)))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
            }
            o.push_str(&format!(
                "<li>{}{}</li>",
                esc(&c.message),
                if where_.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", where_.join("; "))
                }
            ));
        }
        o.push_str("</ul>");
    }
    o.push_str("</section>\n");

    // Probe.
    o.push_str(&format!("<section id=\"probe\"><h2>{}</h2>", esc(t.probe)));
    match &i.probe {
        None => o.push_str(&format!("<p>{}</p>", esc(t.no_probe))),
        Some(rows) => {
            let bad = rows.iter().filter(|r| !r.ok).count();
            o.push_str(&format!(
                "<p>{} {} {}</p>",
                i.lang.number(rows.len()),
                esc(t.probe_summary),
                i.lang.number(bad)
            ));
            let body: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        format!("<code>{}</code>", esc(&r.flow)),
                        esc(&r.protocol),
                        esc(&r.host),
                        esc(&r.address),
                        esc(&r.port),
                        status_cell(if r.ok { Status::Ok } else { Status::Fail }, &r.verdict),
                        esc(&r.detail),
                    ]
                })
                .collect();
            o.push_str(&table(
                &[
                    t.id, t.protocol, t.host, t.address, t.port, t.verdict, t.detail,
                ],
                &body,
                &[12, 7, 18, 14, 6, 13, 30],
            ));
        }
    }
    o.push_str("</section>\n");

    // Audit.
    o.push_str(&format!("<section id=\"audit\"><h2>{}</h2>", esc(t.audit)));
    match &i.audit {
        None => o.push_str(&format!("<p>{}</p>", esc(t.no_audit))),
        Some(a) => {
            let allowed = a.rows.iter().filter(|r| r.verdict == "allowed").count();
            o.push_str(&format!(
                "<p>{}: {} · {} {} {} · {}: {}</p>",
                esc(t.ruleset),
                esc(&a.format),
                i.lang.number(a.rows.len()),
                esc(t.audit_summary),
                i.lang.number(allowed),
                esc(t.excess),
                i.lang.number(a.excess)
            ));
            let body: Vec<Vec<String>> = a
                .rows
                .iter()
                .map(|r| {
                    let st = Status::of_audit(&r.verdict);
                    vec![
                        format!("<code>{}</code>", esc(&r.id)),
                        esc(&r.protocol),
                        esc(&r.ports),
                        status_cell(st, &r.verdict),
                    ]
                })
                .collect();
            o.push_str(&table(
                &[t.id, t.protocol, t.ports, t.verdict],
                &body,
                &[30, 15, 25, 30],
            ));
        }
    }
    o.push_str("</section>\n");

    // Rendering.
    o.push_str(&format!(
        "<section id=\"rendering\"><h2>{}</h2>",
        esc(t.rendering)
    ));
    if let Some((target, n)) = &i.rules {
        o.push_str(&format!(
            "<p>{}: <code>{}</code> · {} {}. {}</p>",
            esc(t.target),
            esc(target),
            i.lang.number(*n),
            esc(t.rules),
            esc(t.rules_note)
        ));
    }
    o.push_str("</section>\n</body></html>\n");
    o
}

/// The accept rules (or policies) `target` renders for the plan's flows.
pub fn rule_count(plan: &Plan, target: &str) -> Option<usize> {
    let t = crate::render::target(target)?;
    Some(crate::render::render(plan, t).rule_count)
}
