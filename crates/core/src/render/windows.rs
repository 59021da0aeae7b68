//! Windows Defender Firewall: a PowerShell script of `New-NetFirewallRule` calls in the group
//! `portolan` (removed first, so a second run replaces, and nothing outside the group is
//! touched). Inbound rules match the local port, outbound ones the remote port; peers are
//! `-RemoteAddress` lists. DNS names become dynamic keyword addresses
//! (`New-NetFirewallDynamicKeywordAddress -AutoResolve`, Windows 10 21H2 / Server 2022 and
//! later) where the cmdlet exists, and addresses resolved when the script runs otherwise.
//! Windows has no wildcard keywords that resolve by themselves: wildcard peers need pins.
//!
//! Outbound rules restrict only when the profile's default outbound action is Block; the
//! script does not change that setting (it is not portolan's), and says so.
//!
//! Reference: Microsoft Learn, NetSecurity module: New-NetFirewallRule,
//! Remove-NetFirewallRule, New-NetFirewallDynamicKeywordAddress.

use std::fmt::Write as _;

use super::objects::{by_family, fit, AddrKind, Objects};
use super::{
    flow_comment, fnv32, header, Capabilities, DnsModel, Lowered, Options, Rendered, Target,
};
use crate::model::Protocol;
use crate::plan::Plan;

pub struct Windows;

const NAME_MAX: usize = 255;

impl Target for Windows {
    fn name(&self) -> &'static str {
        "windows"
    }
    fn description(&self) -> &'static str {
        "Windows Defender Firewall: PowerShell New-NetFirewallRule script in its own rule group"
    }
    fn extension(&self) -> &'static str {
        "ps1"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dns: DnsModel::NativeFqdn { wildcard: false },
            max_comment_len: 1024,
            max_set_name_len: NAME_MAX,
            ..Capabilities::HOST_OBJECTS
        }
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        lowered.objects_with(|o| render(plan, o))
    }
}

/// A stable GUID for a dynamic keyword (same name, same id on every run).
fn keyword_id(name: &str) -> String {
    let a = fnv32(name);
    let b = fnv32(&format!("portolan/{name}"));
    let c = fnv32(&format!("{name}/portolan"));
    format!(
        "{{{a:08x}-{:04x}-4{:03x}-8{:03x}-{c:08x}{:04x}}}",
        b >> 16,
        b & 0xfff,
        (c >> 20) & 0xfff,
        a & 0xffff
    )
}

fn render(plan: &Plan, o: &Objects) -> Rendered {
    let index = super::FlowIndex::new(plan);
    let mut out = header(
        plan,
        "windows",
        "run in an elevated PowerShell (powershell -ExecutionPolicy Bypass -File FILE); replaces only the rules of group 'portolan'",
    );
    out.push_str("# reference: Microsoft Learn, NetSecurity: New-NetFirewallRule, New-NetFirewallDynamicKeywordAddress\n# Outbound rules restrict only where the profile's default outbound action is Block\n# (Set-NetFirewallProfile -DefaultOutboundAction Block): this script leaves that setting alone.\n");
    out.push_str("$ErrorActionPreference = 'Stop'\n$group = 'portolan'\nGet-NetFirewallRule -Group $group -ErrorAction SilentlyContinue | Remove-NetFirewallRule\n$keywords = [bool](Get-Command New-NetFirewallDynamicKeywordAddress -ErrorAction SilentlyContinue)\n");
    // DNS names: a keyword each, or the addresses they resolve to now.
    let mut names = Vec::new();
    for a in &o.addresses {
        if let AddrKind::Fqdn(f) = &a.kind {
            let id = keyword_id(f);
            let var = format!("$pt_{:08x}", fnv32(&a.name));
            let _ = writeln!(
                out,
                "if ($keywords) {{\n\tGet-NetFirewallDynamicKeywordAddress -Id '{id}' -ErrorAction SilentlyContinue | Remove-NetFirewallDynamicKeywordAddress\n\tNew-NetFirewallDynamicKeywordAddress -Id '{id}' -Keyword '{f}' -AutoResolve $true | Out-Null\n\t{var} = @{{ RemoteDynamicKeywordAddresses = '{id}' }}\n}} else {{\n\t{var} = @{{ RemoteAddress = @((Resolve-DnsName -Name '{f}' -ErrorAction Stop | Where-Object {{ $_.IPAddress }}).IPAddress) }}\n}}"
            );
            names.push((a.name.clone(), var));
        }
    }
    let mut count = 0;
    for p in &o.policies {
        let inbound = p.destinations.iter().any(|d| d == "pt-appliance");
        let peers: &[String] = if inbound { &p.sources } else { &p.destinations };
        out.push_str(&index.lines_for(&p.flows, "#"));
        let desc = flow_comment(&p.flows, 900);
        for (i, peer) in peers.iter().enumerate() {
            let Some(a) = o.address(peer) else {
                continue;
            };
            let remote = match &a.kind {
                AddrKind::Nets(nets) => {
                    let (v4, v6) = by_family(nets);
                    let list: Vec<String> =
                        v4.iter().chain(&v6).map(|n| format!("'{n}'")).collect();
                    format!("-RemoteAddress @({})", list.join(","))
                }
                AddrKind::Fqdn(_) => {
                    let var = names
                        .iter()
                        .find(|(n, _)| *n == a.name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    format!("@{}", var.trim_start_matches('$'))
                }
                AddrKind::WildcardFqdn(_) => continue,
            };
            for s in p.services.iter().filter_map(|n| o.service(n)) {
                let (proto, port) = match (s.protocol, s.ports, s.icmp) {
                    (Protocol::Icmp, _, Some(t)) => {
                        for (proto, code) in [("ICMPv4", t.v4_code()), ("ICMPv6", t.v6_code())] {
                            count += 1;
                            let name = fit(
                                &format!("{}-{}-{}-{proto}", p.name, i + 1, s.name),
                                NAME_MAX,
                            );
                            let _ = writeln!(
                                out,
                                "New-NetFirewallRule -Group $group -Name '{name}' -DisplayName '{name}' -Description '{desc}' -Direction {} -Action Allow -Protocol {proto} -IcmpType {code} {remote} | Out-Null",
                                if inbound { "Inbound" } else { "Outbound" }
                            );
                        }
                        continue;
                    }
                    (Protocol::Icmp, _, None) => continue,
                    (proto, Some(r), _) => (
                        proto.to_string().to_uppercase(),
                        if r.low == r.high {
                            r.low.to_string()
                        } else {
                            format!("{}-{}", r.low, r.high)
                        },
                    ),
                    (_, None, _) => continue,
                };
                count += 1;
                let name = fit(&format!("{}-{}-{}", p.name, i + 1, s.name), NAME_MAX);
                let (dir, port_kw) = if inbound {
                    ("Inbound", "LocalPort")
                } else {
                    ("Outbound", "RemotePort")
                };
                let _ = writeln!(
                    out,
                    "New-NetFirewallRule -Group $group -Name '{name}' -DisplayName '{name}' -Description '{desc}' -Direction {dir} -Action Allow -Protocol {proto} -{port_kw} {port} {remote} | Out-Null"
                );
            }
        }
    }
    Rendered {
        text: out.clone(),
        parts: vec![("windows".into(), out)],
        rule_count: count,
        warnings: Vec::new(),
    }
}
