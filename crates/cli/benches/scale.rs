//! Scale benchmark: a generated 10,000-flow profile through parse, plan and render (every
//! target; the vendor ones behind a gateway), then the rendered ruleset loaded with `nft -f`
//! in a fresh network namespace.
//!
//! Run: `cargo bench --bench scale` (as root for the load figures). Prints one line per figure.
//! The profile is deterministic (a fixed-seed generator), so runs are comparable.

use std::process::Command;
use std::time::Instant;

use portolan_core::{plan, profile, render, site, Source};

const FLOWS: usize = 10_000;
const RUNS: usize = 5;

/// Two shapes: flows spread over the peers a vendor table has (tens of names and roles), and
/// an adversarial spread over hundreds of peers. Rules grow with distinct peers, not flows.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    // (name, DNS names, roles, literal networks)
    ("vendor-like", 40, 20, 10),
    ("many-peers", 300, 40, 200),
];

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[allow(non_snake_case)]
fn generate(DNS_NAMES: usize, ROLES: usize, NETWORKS: usize) -> (String, String) {
    let mut r = Rng(0x5eed_1234_abcd_0001);
    let mut p = String::from("id = \"scale\"\nname = \"Scale test\"\nvendor = \"bench\"\n");
    for i in 0..ROLES {
        p.push_str(&format!("[roles.peer-{i}]\ndescription = \"generated\"\n"));
    }
    p.push_str("[features.extra]\ndescription = \"generated\"\n");
    let mut s = String::from(
        "profile = \"scale.toml\"\nfeatures = \"all\"\n[appliance]\naddresses = [\"192.0.2.10\", \"2001:db8::10\"]\n[roles]\ninternal = [\"10.0.0.0/8\"]\n",
    );
    for i in 0..ROLES {
        s.push_str(&format!(
            "peer-{i} = [\"10.{}.{}.0/24\", \"2001:db8:{i:x}::/64\"]\n",
            i / 200,
            i % 200
        ));
    }
    s.push_str("[hosts]\n");
    for i in 0..DNS_NAMES {
        s.push_str(&format!(
            "\"host{i}.vendor.example\" = [\"198.51.{}.{}\"]\n",
            100 + i / 250,
            1 + i % 250
        ));
    }
    for i in 0..FLOWS {
        let peer = match r.below(3) {
            0 => format!("host{}.vendor.example", r.below(DNS_NAMES)),
            1 => format!("peer-{}", r.below(ROLES)),
            _ => format!("203.0.{}.0/24", r.below(NETWORKS)),
        };
        let (from, to) = if r.below(4) == 0 {
            (peer, "appliance".to_string())
        } else {
            ("appliance".to_string(), peer)
        };
        let proto = ["tcp", "udp"][r.below(2)];
        let port = 1 + r.below(60_000);
        let ports = if r.below(10) == 0 {
            format!("\"{port}-{}\"", port + r.below(100))
        } else {
            port.to_string()
        };
        let feature = if r.below(5) == 0 {
            "feature = \"extra\"\n"
        } else {
            ""
        };
        p.push_str(&format!(
            "[[flows]]\nid = \"f{i}\"\nfunction = \"generated flow {i}\"\nfrom = \"{from}\"\nto = \"{to}\"\nprotocols = [\"{proto}\"]\nports = [{ports}]\n{feature}"
        ));
    }
    (p, s)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    for &(shape, dns, roles, nets) in SHAPES {
        println!("== shape {shape}");
        run(shape, dns, roles, nets);
    }
}

#[allow(non_snake_case)]
fn run(shape: &str, DNS_NAMES: usize, ROLES: usize, NETWORKS: usize) {
    let (ptext, stext) = generate(DNS_NAMES, ROLES, NETWORKS);
    let mut parse_ms = Vec::new();
    let mut plan_ms = Vec::new();
    let mut render_ms = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let (profile, _) =
            profile::parse(&Source::new("scale.toml", ptext.as_str())).expect("profile parses");
        let (site, _) =
            site::parse(&Source::new("site.toml", stext.as_str())).expect("site parses");
        let t1 = Instant::now();
        let plan = plan::build(&profile, &site, None).expect("plan builds");
        let t2 = Instant::now();
        let out = render::render(&plan, render::target("nftables").expect("target"));
        let t3 = Instant::now();
        parse_ms.push((t1 - t0).as_secs_f64() * 1e3);
        plan_ms.push((t2 - t1).as_secs_f64() * 1e3);
        render_ms.push((t3 - t2).as_secs_f64() * 1e3);
        last = Some((plan.flows.len(), out));
    }
    let Some((planned, out)) = last else { return };
    println!("profile: {FLOWS} flows over {DNS_NAMES} DNS names, {ROLES} roles, {NETWORKS} networks ({} bytes of TOML)", ptext.len());
    println!("planned flows:          {planned}");
    println!("parse (median of {RUNS}):  {:.1} ms", median(parse_ms));
    println!("plan:                   {:.1} ms", median(plan_ms));
    println!("render nftables:        {:.1} ms", median(render_ms));
    println!(
        "rendered rules:         {} (for {planned} planned flows)",
        out.rule_count
    );
    println!("rendered size:          {} bytes", out.text.len());

    let ipt = {
        let t = Instant::now();
        let (profile, _) =
            profile::parse(&Source::new("scale.toml", ptext.as_str())).expect("parse");
        let (site, _) = site::parse(&Source::new("site.toml", stext.as_str())).expect("parse");
        let plan = plan::build(&profile, &site, None).expect("plan");
        let o = render::render(&plan, render::target("iptables").expect("target"));
        (t.elapsed().as_secs_f64() * 1e3, o)
    };
    println!(
        "parse+plan+render iptables: {:.1} ms, {} iptables lines",
        ipt.0,
        ipt.1.text.lines().filter(|l| l.starts_with("-A")).count()
    );

    // Every target for a firewall in front of the appliance: the same profile, gateway site.
    let gw = format!(
        "{stext}[placement]\nmode = \"gateway\"\nappliance_interface = \"dmz0\"\ndefault_interface = \"lan0\"\n[placement.zones]\ninternet = \"wan0\"\n"
    );
    let (profile, _) = profile::parse(&Source::new("scale.toml", ptext.as_str())).expect("parse");
    let (gsite, _) = site::parse(&Source::new("site.toml", gw.as_str())).expect("gateway site");
    let gplan = plan::build(&profile, &gsite, None).expect("plan");
    for t in render::TARGETS {
        if !t.capabilities().gateway {
            continue;
        }
        let mut ms = Vec::new();
        let mut last = None;
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let o = render::render(&gplan, *t);
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
            last = Some(o);
        }
        if let Some(o) = last {
            println!(
                "render {:<10} (gateway): {:>7.1} ms, {:>9} bytes, {} rules/policies",
                t.name(),
                median(ms),
                o.text.len(),
                o.rule_count
            );
        }
    }

    // The other targets for the appliance's own host (and its cloud): same profile, host site.
    let (hsite, _) = site::parse(&Source::new("site.toml", stext.as_str())).expect("site");
    let hplan = plan::build(&profile, &hsite, None).expect("plan");
    for t in render::TARGETS {
        if !t.capabilities().host || matches!(t.name(), "nftables" | "iptables") {
            continue;
        }
        let mut ms = Vec::new();
        let mut last = None;
        for _ in 0..RUNS {
            let t0 = Instant::now();
            let o = render::render(&hplan, *t);
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
            last = Some(o);
        }
        if let Some(o) = last {
            println!(
                "render {:<18} (host): {:>7.1} ms, {:>9} bytes, {} rules",
                t.name(),
                median(ms),
                o.text.len(),
                o.rule_count
            );
        }
    }

    // Load time in a namespace (root only).
    let ns = format!("ptbench{}{}", std::process::id(), &shape[..1]);
    if Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .is_ok_and(|s| s.success())
    {
        let path = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&path, &out.text).expect("write");
        let mut loads = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let st = Command::new("ip")
                .args(["netns", "exec", &ns, "nft", "-f"])
                .arg(&path)
                .status()
                .expect("nft");
            assert!(st.success(), "nft -f failed");
            loads.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "nft -f load (median of 3, replacing the table each time): {:.0} ms",
            median(loads)
        );
        let _ = std::fs::remove_file(&path);
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    } else {
        println!("nft -f load: not measured (needs root to create a network namespace)");
    }
}
