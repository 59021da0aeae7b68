//! Cloud firewalls around the appliance's instance: AWS security groups (CloudFormation and
//! Terraform JSON), an Azure network security group (ARM template) and Google Cloud VPC
//! firewall rules (gcloud commands and Terraform JSON).
//!
//! They share one list of rules ([`cloud_rules`]): per policy of the object lowering, the
//! direction (inbound to the appliance or outbound from it), the peer's networks of one
//! family, and one protocol with one port range or ICMP type. Cloud firewalls have no DNS
//! names: names are the site's pins under `[hosts]` (resolved at render time; re-render when
//! the vendor's addresses change, the output says so), wildcards and unpinned names are left
//! out with a warning. Outbound is closed except for the planned flows: the default
//! allow-all egress of AWS is replaced, Azure and GCP get an explicit lowest-priority deny.
//!
//! References: AWS CloudFormation User Guide, AWS::EC2::SecurityGroup (Ingress, Egress);
//! Terraform AWS provider aws_security_group, aws_vpc_security_group_ingress_rule /
//! egress_rule; Azure Resource Manager template reference Microsoft.Network/
//! networkSecurityGroups (2023-09-01); gcloud compute firewall-rules create; Terraform
//! Google provider google_compute_firewall.

use std::fmt::Write as _;

use ipnet::IpNet;
use serde_json::{json, Value};

use super::objects::{by_family, Objects};
use super::{flow_comment, header, Capabilities, Lowered, Options, Rendered, Target};
use crate::diag::Diagnostic;
use crate::model::{IcmpType, PortRange, Protocol};

use crate::plan::Plan;

/// Security group rules per direction and group (the AWS default quota).
pub const AWS_RULES_PER_GROUP: usize = 60;
/// Security groups per network interface (the AWS default quota).
pub const AWS_GROUPS_PER_INTERFACE: usize = 5;
/// Source or destination ranges per GCP firewall rule.
pub const GCP_RANGES_PER_RULE: usize = 256;

/// One rule of a cloud firewall.
#[derive(Debug, Clone)]
pub struct CloudRule {
    pub inbound: bool,
    /// The peer's networks, one family.
    pub nets: Vec<IpNet>,
    pub v6: bool,
    pub protocol: Protocol,
    pub ports: Option<PortRange>,
    pub icmp: Option<IcmpType>,
    pub flows: String,
    /// `pt-<flow>`, unique per rule group.
    pub name: String,
    /// The peer's address object (`pt-role-internet`, ...).
    pub peer: String,
}

/// `icmp_types`: AWS matches them; Azure and GCP match ICMP only as a whole, so their ICMP
/// flows are left out (never widened).
fn caps(icmp_types: bool) -> Capabilities {
    Capabilities {
        icmp_types,
        ..Capabilities::HOST_OBJECTS
    }
}

/// The rules, in policy order.
pub fn cloud_rules(o: &Objects) -> Vec<CloudRule> {
    let mut out = Vec::new();
    for p in &o.policies {
        let inbound = p.destinations.iter().any(|d| d == "pt-appliance");
        let peers = if inbound { &p.sources } else { &p.destinations };
        let flows = flow_comment(&p.flows, 200);
        let mut n = 0;
        for peer in peers {
            let Some(a) = o.address(peer) else { continue };
            let super::objects::AddrKind::Nets(nets) = &a.kind else {
                continue;
            };
            let (v4, v6) = by_family(nets);
            for (list, six) in [(v4, false), (v6, true)] {
                if list.is_empty() {
                    continue;
                }
                for s in p.services.iter().filter_map(|x| o.service(x)) {
                    n += 1;
                    out.push(CloudRule {
                        inbound,
                        nets: list.clone(),
                        v6: six,
                        protocol: s.protocol,
                        ports: s.ports,
                        icmp: s.icmp,
                        flows: flows.clone(),
                        name: format!("{}-{n}", p.name),
                        peer: a.name.clone(),
                    });
                }
            }
        }
    }
    out
}

fn note(plan: &Plan, target: &str, load: &str) -> String {
    format!(
        "{}# DNS names are the site's pins under [hosts], resolved when this was rendered:\n# re-render when the vendor's addresses change.\n",
        header(plan, target, load)
    )
}

// ---------------------------------------------------------------------------------------
// AWS

pub struct AwsCloudformation;
pub struct AwsTerraform;

/// (IpProtocol, FromPort, ToPort) as AWS has them: for ICMP the type and one code (a rule per
/// code the type has: a code of -1, all codes, is refused by cfn-lint with a given type).
fn aws_protos(r: &CloudRule) -> Vec<(String, i64, i64)> {
    match (r.protocol, r.ports, r.icmp) {
        (Protocol::Icmp, _, Some(t)) => {
            let proto = if r.v6 { "icmpv6" } else { "icmp" }.to_string();
            let ty = i64::from(if r.v6 { t.v6_code() } else { t.v4_code() });
            let codes: std::ops::RangeInclusive<i64> = match (t, r.v6) {
                (IcmpType::EchoRequest | IcmpType::EchoReply, _) => 0..=0,
                (IcmpType::DestinationUnreachable, false) => 0..=15,
                (IcmpType::DestinationUnreachable, true) => 0..=7,
                (IcmpType::TimeExceeded, _) => 0..=1,
            };
            codes.map(|c| (proto.clone(), ty, c)).collect()
        }
        (Protocol::Icmp, _, None) => Vec::new(),
        (p, Some(pr), _) => vec![(p.to_string(), i64::from(pr.low), i64::from(pr.high))],
        (p, None, _) => vec![(p.to_string(), 0, 65535)],
    }
}

/// Groups of at most [`AWS_RULES_PER_GROUP`] rules per direction: (inbound, outbound) each.
type AwsRule = (CloudRule, IpNet, (String, i64, i64));
type AwsGroups = Vec<(Vec<AwsRule>, Vec<AwsRule>)>;

fn aws_groups(rules: &[CloudRule]) -> AwsGroups {
    let (mut ins, mut outs): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
    for r in rules {
        for p in aws_protos(r) {
            for n in &r.nets {
                if r.inbound {
                    ins.push((r.clone(), *n, p.clone()));
                } else {
                    outs.push((r.clone(), *n, p.clone()));
                }
            }
        }
    }
    let groups = ins
        .len()
        .div_ceil(AWS_RULES_PER_GROUP)
        .max(outs.len().div_ceil(AWS_RULES_PER_GROUP))
        .max(1);
    (0..groups)
        .map(|g| {
            let take = |v: &Vec<AwsRule>| {
                v.iter()
                    .skip(g * AWS_RULES_PER_GROUP)
                    .take(AWS_RULES_PER_GROUP)
                    .cloned()
                    .collect()
            };
            (take(&ins), take(&outs))
        })
        .collect()
}

fn aws_quota(groups: &AwsGroups, target: &str) -> Vec<Diagnostic> {
    if groups.len() > AWS_GROUPS_PER_INTERFACE {
        vec![Diagnostic::warning(format!(
            "target {target}: the flows need {} security groups of {AWS_RULES_PER_GROUP} rules per direction, more than the {AWS_GROUPS_PER_INTERFACE} an interface takes by default",
            groups.len()
        ))
        .with_help("the template has them all; attach them only after raising the quota (security groups per network interface, up to 16), or give the role `internet` the ranges the appliance really needs (e.g. [\"0.0.0.0/0\", \"::/0\"])")]
    } else {
        Vec::new()
    }
}

fn aws_rule_json((r, n, (proto, from, to)): &AwsRule) -> Value {
    let mut v = json!({
        "IpProtocol": proto,
        "FromPort": from,
        "ToPort": to,
        "Description": format!("portolan {}", r.flows),
    });
    v[if r.v6 { "CidrIpv6" } else { "CidrIp" }] = json!(n.to_string());
    v
}

impl Target for AwsCloudformation {
    fn name(&self) -> &'static str {
        "aws-cloudformation"
    }
    fn description(&self) -> &'static str {
        "AWS CloudFormation template: security groups for the appliance's instance"
    }
    fn extension(&self) -> &'static str {
        "json"
    }
    fn capabilities(&self) -> Capabilities {
        caps(true)
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        let Lowered::Objects(o) = lowered else {
            return Rendered::empty();
        };
        let groups = aws_groups(&cloud_rules(o));
        let warnings = aws_quota(&groups, self.name());
        let mut resources = serde_json::Map::new();
        let mut outputs = serde_json::Map::new();
        let total = groups.len();
        for (i, (ins, outs)) in groups.iter().enumerate() {
            let id = format!("PortolanSecurityGroup{}", i + 1);
            let ingress: Vec<Value> = ins.iter().map(aws_rule_json).collect();
            let mut egress: Vec<Value> = outs.iter().map(aws_rule_json).collect();
            if egress.is_empty() {
                // Replaces the default allow-all egress with a rule that matches nothing.
                egress.push(json!({
                    "IpProtocol": "-1",
                    "CidrIp": "127.0.0.1/32",
                    "Description": "portolan: no outbound flow here (replaces the default allow-all egress)"
                }));
            }
            resources.insert(
                id.clone(),
                json!({
                    "Type": "AWS::EC2::SecurityGroup",
                    "Properties": {
                        "GroupDescription": format!("portolan {} ({} of {total})", plan.profile, i + 1),
                        "VpcId": {"Ref": "VpcId"},
                        "SecurityGroupIngress": ingress,
                        "SecurityGroupEgress": egress,
                        "Tags": [{"Key": "portolan:profile", "Value": plan.profile}],
                    }
                }),
            );
            outputs.insert(
                format!("{id}Id"),
                json!({"Description": "attach to the appliance's network interface", "Value": {"Ref": id}}),
            );
        }
        let doc = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": format!("portolan {}: security groups for the appliance; egress is only the planned flows (the default allow-all egress is replaced); DNS names are the site's pins, re-render when they change", plan.profile),
            "Parameters": {"VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "the appliance's VPC"}},
            "Resources": resources,
            "Outputs": outputs,
        });
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        Rendered {
            parts: vec![("template".into(), text.clone())],
            text,
            rule_count: groups.iter().map(|(a, b)| a.len() + b.len()).sum(),
            warnings,
        }
    }
}

impl Target for AwsTerraform {
    fn name(&self) -> &'static str {
        "aws-terraform"
    }
    fn description(&self) -> &'static str {
        "Terraform JSON: aws_security_group with aws_vpc_security_group_ingress/egress_rule"
    }
    fn extension(&self) -> &'static str {
        "tf.json"
    }
    fn capabilities(&self) -> Capabilities {
        caps(true)
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        let Lowered::Objects(o) = lowered else {
            return Rendered::empty();
        };
        let groups = aws_groups(&cloud_rules(o));
        let warnings = aws_quota(&groups, self.name());
        let mut sgs = serde_json::Map::new();
        let mut ingress = serde_json::Map::new();
        let mut egress = serde_json::Map::new();
        let mut count = 0;
        for (i, (ins, outs)) in groups.iter().enumerate() {
            let sg = format!("portolan_{}", i + 1);
            sgs.insert(
                sg.clone(),
                json!({
                    "name": format!("portolan-{}-{}", plan.profile, i + 1),
                    "description": format!("portolan {} ({} of {})", plan.profile, i + 1, groups.len()),
                    "vpc_id": "${var.vpc_id}",
                    "tags": {"portolan:profile": plan.profile},
                }),
            );
            for (list, map, dir) in [(ins, &mut ingress, "in"), (outs, &mut egress, "out")] {
                for (j, (r, n, (proto, from, to))) in list.iter().enumerate() {
                    count += 1;
                    let mut v = json!({
                        "security_group_id": format!("${{aws_security_group.{sg}.id}}"),
                        "ip_protocol": proto,
                        "from_port": from,
                        "to_port": to,
                        "description": format!("portolan {}", r.flows),
                    });
                    v[if r.v6 { "cidr_ipv6" } else { "cidr_ipv4" }] = json!(n.to_string());
                    map.insert(format!("{sg}_{dir}_{}", j + 1), v);
                }
            }
        }
        let mut resource = serde_json::Map::new();
        resource.insert("aws_security_group".into(), Value::Object(sgs));
        if !ingress.is_empty() {
            resource.insert(
                "aws_vpc_security_group_ingress_rule".into(),
                Value::Object(ingress),
            );
        }
        if !egress.is_empty() {
            resource.insert(
                "aws_vpc_security_group_egress_rule".into(),
                Value::Object(egress),
            );
        }
        let doc = json!({
            "//": format!("portolan {}: Terraform removes the default allow-all egress of a group it creates, so egress is only the planned flows; DNS names are the site's pins, re-render when they change", plan.profile),
            "variable": {"vpc_id": {"type": "string", "description": "the appliance's VPC"}},
            "resource": resource,
        });
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        Rendered {
            parts: vec![("terraform".into(), text.clone())],
            text,
            rule_count: count,
            warnings,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Azure

pub struct AzureNsg;

impl Target for AzureNsg {
    fn name(&self) -> &'static str {
        "azure-nsg"
    }
    fn description(&self) -> &'static str {
        "Azure ARM template: a network security group with priorities assigned in plan order"
    }
    fn extension(&self) -> &'static str {
        "json"
    }
    fn capabilities(&self) -> Capabilities {
        caps(false)
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        let Lowered::Objects(o) = lowered else {
            return Rendered::empty();
        };
        let rules = cloud_rules(o);
        let mut sec = Vec::new();
        let mut prio = (100, 100);
        let mut warnings = Vec::new();
        for r in &rules {
            let p = if r.inbound { &mut prio.0 } else { &mut prio.1 };
            if *p > 4000 {
                warnings.push(Diagnostic::warning(format!(
                    "target azure-nsg: rule {} ({}) left out: no priority left below the closing deny rules",
                    r.name, r.flows
                )));
                continue;
            }
            // ICMP flows never get here: the base leaves them out (no ICMP types).
            let (proto, ports) = match (r.protocol, r.ports) {
                (Protocol::Tcp, Some(pr)) => ("Tcp", pr.to_string()),
                (Protocol::Udp, Some(pr)) => ("Udp", pr.to_string()),
                _ => continue,
            };
            let nets: Vec<String> = r.nets.iter().map(ToString::to_string).collect();
            // The role `internet` as all of an address family is Azure's service tag
            // `Internet` (the public address space outside the virtual network: not wider).
            let everything = r.nets.len() == 1 && r.nets[0].prefix_len() == 0;
            let tag = (r.peer == "pt-role-internet" && everything).then_some("Internet");
            let mut props = json!({
                "priority": *p,
                "direction": if r.inbound { "Inbound" } else { "Outbound" },
                "access": "Allow",
                "protocol": proto,
                "sourcePortRange": "*",
                "destinationPortRange": ports,
                "description": format!("portolan {}", r.flows),
            });
            let (peer, own) = if r.inbound {
                ("sourceAddressPrefixes", "destinationAddressPrefix")
            } else {
                ("destinationAddressPrefixes", "sourceAddressPrefix")
            };
            match tag {
                Some(t) => props[peer.strip_suffix("es").unwrap_or(peer)] = json!(t),
                None => props[peer] = json!(nets),
            }
            props[own] = json!("*");
            *p += 10;
            sec.push(json!({
                "name": format!("{}-{}", r.name, if r.v6 { "v6" } else { "v4" }),
                "properties": props,
            }));
        }
        for (dir, name) in [
            ("Inbound", "pt-deny-inbound"),
            ("Outbound", "pt-deny-outbound"),
        ] {
            sec.push(json!({
                "name": name,
                "properties": {
                    "priority": 4096,
                    "direction": dir,
                    "access": "Deny",
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": "*",
                    "destinationAddressPrefix": "*",
                    "description": "portolan: what no planned flow allows",
                }
            }));
        }
        let doc = json!({
            "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
            "contentVersion": "1.0.0.0",
            "metadata": {"description": format!("portolan {}: network security group of the appliance; DNS names are the site's pins, re-render when they change", plan.profile)},
            "parameters": {"location": {"type": "string", "defaultValue": "[resourceGroup().location]"}},
            "resources": [{
                "type": "Microsoft.Network/networkSecurityGroups",
                "apiVersion": "2023-09-01",
                "name": format!("portolan-{}", plan.profile),
                "location": "[parameters('location')]",
                "properties": {"securityRules": sec},
            }],
        });
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        Rendered {
            parts: vec![("template".into(), text.clone())],
            rule_count: sec.len(),
            text,
            warnings,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Google Cloud

pub struct Gcp;
pub struct GcpTerraform;

/// GCP rules: (name, direction, ranges, protocol:ports, flows); ranges split by
/// [`GCP_RANGES_PER_RULE`], one family each.
fn gcp_rules(rules: &[CloudRule]) -> Vec<(String, bool, Vec<String>, String, String)> {
    let mut out = Vec::new();
    for r in rules {
        // ICMP flows never get here: the base leaves them out (no ICMP types in GCP rules).
        let allow = match (r.protocol, r.ports) {
            (Protocol::Tcp | Protocol::Udp, Some(pr)) => format!("{}:{pr}", r.protocol),
            _ => continue,
        };
        for (k, chunk) in r.nets.chunks(GCP_RANGES_PER_RULE).enumerate() {
            out.push((
                format!(
                    "{}-{}{}",
                    r.name,
                    if r.v6 { "v6" } else { "v4" },
                    if k > 0 {
                        format!("-{}", k + 1)
                    } else {
                        String::new()
                    }
                ),
                r.inbound,
                chunk.iter().map(ToString::to_string).collect(),
                allow.clone(),
                r.flows.clone(),
            ));
        }
    }
    out
}

impl Target for Gcp {
    fn name(&self) -> &'static str {
        "gcp"
    }
    fn description(&self) -> &'static str {
        "gcloud compute firewall-rules commands for instances tagged portolan-appliance"
    }
    fn extension(&self) -> &'static str {
        "sh"
    }
    fn capabilities(&self) -> Capabilities {
        caps(false)
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        let Lowered::Objects(o) = lowered else {
            return Rendered::empty();
        };
        let rules = cloud_rules(o);
        let mut out = note(
            plan,
            "gcp",
            "NETWORK=my-vpc sh FILE (needs gcloud and a project); tag the appliance's instance portolan-appliance",
        );
        out.push_str(
            "set -eu\n: \"${NETWORK:?set NETWORK to the VPC network of the appliance}\"\n",
        );
        let list = gcp_rules(&rules);
        for (i, (name, inbound, ranges, allow, flows)) in list.iter().enumerate() {
            let (dir, key) = if *inbound {
                ("INGRESS", "source-ranges")
            } else {
                ("EGRESS", "destination-ranges")
            };
            let _ = writeln!(
                out,
                "gcloud compute firewall-rules create {name} --network=\"$NETWORK\" --direction={dir} --action=ALLOW --rules={allow} --{key}={} --target-tags=portolan-appliance --priority={} --description=\"portolan {flows}\"",
                ranges.join(","),
                1000 + i
            );
        }
        for (name, range) in [
            ("pt-deny-egress-v4", "0.0.0.0/0"),
            ("pt-deny-egress-v6", "::/0"),
        ] {
            let _ = writeln!(
                out,
                "gcloud compute firewall-rules create {name} --network=\"$NETWORK\" --direction=EGRESS --action=DENY --rules=all --destination-ranges={range} --target-tags=portolan-appliance --priority=65000 --description=\"portolan: what no planned flow allows\""
            );
        }
        Rendered {
            parts: vec![("gcloud".into(), out.clone())],
            text: out,
            rule_count: list.len(),
            warnings: Vec::new(),
        }
    }
}

impl Target for GcpTerraform {
    fn name(&self) -> &'static str {
        "gcp-terraform"
    }
    fn description(&self) -> &'static str {
        "Terraform JSON: google_compute_firewall rules for instances tagged portolan-appliance"
    }
    fn extension(&self) -> &'static str {
        "tf.json"
    }
    fn capabilities(&self) -> Capabilities {
        caps(false)
    }
    fn render(&self, plan: &Plan, lowered: &Lowered, _opts: &Options) -> Rendered {
        let Lowered::Objects(o) = lowered else {
            return Rendered::empty();
        };
        let rules = cloud_rules(o);
        let list = gcp_rules(&rules);
        let mut res = serde_json::Map::new();
        for (i, (name, inbound, ranges, allow, flows)) in list.iter().enumerate() {
            let (proto, ports) = match allow.split_once(':') {
                Some((p, r)) => (p.to_string(), Some(r.to_string())),
                None => (allow.clone(), None),
            };
            let mut allow_block = json!({"protocol": proto});
            if let Some(p) = ports {
                allow_block["ports"] = json!([p]);
            }
            let mut v = json!({
                "name": name,
                "network": "${var.network}",
                "direction": if *inbound { "INGRESS" } else { "EGRESS" },
                "priority": 1000 + i,
                "allow": [allow_block],
                "target_tags": ["portolan-appliance"],
                "description": format!("portolan {flows}"),
            });
            v[if *inbound {
                "source_ranges"
            } else {
                "destination_ranges"
            }] = json!(ranges);
            res.insert(name.replace('-', "_"), v);
        }
        for (name, range) in [
            ("pt-deny-egress-v4", "0.0.0.0/0"),
            ("pt-deny-egress-v6", "::/0"),
        ] {
            res.insert(
                name.replace('-', "_"),
                json!({
                    "name": name,
                    "network": "${var.network}",
                    "direction": "EGRESS",
                    "priority": 65000,
                    "deny": [{"protocol": "all"}],
                    "destination_ranges": [range],
                    "target_tags": ["portolan-appliance"],
                    "description": "portolan: what no planned flow allows",
                }),
            );
        }
        let doc = json!({
            "//": format!("portolan {}: VPC firewall rules of the appliance (instances tagged portolan-appliance); DNS names are the site's pins, re-render when they change", plan.profile),
            "variable": {"network": {"type": "string", "description": "the appliance's VPC network"}},
            "resource": {"google_compute_firewall": res},
        });
        let text = format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        Rendered {
            parts: vec![("terraform".into(), text.clone())],
            text,
            rule_count: list.len(),
            warnings: Vec::new(),
        }
    }
}
