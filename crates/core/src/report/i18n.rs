//! The report's fixed texts in English and German, and numbers and dates in each locale's
//! format. Every string the report writes that does not come from the profile or the site
//! is here.

/// The report's language: the importer's (English or German).
pub use crate::import::Lang;

impl Lang {
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// `1,234` (en) or `1.234` (de).
    pub fn number(self, n: usize) -> String {
        let sep = match self {
            Lang::En => ',',
            Lang::De => '.',
        };
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }

    /// `6 December 2026` (en) or `6. Dezember 2026` (de).
    pub fn date(self, (y, m, d): (i64, u32, u32)) -> String {
        let i = (m.clamp(1, 12) - 1) as usize;
        match self {
            Lang::En => format!("{d} {} {y}", EN_MONTHS[i]),
            Lang::De => format!("{d}. {} {y}", DE_MONTHS[i]),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's
/// `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DE_MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

/// Every fixed text of the report.
pub struct Texts {
    pub title: &'static str,
    pub generated: &'static str,
    pub contents: &'static str,
    pub site: &'static str,
    pub diagram: &'static str,
    pub diagram_table: &'static str,
    pub flows: &'static str,
    pub caveats: &'static str,
    pub probe: &'static str,
    pub audit: &'static str,
    pub rendering: &'static str,
    pub appliance: &'static str,
    pub addresses: &'static str,
    pub public_addresses: &'static str,
    pub placement: &'static str,
    pub placement_host: &'static str,
    pub placement_gateway: &'static str,
    pub appliance_interface: &'static str,
    pub features: &'static str,
    pub none: &'static str,
    pub roles: &'static str,
    pub role: &'static str,
    pub networks: &'static str,
    pub pinned_names: &'static str,
    pub site_file: &'static str,
    pub profile: &'static str,
    pub vendor: &'static str,
    pub zone: &'static str,
    pub peer: &'static str,
    pub direction: &'static str,
    pub services: &'static str,
    pub status: &'static str,
    pub id: &'static str,
    pub function: &'static str,
    pub protocol: &'static str,
    pub ports: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub required: &'static str,
    pub optional: &'static str,
    pub feature: &'static str,
    pub source: &'static str,
    pub line: &'static str,
    pub inbound: &'static str,
    pub outbound: &'static str,
    pub internal: &'static str,
    pub to_appliance: &'static str,
    pub from_appliance: &'static str,
    pub zone_internet: &'static str,
    pub zone_vendor: &'static str,
    pub zone_internal: &'static str,
    pub zone_admin: &'static str,
    pub zone_networks: &'static str,
    pub legend: &'static str,
    pub legend_required: &'static str,
    pub legend_optional: &'static str,
    pub legend_ok: &'static str,
    pub legend_fail: &'static str,
    pub legend_unknown: &'static str,
    pub legend_unchecked: &'static str,
    pub inbound_side: &'static str,
    pub outbound_side: &'static str,
    pub verdict: &'static str,
    pub host: &'static str,
    pub address: &'static str,
    pub port: &'static str,
    pub detail: &'static str,
    pub no_probe: &'static str,
    pub no_audit: &'static str,
    pub probe_summary: &'static str,
    pub audit_summary: &'static str,
    pub excess: &'static str,
    pub ruleset: &'static str,
    pub target: &'static str,
    pub rules: &'static str,
    pub rules_note: &'static str,
    pub flows_count: &'static str,
    pub internal_note: &'static str,
    pub no_caveats: &'static str,
    pub diagram_alt: &'static str,
    pub demo_site: &'static str,
}

pub static EN: Texts = Texts {
    title: "Firewall requirements",
    generated: "Generated by portolan on",
    contents: "Contents",
    site: "Site",
    diagram: "Diagram",
    diagram_table: "The diagram as a table",
    flows: "Flows",
    caveats: "Caveats",
    probe: "Probe results",
    audit: "Audit results",
    rendering: "Rendered rules",
    appliance: "Appliance",
    addresses: "Addresses",
    public_addresses: "Public addresses (DNAT in front)",
    placement: "Placement",
    placement_host: "host: rules on the appliance itself (input and output)",
    placement_gateway: "gateway: rules on a firewall in front of the appliance (forward)",
    appliance_interface: "Interface toward the appliance",
    features: "Features on",
    none: "none",
    roles: "Roles",
    role: "Role",
    networks: "Networks",
    pinned_names: "Pinned DNS names",
    site_file: "Site file",
    profile: "Profile",
    vendor: "Vendor",
    zone: "Zone",
    peer: "Peer",
    direction: "Direction",
    services: "Services",
    status: "Status",
    id: "ID",
    function: "Function",
    protocol: "Protocol",
    ports: "Ports",
    from: "From",
    to: "To",
    required: "required",
    optional: "optional",
    feature: "feature",
    source: "Source",
    line: "line",
    inbound: "inbound",
    outbound: "outbound",
    internal: "between peers",
    to_appliance: "to the appliance",
    from_appliance: "from the appliance",
    zone_internet: "Internet",
    zone_vendor: "Vendor services (DNS names)",
    zone_internal: "Internal networks",
    zone_admin: "Admin network",
    zone_networks: "Networks",
    legend: "Legend",
    legend_required: "required flow (solid line, ●)",
    legend_optional: "optional flow, behind a feature (dashed line, ○)",
    legend_ok: "✔ checked: works",
    legend_fail: "✘ checked: does not work",
    legend_unknown: "? checked: undecided",
    legend_unchecked: "no mark: not checked",
    inbound_side: "Peers that connect to the appliance",
    outbound_side: "Peers the appliance connects to",
    verdict: "Verdict",
    host: "Host",
    address: "Address",
    port: "Port",
    detail: "Detail",
    no_probe: "No probe results were given (portolan report --probe RESULT.json).",
    no_audit: "No audit results were given (portolan report --audit RESULT.json).",
    probe_summary: "probes; not acceptable:",
    audit_summary: "flows audited; allowed:",
    excess: "Accepted beyond the planned flows (kinds of packet)",
    ruleset: "Ruleset",
    target: "Target",
    rules: "rules",
    rules_note: "Each rule is traceable to its flow by the flow id in its comment.",
    flows_count: "flows",
    internal_note: "Flows between two peers (not the appliance) are in the tables only.",
    no_caveats: "The profile has no caveats.",
    demo_site: "the profile's built-in demo site",
    diagram_alt: "Diagram: the appliance in the middle, the peers that connect to it on the left, the peers it connects to on the right, grouped by zone.",
};

pub static DE: Texts = Texts {
    title: "Firewall-Anforderungen",
    generated: "Erstellt mit portolan am",
    contents: "Inhalt",
    site: "Standort",
    diagram: "Diagramm",
    diagram_table: "Das Diagramm als Tabelle",
    flows: "Verbindungen",
    caveats: "Hinweise",
    probe: "Ergebnisse der Prüfung",
    audit: "Ergebnisse des Audits",
    rendering: "Erzeugte Regeln",
    appliance: "Appliance",
    addresses: "Adressen",
    public_addresses: "Öffentliche Adressen (DNAT davor)",
    placement: "Platzierung",
    placement_host: "Host: Regeln auf der Appliance selbst (Eingang und Ausgang)",
    placement_gateway: "Gateway: Regeln auf einer Firewall vor der Appliance (Weiterleitung)",
    appliance_interface: "Schnittstelle zur Appliance",
    features: "Aktivierte Funktionen",
    none: "keine",
    roles: "Rollen",
    role: "Rolle",
    networks: "Netze",
    pinned_names: "Festgelegte DNS-Namen",
    site_file: "Standortdatei",
    profile: "Profil",
    vendor: "Hersteller",
    zone: "Zone",
    peer: "Gegenstelle",
    direction: "Richtung",
    services: "Dienste",
    status: "Status",
    id: "ID",
    function: "Funktion",
    protocol: "Protokoll",
    ports: "Ports",
    from: "Von",
    to: "Nach",
    required: "erforderlich",
    optional: "optional",
    feature: "Funktion",
    source: "Quelle",
    line: "Zeile",
    inbound: "eingehend",
    outbound: "ausgehend",
    internal: "zwischen Gegenstellen",
    to_appliance: "zur Appliance",
    from_appliance: "von der Appliance",
    zone_internet: "Internet",
    zone_vendor: "Dienste des Herstellers (DNS-Namen)",
    zone_internal: "Interne Netze",
    zone_admin: "Admin-Netz",
    zone_networks: "Netze",
    legend: "Legende",
    legend_required: "erforderliche Verbindung (durchgezogene Linie, ●)",
    legend_optional: "optionale Verbindung, hinter einer Funktion (gestrichelte Linie, ○)",
    legend_ok: "✔ geprüft: funktioniert",
    legend_fail: "✘ geprüft: funktioniert nicht",
    legend_unknown: "? geprüft: nicht entschieden",
    legend_unchecked: "ohne Zeichen: nicht geprüft",
    inbound_side: "Gegenstellen, die sich mit der Appliance verbinden",
    outbound_side: "Gegenstellen, mit denen sich die Appliance verbindet",
    verdict: "Ergebnis",
    host: "Host",
    address: "Adresse",
    port: "Port",
    detail: "Einzelheiten",
    no_probe: "Es wurden keine Prüfergebnisse angegeben (portolan report --probe ERGEBNIS.json).",
    no_audit: "Es wurden keine Audit-Ergebnisse angegeben (portolan report --audit ERGEBNIS.json).",
    probe_summary: "Prüfungen; nicht in Ordnung:",
    audit_summary: "Verbindungen geprüft; erlaubt:",
    excess: "Über die geplanten Verbindungen hinaus erlaubt (Arten von Paketen)",
    ruleset: "Regelwerk",
    target: "Ziel",
    rules: "Regeln",
    rules_note: "Jede Regel ist über die Verbindungs-ID in ihrem Kommentar ihrer Verbindung zuzuordnen.",
    flows_count: "Verbindungen",
    internal_note: "Verbindungen zwischen zwei Gegenstellen (nicht der Appliance) stehen nur in den Tabellen.",
    no_caveats: "Das Profil hat keine Hinweise.",
    demo_site: "die eingebaute Demo-Umgebung des Profils",
    diagram_alt: "Diagramm: die Appliance in der Mitte, links die Gegenstellen, die sich mit ihr verbinden, rechts die, mit denen sie sich verbindet, nach Zonen gruppiert.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_dates_follow_the_locale() {
        assert_eq!(Lang::En.number(1_234_567), "1,234,567");
        assert_eq!(Lang::De.number(1_234_567), "1.234.567");
        assert_eq!(Lang::De.number(999), "999");
        // 2026-12-06 is day 20,793 since the epoch.
        assert_eq!(civil_from_days(20_793), (2026, 12, 6));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(Lang::En.date((2026, 12, 6)), "6 December 2026");
        assert_eq!(Lang::De.date((2026, 3, 6)), "6. März 2026");
    }
}
