//! firewalld (1.x, on the appliance's host): two policies, `portolan-in` (ANY -> HOST) and
//! `portolan-out` (HOST -> ANY), whose rich rules accept each planned flow from or to an
//! ipset of its peer, and the ipsets (`hash:net`, one per peer and family). The output is a
//! shell script that writes the XML files into `/etc/firewalld` (or `$FIREWALLD_DIR`) and
//! reloads; `--part commands` gives the same as `firewall-cmd --permanent` commands, and
//! `--part FILE` each XML file.
//!
//! Outbound, `portolan-out` has target REJECT: what no flow allows is refused (least
//! privilege; replies pass before any policy). Inbound, `portolan-in` has target CONTINUE:
//! the zone of the interface decides the rest, as the admin set it up (the `public` zone
//! rejects everything but ssh and dhcpv6-client). firewalld has no DNS objects: names need
//! pins under `[hosts]`, or their flows are left out.
//!
//! Reference: firewalld 1.3 man pages firewalld.policy(5), firewalld.ipset(5),
//! firewalld.richlanguage(5), firewall-cmd(1). ipset names: at most 31 characters.

use std::fmt::Write as _;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{header, Capabilities, Lowered, Options, Rendered, Target};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Firewalld;

const IPSET_MAX: usize = 31;

impl Target for Firewalld {
    fn name(&self) -> &'static str {
        "firewalld"
    }
    fn description(&self) -> &'static str {
        "firewalld policies and ipsets (XML files, and firewall-cmd --permanent commands) on the appliance"
    }
    fn extension(&self) -> &'static str {
        "sh"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_comment_len: 1024,
            max_set_name_len: IPSET_MAX,
            ..Capabilities::HOST_OBJECTS
        }
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        lowered.objects_with(|o| render(plan, o))
    }
}

/// The ipset of an address object in a family.
fn ipset(name: &str, v6: bool) -> String {
    fit(
        &format!("{name}-{}", if v6 { "v6" } else { "v4" }),
        IPSET_MAX,
    )
}

/// One rich rule (XML and `firewall-cmd` forms).
struct RichRule {
    xml: String,
    text: String,
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let mut files: Vec<(String, String)> = Vec::new();
    let mut commands = String::from("#!/bin/sh\nset -eu\n");
    // ipsets, except the appliance (on its own host it is the host itself).
    for a in o.addresses.iter().filter(|a| a.name != "pt-appliance") {
        let AddrKind::Nets(nets) = &a.kind else {
            continue;
        };
        let (v4, v6) = by_family(nets);
        for (list, six) in [(&v4, false), (&v6, true)] {
            if list.is_empty() {
                continue;
            }
            let name = ipset(&a.name, six);
            let fam = if six { "inet6" } else { "inet" };
            let mut x = format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ipset type=\"hash:net\">\n  <short>portolan {}</short>\n  <option name=\"family\" value=\"{fam}\"/>\n",
                a.name
            );
            let _ = writeln!(
                commands,
                "firewall-cmd --permanent --new-ipset={name} --type=hash:net --option=family={fam}"
            );
            // hash:net takes prefixes of 1 and more: all of a family is its two halves.
            let list: Vec<ipnet::IpNet> = list
                .iter()
                .flat_map(|n| {
                    if n.prefix_len() == 0 {
                        n.subnets(1).map(|s| s.collect()).unwrap_or_default()
                    } else {
                        vec![*n]
                    }
                })
                .collect();
            for n in list.iter() {
                let _ = writeln!(x, "  <entry>{n}</entry>");
            }
            // One command per 64 entries (firewall-cmd takes the option repeatedly).
            for chunk in list.chunks(64) {
                let _ = write!(commands, "firewall-cmd --permanent --ipset={name}");
                for n in chunk {
                    let _ = write!(commands, " \\\n\t--add-entry={n}");
                }
                commands.push('\n');
            }
            x.push_str("</ipset>\n");
            files.push((format!("ipsets/{name}.xml"), x));
        }
    }
    let mut inbound: Vec<RichRule> = Vec::new();
    let mut outbound: Vec<RichRule> = Vec::new();
    let mut comments_in = String::new();
    let mut comments_out = String::new();
    let mut script_notes = String::new();
    for p in &o.policies {
        let into_host = p.destinations.iter().any(|d| d == "pt-appliance");
        let peers: Vec<&String> = if into_host {
            p.sources.iter().collect()
        } else {
            p.destinations.iter().collect()
        };
        let (rules, comments) = if into_host {
            (&mut inbound, &mut comments_in)
        } else {
            (&mut outbound, &mut comments_out)
        };
        // Flow ids only in XML comments (validated identifiers: no `--`); the functions go
        // into the script's `#` lines.
        let _ = writeln!(
            comments,
            "<!-- {} -->",
            super::flow_comment(&p.flows, usize::MAX)
        );
        script_notes.push_str(&index.lines_for(&p.flows, "#"));
        for peer in peers {
            let Some(a) = o.address(peer) else {
                continue;
            };
            let AddrKind::Nets(nets) = &a.kind else {
                continue;
            };
            let (v4, v6) = by_family(nets);
            for (list, six) in [(&v4, false), (&v6, true)] {
                if list.is_empty() {
                    continue;
                }
                let fam = if six { "ipv6" } else { "ipv4" };
                let side = if into_host { "source" } else { "destination" };
                let set = ipset(&a.name, six);
                for s in p.services.iter().filter_map(|n| o.service(n)) {
                    let (xml_match, text_match) = match (s.protocol, s.ports, s.icmp) {
                        (Protocol::Icmp, _, Some(t)) => (
                            format!("<icmp-type name=\"{}\"/>", t.name()),
                            format!("icmp-type name=\"{}\"", t.name()),
                        ),
                        (Protocol::Icmp, _, None) => continue,
                        (proto, Some(r), _) => {
                            let port = if r.low == r.high {
                                r.low.to_string()
                            } else {
                                format!("{}-{}", r.low, r.high)
                            };
                            (
                                format!("<port port=\"{port}\" protocol=\"{proto}\"/>"),
                                format!("port port=\"{port}\" protocol=\"{proto}\""),
                            )
                        }
                        (_, None, _) => continue,
                    };
                    rules.push(RichRule {
                        xml: format!(
                            "  <rule family=\"{fam}\">\n    <{side} ipset=\"{set}\"/>\n    {xml_match}\n    <accept/>\n  </rule>\n"
                        ),
                        text: format!(
                            "rule family=\"{fam}\" {side} ipset=\"{set}\" {text_match} accept"
                        ),
                    });
                }
            }
        }
    }
    let count = inbound.len() + outbound.len();
    for (name, target, ingress, egress, rules, comments, what) in [
        (
            "portolan-in",
            "CONTINUE",
            "ANY",
            "HOST",
            &inbound,
            &comments_in,
            "inbound flows of the appliance (the zone decides the rest)",
        ),
        (
            "portolan-out",
            "REJECT",
            "HOST",
            "ANY",
            &outbound,
            &comments_out,
            "outbound flows of the appliance (everything else is refused)",
        ),
    ] {
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n{comments}<policy target=\"{target}\" priority=\"-100\">\n  <short>{name}</short>\n  <description>portolan: {what}</description>\n  <ingress-zone name=\"{ingress}\"/>\n  <egress-zone name=\"{egress}\"/>\n"
        );
        let _ = writeln!(
            commands,
            "firewall-cmd --permanent --new-policy={name}\nfirewall-cmd --permanent --policy={name} --set-target={target}\nfirewall-cmd --permanent --policy={name} --set-priority=-100\nfirewall-cmd --permanent --policy={name} --add-ingress-zone={ingress}\nfirewall-cmd --permanent --policy={name} --add-egress-zone={egress}"
        );
        for r in rules.iter() {
            x.push_str(&r.xml);
        }
        for chunk in rules.chunks(64) {
            let _ = write!(commands, "firewall-cmd --permanent --policy={name}");
            for r in chunk {
                let _ = write!(commands, " \\\n\t--add-rich-rule='{}'", r.text);
            }
            commands.push('\n');
        }
        x.push_str("</policy>\n");
        files.push((format!("policies/{name}.xml"), x));
    }
    commands.push_str("firewall-cmd --reload\n");
    let mut out = header(
        plan,
        "firewalld",
        "sh FILE as root (FIREWALLD_DIR=/etc/firewalld by default), or `--part commands` for firewall-cmd; replaces only portolan's policies and ipsets",
    );
    out.push_str(&script_notes);
    out.push_str("# reference: firewalld 1.3: firewalld.policy(5), firewalld.ipset(5), firewalld.richlanguage(5)\nset -eu\nd=\"${FIREWALLD_DIR:-/etc/firewalld}\"\nmkdir -p \"$d/ipsets\" \"$d/policies\"\n# portolan's own files only: earlier ones (pt-*, portolan-*) are replaced.\nrm -f \"$d\"/ipsets/pt-*.xml \"$d\"/policies/portolan-*.xml\n");
    for (path, body) in &files {
        let _ = write!(
            out,
            "cat > \"$d/{path}\" <<'PORTOLAN_XML_END'\n{body}PORTOLAN_XML_END\n"
        );
    }
    out.push_str("if [ -z \"${FIREWALLD_DIR:-}\" ] && command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then\n\tfirewall-cmd --reload\nfi\n");
    let mut parts = vec![("commands".to_string(), commands)];
    parts.extend(files);
    Rendered {
        text: out,
        parts,
        rule_count: count,
        warnings: Vec::new(),
    }
}
