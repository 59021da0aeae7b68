//! Change-request sheets for firewall teams that configure by hand: one line per rule
//! (a planned flow between one source and one destination peer) with source, destination
//! (name and addresses), protocol, ports, direction, zones, why (the flow's function and the
//! source document's line) and whether it is required. CSV (RFC 4180), Markdown and a
//! single-file HTML table; German headers and texts with `--lang de` (the flow's German
//! function where the profile has one).
//!
//! Unlike the configuration targets, free text is the content here: every cell is escaped for
//! its format (CSV quoting, and a leading `'` before `=`, `+`, `-`, `@` so that no spreadsheet
//! reads a formula; `\|` and no line breaks in Markdown; HTML entities), so no text can add a
//! row, a column or markup.

use std::fmt::Write as _;

use super::{
    comment_text, Capabilities, ChainModel, DnsModel, Lang, Lowered, Options, Rendered, Target,
};
use crate::model::Protocol;
use crate::plan::{Direction, Plan, PlannedFlow, SetKind};
use crate::site::Placement;

/// The CSV sheet.
pub struct SheetCsv;
/// The Markdown sheet.
pub struct SheetMarkdown;
/// The HTML sheet.
pub struct SheetHtml;

fn caps() -> Capabilities {
    Capabilities {
        model: ChainModel::Flows,
        dns: DnsModel::ResolvedAtLoad,
        interface_match: true,
        ipv6: true,
        icmp_types: true,
        host: true,
        gateway: true,
        max_comment_len: usize::MAX,
        max_set_name_len: usize::MAX,
        comment: "",
    }
}

const HEADERS_EN: [&str; 12] = [
    "Rule",
    "Flow",
    "Direction",
    "Source",
    "Source addresses",
    "Destination",
    "Destination addresses",
    "Protocol",
    "Ports",
    "Zones",
    "Required",
    "Reason (source)",
];
const HEADERS_DE: [&str; 12] = [
    "Regel",
    "Fluss",
    "Richtung",
    "Quelle",
    "Quelladressen",
    "Ziel",
    "Zieladressen",
    "Protokoll",
    "Ports",
    "Zonen",
    "Erforderlich",
    "Grund (Quelle)",
];

fn t(lang: Lang, en: &'static str, de: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::De => de,
    }
}

/// The rows: one per planned flow and pair of peers, in plan order.
pub fn rows(plan: &Plan, lang: Lang) -> Vec<[String; 12]> {
    let mut out = Vec::new();
    for f in &plan.flows {
        for s in &f.source.peers {
            for d in &f.destination.peers {
                let n = out.len() + 1;
                out.push([
                    n.to_string(),
                    f.id.clone(),
                    direction(f, lang).to_string(),
                    peer_name(plan, &s.set, lang),
                    peer_addresses(plan, &s.set, lang),
                    peer_name(plan, &d.set, lang),
                    peer_addresses(plan, &d.set, lang),
                    match f.protocol {
                        Protocol::Tcp => "TCP".into(),
                        Protocol::Udp => "UDP".into(),
                        Protocol::Icmp => "ICMP".into(),
                    },
                    ports(f),
                    zones(plan, s.interface.as_deref(), d.interface.as_deref(), lang),
                    required(f, lang),
                    reason(plan, f, lang),
                ]);
            }
        }
    }
    out
}

fn direction(f: &PlannedFlow, lang: Lang) -> &'static str {
    match f.direction {
        Direction::Inbound => t(lang, "inbound", "eingehend"),
        Direction::Outbound => t(lang, "outbound", "ausgehend"),
        Direction::Internal => t(lang, "internal", "intern"),
    }
}

fn peer_name(plan: &Plan, set: &str, lang: Lang) -> String {
    let Some(s) = plan.set(set) else {
        return set.to_string();
    };
    match s.kind {
        SetKind::Appliance => format!(
            "{} ({})",
            t(lang, "the appliance", "die Appliance"),
            plan.profile_name
        ),
        SetKind::Role => format!("{} {}", t(lang, "role", "Rolle"), s.name),
        SetKind::Dns => format!("{} {}", t(lang, "DNS name", "DNS-Name"), s.name),
        SetKind::Wildcard => format!("{} {}", t(lang, "wildcard", "Wildcard"), s.name),
        SetKind::Network => format!("{} {}", t(lang, "network", "Netz"), s.name),
    }
}

fn peer_addresses(plan: &Plan, set: &str, lang: Lang) -> String {
    let Some(s) = plan.set(set) else {
        return String::new();
    };
    let nets: Vec<String> = s.addresses().iter().map(ToString::to_string).collect();
    match s.kind {
        SetKind::Dns | SetKind::Wildcard if !s.pinned => t(
            lang,
            "by DNS when configured (the vendor may change them)",
            "per DNS beim Einrichten (der Hersteller kann sie ändern)",
        )
        .to_string(),
        _ if nets.is_empty() => t(lang, "(none in the site)", "(keine im Standort)").to_string(),
        _ if nets.len() > 12 => format!(
            "{} … ({} {})",
            nets[..12].join(" "),
            nets.len(),
            t(lang, "networks in all", "Netze insgesamt")
        ),
        _ => nets.join(" "),
    }
}

fn ports(f: &PlannedFlow) -> String {
    match f.protocol {
        Protocol::Icmp => f
            .icmp_type
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
        _ => f
            .ports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn zones(plan: &Plan, from: Option<&str>, to: Option<&str>, lang: Lang) -> String {
    match plan.placement {
        Placement::Host => t(lang, "on the appliance", "auf der Appliance").to_string(),
        Placement::Gateway { .. } => format!(
            "{} → {}",
            from.unwrap_or(t(lang, "any", "beliebig")),
            to.unwrap_or(t(lang, "any", "beliebig"))
        ),
    }
}

fn required(f: &PlannedFlow, lang: Lang) -> String {
    match &f.feature {
        None => t(lang, "required", "erforderlich").to_string(),
        Some(x) => format!(
            "{} ({x})",
            t(lang, "optional, feature", "optional, Funktion")
        ),
    }
}

fn reason(plan: &Plan, f: &PlannedFlow, lang: Lang) -> String {
    let function = match lang {
        Lang::De => f.function_de.as_deref().unwrap_or(&f.function),
        Lang::En => &f.function,
    };
    // The documents in the sheet's language where the flow has one, else all of them.
    let code = t(lang, "en", "de");
    let doc = |id: &str| plan.sources.iter().find(|s| s.id == id);
    let same: Vec<(&String, &u32)> = f
        .source_lines
        .iter()
        .filter(|(id, _)| doc(id).is_some_and(|d| d.language == code))
        .collect();
    let chosen = if same.is_empty() {
        f.source_lines.iter().collect()
    } else {
        same
    };
    let lines: Vec<String> = chosen
        .into_iter()
        .map(|(id, line)| {
            let name = doc(id)
                .map(|d| d.title.clone())
                .unwrap_or_else(|| id.clone());
            format!(
                "{}, {} {line}",
                comment_text(&name),
                t(lang, "line", "Zeile")
            )
        })
        .collect();
    if lines.is_empty() {
        comment_text(function)
    } else {
        format!("{} ({})", comment_text(function), lines.join(", "))
    }
}

fn headers(lang: Lang) -> [&'static str; 12] {
    match lang {
        Lang::En => HEADERS_EN,
        Lang::De => HEADERS_DE,
    }
}

/// A CSV cell: quoted when it must be, and never read as a formula.
fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn md_cell(s: &str) -> String {
    comment_text(s).replace('\\', "\\\\").replace('|', "\\|")
}

/// HTML text: entities for markup characters, no control characters or line breaks.
fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in comment_text(s).chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn title(plan: &Plan, lang: Lang) -> String {
    format!(
        "{} {} ({})",
        t(
            lang,
            "Firewall change request:",
            "Firewall-Änderungsantrag:"
        ),
        plan.profile_name,
        plan.vendor
    )
}

fn done(text: String, n: usize) -> Rendered {
    Rendered {
        parts: vec![("sheet".into(), text.clone())],
        text,
        rule_count: n,
        warnings: Vec::new(),
    }
}

impl Target for SheetCsv {
    fn name(&self) -> &'static str {
        "sheet-csv"
    }
    fn description(&self) -> &'static str {
        "change-request sheet, CSV: one line per rule with addresses, ports, zones and the reason"
    }
    fn extension(&self) -> &'static str {
        "csv"
    }
    fn capabilities(&self) -> Capabilities {
        caps()
    }
    fn render(&self, plan: &Plan, _lowered: &Lowered, opts: &Options) -> Rendered {
        let mut out = String::new();
        let h: Vec<String> = headers(opts.lang).iter().map(|x| csv_cell(x)).collect();
        out.push_str(&h.join(","));
        out.push_str("\r\n");
        let rows = rows(plan, opts.lang);
        for r in &rows {
            let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        done(out, rows.len())
    }
}

impl Target for SheetMarkdown {
    fn name(&self) -> &'static str {
        "sheet-markdown"
    }
    fn description(&self) -> &'static str {
        "change-request sheet, Markdown table"
    }
    fn extension(&self) -> &'static str {
        "md"
    }
    fn capabilities(&self) -> Capabilities {
        caps()
    }
    fn render(&self, plan: &Plan, _lowered: &Lowered, opts: &Options) -> Rendered {
        let lang = opts.lang;
        let mut out = format!("# {}\n\n", md_cell(&title(plan, lang)));
        let h = headers(lang);
        let _ = writeln!(out, "| {} |", h.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(h.len()));
        let rows = rows(plan, lang);
        for r in &rows {
            let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        done(out, rows.len())
    }
}

impl Target for SheetHtml {
    fn name(&self) -> &'static str {
        "sheet-html"
    }
    fn description(&self) -> &'static str {
        "change-request sheet, one self-contained HTML file"
    }
    fn extension(&self) -> &'static str {
        "html"
    }
    fn capabilities(&self) -> Capabilities {
        caps()
    }
    fn render(&self, plan: &Plan, _lowered: &Lowered, opts: &Options) -> Rendered {
        let lang = opts.lang;
        let code = t(lang, "en", "de");
        let title = html(&title(plan, lang));
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>\nbody {{ font-family: sans-serif; margin: 1.5em; }}\ntable {{ border-collapse: collapse; }}\nth, td {{ border: 1px solid #999; padding: 0.25em 0.5em; vertical-align: top; text-align: left; }}\nth {{ background: #eee; }}\n@media print {{ tr {{ page-break-inside: avoid; }} }}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n<table>\n<thead><tr>"
        );
        for h in headers(lang) {
            let _ = write!(out, "<th>{}</th>", html(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        let rows = rows(plan, lang);
        for r in &rows {
            out.push_str("<tr>");
            for c in r {
                let _ = write!(out, "<td>{}</td>", html(c));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
        done(out, rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_add_rows_columns_formulas_or_markup() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\"\nnow"), "\"say \"\"hi\"\"\nnow\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
        assert_eq!(html("<b a='x'>&"), "&lt;b a=&#39;x&#39;&gt;&amp;");
    }
}
