//! The cloud targets, checked by the clouds' own tools (from the virtual environment
//! scripts/tool-venv.sh makes; the README's test command runs it): `cfn-lint` on the CloudFormation template, Azure's SDK models
//! (`azure-mgmt-network`) deserializing and validating every security rule, and the checkov
//! misconfiguration scanner on the CloudFormation, Terraform and ARM outputs. checkov may
//! only report what a flow truly needs (port 80 open to the internet where a profile receives
//! HTTP from it) and that the groups are not attached to an instance (the template does not
//! know the appliance's instance: attaching is the admin's step).
//!
//! The sites are the `*-cloud` golden cases: the internet is everything outside the VPC and
//! every DNS name is pinned.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use portolan_core::model::Protocol;
use portolan_core::plan::{Direction, Plan};
use portolan_core::{catalog, plan, render, site, Source};

mod tools;

fn plans() -> Vec<(String, Plan)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden");
    catalog::ids()
        .into_iter()
        .map(|id| {
            let text = std::fs::read_to_string(root.join(format!("{id}-cloud/site.toml")))
                .expect("cloud case");
            let (s, _) = site::parse(&Source::new("site.toml", text)).expect("site");
            let prof = catalog::load(id).expect("id").expect("profile");
            (id.to_string(), plan::build(&prof, &s, None).expect("plan"))
        })
        .collect()
}

/// Does the plan receive TCP on `port` from the internet?
fn inbound_from_internet(plan: &Plan, port: u16) -> bool {
    plan.flows.iter().any(|f| {
        f.direction == Direction::Inbound
            && f.protocol == Protocol::Tcp
            && f.ports.iter().any(|r| r.contains(port))
            && f.source.peers.iter().any(|p| p.set == "role:internet")
    })
}

fn render(plan: &Plan, target: &str) -> String {
    let out = render::render(plan, render::target(target).expect("target"));
    assert!(!out.text.is_empty(), "{target}: {:?}", out.warnings);
    out.text
}

#[test]
fn cloud_outputs_pass_the_clouds_own_tools() {
    if tools::bin("checkov").is_none() {
        return;
    }
    let venv = tools::venv();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cloud-check");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut problems = Vec::new();
    for (id, plan) in plans() {
        // cfn-lint
        let cfn = dir.join(format!("{id}-cfn.json"));
        std::fs::write(&cfn, render(&plan, "aws-cloudformation")).expect("write");
        let o = Command::new(venv.join("bin/cfn-lint"))
            .arg(&cfn)
            .output()
            .expect("cfn-lint");
        if !o.status.success() {
            problems.push(format!(
                "{id}: cfn-lint: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }

        // Azure's models.
        let arm = dir.join(format!("{id}-arm.json"));
        std::fs::write(&arm, render(&plan, "azure-nsg")).expect("write");
        // Every property must be one the model knows (read back through its attribute), and
        // the enumerations must be values of Azure's enums.
        let script = r#"
import json, re, sys
from azure.mgmt.network.models import (SecurityRule, SecurityRuleAccess,
    SecurityRuleDirection, SecurityRuleProtocol)
doc = json.load(open(sys.argv[1]))
rules = doc["resources"][0]["properties"]["securityRules"]
bad = 0
for r in rules:
    m = SecurityRule(r)
    problems = []
    for key, value in r["properties"].items():
        attr = re.sub(r"([A-Z])", lambda x: "_" + x.group(1).lower(), key)
        if getattr(m, attr, None) is None:
            problems.append("unknown or empty " + key)
    for attr, enum in (("protocol", SecurityRuleProtocol), ("access", SecurityRuleAccess),
                       ("direction", SecurityRuleDirection)):
        if not isinstance(getattr(m, attr), enum):
            problems.append(attr + " not an Azure value: " + repr(getattr(m, attr)))
    if not (isinstance(m.priority, int) and 100 <= m.priority <= 4096) or not m.name:
        problems.append("priority or name")
    if problems:
        print("bad rule", r.get("name"), problems)
        bad += 1
print(len(rules), "rules")
sys.exit(1 if bad or not rules else 0)
"#;
        let o = Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .arg(&arm)
            .output()
            .expect("python");
        if !o.status.success() {
            problems.push(format!(
                "{id}: azure models: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }

        // checkov
        let tf = dir.join(format!("{id}-aws.tf.json"));
        std::fs::write(&tf, render(&plan, "aws-terraform")).expect("write");
        let gtf = dir.join(format!("{id}-gcp.tf.json"));
        std::fs::write(&gtf, render(&plan, "gcp-terraform")).expect("write");
        let mut allowed: BTreeSet<&str> = BTreeSet::from(["CKV2_AWS_5"]);
        if inbound_from_internet(&plan, 80) {
            allowed.extend(["CKV_AWS_260", "CKV_GCP_106"]);
        }
        for (file, framework) in [
            (&cfn, "cloudformation"),
            (&arm, "arm"),
            (&tf, "terraform_json"),
            (&gtf, "terraform_json"),
        ] {
            let o = Command::new(venv.join("bin/checkov"))
                .arg("-f")
                .arg(file)
                .args(["--framework", framework, "-o", "json", "--quiet"])
                .output()
                .expect("checkov");
            let text = String::from_utf8_lossy(&o.stdout);
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{id} {framework}: checkov output ({e}): {text}"));
            let reports = match v {
                serde_json::Value::Array(a) => a,
                other => vec![other],
            };
            let mut parsed = 0;
            for r in &reports {
                parsed += r["summary"]["resource_count"].as_u64().unwrap_or(0);
                for c in r["results"]["failed_checks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    let cid = c["check_id"].as_str().unwrap_or("");
                    if !allowed.contains(cid) {
                        problems.push(format!(
                            "{id} {framework}: checkov {cid}: {} ({})",
                            c["check_name"], c["resource"]
                        ));
                    }
                }
            }
            if parsed == 0 && !text.contains("\"passed\"") {
                problems.push(format!(
                    "{id} {framework}: checkov read no resource: {text}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
