//! Probe results as a table, one JSON document, or JUnit XML (one test case per flow).
//! The JSON and JUnit shapes are stable and documented in the README.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::probe::ProbeResult;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub probes: usize,
    pub ok: usize,
    pub failed: usize,
    pub required_failed: usize,
    pub by_verdict: BTreeMap<&'static str, usize>,
    pub elapsed_ms: u64,
}

pub fn summary(results: &[ProbeResult], elapsed_ms: u64) -> Summary {
    let mut by_verdict = BTreeMap::new();
    for r in results {
        *by_verdict.entry(r.verdict.as_str()).or_insert(0) += 1;
    }
    Summary {
        probes: results.len(),
        ok: results.iter().filter(|r| r.ok).count(),
        failed: results.iter().filter(|r| !r.ok).count(),
        required_failed: results.iter().filter(|r| !r.ok && r.required).count(),
        by_verdict,
        elapsed_ms,
    }
}

pub fn json(profile: &str, direction: &str, results: &[ProbeResult], elapsed_ms: u64) -> String {
    let doc = serde_json::json!({
        "profile": profile,
        "direction": direction,
        "summary": summary(results, elapsed_ms),
        "results": results,
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    )
}

fn xml(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn line(r: &ProbeResult) -> String {
    format!(
        "{} {} {}{}{}: {} ({}, {} ms)",
        r.flow,
        r.protocol,
        r.host
            .as_deref()
            .map(|h| format!("{h} "))
            .unwrap_or_default(),
        // `[2001:db8::1]:443`: an IPv6 address with a port in brackets.
        match (r.address, r.port) {
            (Some(std::net::IpAddr::V6(a)), Some(p)) => format!("[{a}]:{p}"),
            (Some(a), Some(p)) => format!("{a}:{p}"),
            (Some(a), None) => a.to_string(),
            (None, Some(p)) => format!("-:{p}"),
            (None, None) => "-".into(),
        },
        "",
        r.verdict.as_str(),
        r.detail,
        r.elapsed_ms
    )
}

/// JUnit XML: one test case per flow id; it fails when any of its probes is not ok.
pub fn junit(profile: &str, results: &[ProbeResult], elapsed_ms: u64) -> String {
    let mut flows: BTreeMap<&str, Vec<&ProbeResult>> = BTreeMap::new();
    for r in results {
        flows.entry(r.flow.as_str()).or_default().push(r);
    }
    let failures = flows.values().filter(|rs| rs.iter().any(|r| !r.ok)).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"portolan probe\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        flows.len(),
        elapsed_ms as f64 / 1000.0
    ));
    out.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        xml(profile),
        flows.len(),
        elapsed_ms as f64 / 1000.0
    ));
    for (flow, rs) in &flows {
        let time = rs.iter().map(|r| r.elapsed_ms).max().unwrap_or(0) as f64 / 1000.0;
        out.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\">\n",
            xml(profile),
            xml(flow)
        ));
        let bad: Vec<&&ProbeResult> = rs.iter().filter(|r| !r.ok).collect();
        if let Some(first) = bad.first() {
            out.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                xml(&line(first)),
                first.verdict.as_str(),
                xml(&bad.iter().map(|r| line(r)).collect::<Vec<_>>().join("\n"))
            ));
        }
        out.push_str(&format!(
            "      <system-out>{}</system-out>\n    </testcase>\n",
            xml(&rs.iter().map(|r| line(r)).collect::<Vec<_>>().join("\n"))
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

pub fn table(results: &[ProbeResult], elapsed_ms: u64) -> String {
    let mut rows: Vec<[String; 7]> = vec![[
        "FLOW".into(),
        "PROTO".into(),
        "HOST".into(),
        "ADDRESS".into(),
        "VERDICT".into(),
        "MS".into(),
        "DETAIL".into(),
    ]];
    for r in results {
        let mark = if r.ok {
            ""
        } else if r.required {
            " !"
        } else {
            " ?"
        };
        rows.push([
            r.flow.clone(),
            r.protocol.to_string(),
            r.host.clone().unwrap_or_else(|| "-".into()),
            match (r.address, r.port) {
                (Some(a @ std::net::IpAddr::V6(_)), Some(p)) => format!("[{a}]:{p}"),
                (Some(a), Some(p)) => format!("{a}:{p}"),
                (Some(a), None) => a.to_string(),
                (None, Some(p)) => format!("-:{p}"),
                (None, None) => "-".into(),
            },
            format!("{}{mark}", r.verdict.as_str()),
            r.elapsed_ms.to_string(),
            r.detail.clone(),
        ]);
    }
    let mut w = [0usize; 6];
    for r in &rows {
        for i in 0..6 {
            w[i] = w[i].max(r[i].chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for i in 0..6 {
            out.push_str(&format!("{:<width$}  ", r[i], width = w[i]));
        }
        out.push_str(&r[6]);
        out.push('\n');
    }
    let s = summary(results, elapsed_ms);
    out.push_str(&format!(
        "\n{} probes in {} ms: {} ok, {} failed ({} of them required){}\n",
        s.probes,
        s.elapsed_ms,
        s.ok,
        s.failed,
        s.required_failed,
        if s.failed > 0 {
            "; ! = required flow failing, ? = optional flow failing"
        } else {
            ""
        }
    ));
    out
}

/// Exit code for a run: 1 when a required flow fails.
pub fn exit_code(results: &[ProbeResult]) -> i32 {
    if results.iter().any(|r| r.required && !r.ok) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Verdict;
    use portolan_core::model::Protocol;

    fn r(flow: &str, verdict: Verdict, ok: bool, required: bool, detail: &str) -> ProbeResult {
        ProbeResult {
            flow: flow.into(),
            protocol: Protocol::Tcp,
            app: crate::probe::App::Tcp,
            host: Some("h<&>\"".into()),
            address: None,
            port: Some(1),
            verdict,
            detail: detail.into(),
            elapsed_ms: 5,
            required,
            ok,
        }
    }

    #[test]
    fn junit_has_one_case_per_flow_and_escapes_everything() {
        let rs = vec![
            r("a", Verdict::Open, true, true, "fine"),
            r("a", Verdict::Filtered, false, true, "x<y & \"z\"\u{1}"),
            r("b", Verdict::Open, true, false, "ok"),
        ];
        let x = junit("p", &rs, 10);
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(x.contains("x&lt;y &amp; &quot;z&quot;"));
        assert!(!x.contains('\u{1}'));
        assert!(!x.contains("h<&>"));
    }

    /// Regression: IPv6 addresses were printed without brackets (`fd77:10::1:8443`).
    #[test]
    fn an_ipv6_address_with_a_port_is_bracketed() {
        let mut v6 = r("a", Verdict::Open, true, true, "fine");
        v6.address = Some("fd77:10::1".parse().expect("v6"));
        v6.port = Some(8443);
        assert!(line(&v6).contains(" [fd77:10::1]:8443: "), "{}", line(&v6));
        let mut v4 = v6.clone();
        v4.address = Some("192.0.2.1".parse().expect("v4"));
        assert!(line(&v4).contains(" 192.0.2.1:8443: "), "{}", line(&v4));
        assert!(junit("p", &[v6], 1).contains("[fd77:10::1]:8443"));
    }

    #[test]
    fn exit_code_counts_required_failures_only() {
        assert_eq!(exit_code(&[r("a", Verdict::Refused, false, false, "")]), 0);
        assert_eq!(exit_code(&[r("a", Verdict::Refused, false, true, "")]), 1);
    }
}
