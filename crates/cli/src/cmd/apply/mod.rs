//! `portolan apply`: load the rules with a net under them.
//!
//! Check (a scratch network namespace, and the target's own check against this ruleset), show
//! what changes against what is loaded (both as the target's tools list them, so formatting
//! never shows as a change), refuse a ruleset that would drop the connections managing this
//! host (judged by the audit engine on the whole ruleset before and after), load keeping the
//! DNS-filled elements (as `load` does), and with `--confirm` leave a detached helper that
//! restores the previous state unless the apply is confirmed in time. The target-specific
//! parts are a [`Way`] each: [`nft`] and [`ipt`].
//!
//! Confirmation state lives in the run directory (`/run/portolan`, or `PORTOLAN_RUN_DIR`):
//! `pending.json` names the apply waiting; whoever renames it first, the confirmation
//! (`confirmed-TOKEN.json`) or the helper at the deadline (`claimed-TOKEN.json`), decides. The
//! helper writes `outcome-TOKEN.json` after its rollback.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod ipt;
mod nft;

use portolan_core::audit::{eval::Kind, ruleset::Hook, ruleset::Ruleset, Decider, Packet};
use portolan_core::diag::Diagnostic;
use portolan_core::plan::Plan;
use portolan_core::render::{self, Rendered};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::args::{ApplyArgs, ApplyRollbackArgs, SetTarget, TextFormat};
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_WARNINGS};

/// Where the confirmation state is kept (a tmpfs: a reboot forgets a pending apply, and the
/// rules it loaded are gone with the reboot too).
pub const RUN_DIR: &str = "/run/portolan";
/// Confirmation window when standard input is a terminal and `--confirm` is not given.
pub const DEFAULT_CONFIRM: Duration = Duration::from_secs(60);

fn run_dir() -> PathBuf {
    std::env::var_os("PORTOLAN_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(RUN_DIR))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The apply waiting for confirmation.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    token: String,
    /// `nftables` or `iptables`: how the rollback script is run.
    target: String,
    /// Milliseconds since the epoch.
    deadline_ms: u64,
    rollback: PathBuf,
}

/// A table as `nft -s list table` prints it, in comparable parts.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Listing {
    pub exists: bool,
    /// Per chain, its lines in order (the `type ... hook ...; policy ...;` line included).
    pub chains: BTreeMap<String, Vec<String>>,
    /// Per set, its definition lines without the elements.
    pub sets: BTreeMap<String, Vec<String>>,
    /// Per static set, its elements.
    pub elements: BTreeMap<String, BTreeSet<String>>,
}

/// What applying changes, per part.
#[derive(Debug, Default, Serialize)]
struct Changes {
    table_created: bool,
    rules_added: Vec<(String, String)>,
    rules_removed: Vec<(String, String)>,
    /// Chains whose rules are the same but in another order.
    reordered: Vec<String>,
    sets_added: Vec<String>,
    sets_removed: Vec<String>,
    sets_changed: Vec<String>,
    elements_added: Vec<(String, String)>,
    elements_removed: Vec<(String, String)>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        !self.table_created
            && self.rules_added.is_empty()
            && self.rules_removed.is_empty()
            && self.reordered.is_empty()
            && self.sets_added.is_empty()
            && self.sets_removed.is_empty()
            && self.sets_changed.is_empty()
            && self.elements_added.is_empty()
            && self.elements_removed.is_empty()
    }
}

fn multiset_minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&String, usize> = BTreeMap::new();
    for x in b {
        *left.entry(x).or_default() += 1;
    }
    let mut out = Vec::new();
    for x in a {
        match left.get_mut(x) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(x.clone()),
        }
    }
    out
}

fn compare(old: &Listing, new: &Listing) -> Changes {
    let mut c = Changes {
        table_created: !old.exists,
        ..Changes::default()
    };
    let empty = Vec::new();
    let chains: BTreeSet<&String> = old.chains.keys().chain(new.chains.keys()).collect();
    for ch in chains {
        let (o, n) = (
            old.chains.get(ch).unwrap_or(&empty),
            new.chains.get(ch).unwrap_or(&empty),
        );
        let added = multiset_minus(n, o);
        let removed = multiset_minus(o, n);
        if added.is_empty() && removed.is_empty() && o != n {
            c.reordered.push(ch.clone());
        }
        c.rules_added
            .extend(added.into_iter().map(|r| (ch.clone(), r)));
        c.rules_removed
            .extend(removed.into_iter().map(|r| (ch.clone(), r)));
    }
    for (s, def) in &new.sets {
        match old.sets.get(s) {
            None => c.sets_added.push(s.clone()),
            Some(d) if d != def => c.sets_changed.push(s.clone()),
            _ => {}
        }
    }
    for s in old.sets.keys().filter(|s| !new.sets.contains_key(*s)) {
        c.sets_removed.push(s.clone());
    }
    let none = BTreeSet::new();
    // Elements of sets that come or go are counted with the set, not listed one by one.
    let sets: BTreeSet<&String> = old
        .elements
        .keys()
        .chain(new.elements.keys())
        .filter(|s| old.sets.contains_key(*s) && new.sets.contains_key(*s))
        .collect();
    for s in sets {
        let (o, n) = (
            old.elements.get(s).unwrap_or(&none),
            new.elements.get(s).unwrap_or(&none),
        );
        c.elements_added
            .extend(n.difference(o).map(|e| (s.clone(), e.clone())));
        c.elements_removed
            .extend(o.difference(n).map(|e| (s.clone(), e.clone())));
    }
    c
}

fn print_changes(c: &Changes, new: &Listing) {
    if c.is_empty() {
        outln!("no change: the loaded table already has these rules and sets");
        return;
    }
    if c.table_created {
        outln!("nothing of portolan's is loaded yet: all of it is new");
    }
    for (ch, r) in &c.rules_removed {
        outln!("- chain {ch}: {r}");
    }
    for (ch, r) in &c.rules_added {
        outln!("+ chain {ch}: {r}");
    }
    for ch in &c.reordered {
        outln!("~ chain {ch}: same rules, another order");
    }
    for s in &c.sets_removed {
        outln!("- set {s}");
    }
    for s in &c.sets_added {
        match new.elements.get(s).map(BTreeSet::len) {
            Some(n) => outln!("+ set {s} ({n} static elements)"),
            None => outln!("+ set {s}"),
        }
    }
    for s in &c.sets_changed {
        outln!("~ set {s}: definition changed");
    }
    for (s, e) in &c.elements_removed {
        outln!("- element {e} in set {s}");
    }
    for (s, e) in &c.elements_added {
        outln!("+ element {e} in set {s}");
    }
}

/// A connection that manages this host.
#[derive(Debug, Clone, Serialize)]
struct Management {
    peer: SocketAddr,
    local: SocketAddr,
    /// `SSH_CONNECTION` or `sshd`.
    source: &'static str,
}

fn sockaddr(s: &str) -> Option<SocketAddr> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.split('%').next()?;
    let ip: IpAddr = host.parse().ok()?;
    // IPv4-mapped IPv6 (a dual-stack listener) is the IPv4 connection.
    let ip = match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

/// `ss` lines: the socket addresses and the process names they list.
fn ss(args: &[&str]) -> Vec<(Vec<SocketAddr>, Vec<String>)> {
    let Ok(out) = Command::new("ss").args(args).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let addrs = l.split_whitespace().filter_map(sockaddr).collect();
            let names = l
                .split('"')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, n)| n.to_string())
                .collect();
            (addrs, names)
        })
        .collect()
}

/// The SSH session running apply, and every established connection to a port sshd listens on.
fn management() -> Vec<Management> {
    let mut out: Vec<Management> = Vec::new();
    if let Ok(v) = std::env::var("SSH_CONNECTION") {
        let f: Vec<&str> = v.split_whitespace().collect();
        if let [cip, cport, sip, sport] = f[..] {
            if let (Ok(c), Ok(cp), Ok(s), Ok(sp)) = (
                cip.parse::<IpAddr>(),
                cport.parse::<u16>(),
                sip.parse::<IpAddr>(),
                sport.parse::<u16>(),
            ) {
                out.push(Management {
                    peer: SocketAddr::new(c, cp),
                    local: SocketAddr::new(s, sp),
                    source: "SSH_CONNECTION",
                });
            }
        }
    }
    let ports: BTreeSet<u16> = ss(&["-Htlnp"])
        .into_iter()
        .filter(|(_, names)| names.iter().any(|n| n == "sshd"))
        .filter_map(|(a, _)| a.first().map(SocketAddr::port))
        .collect();
    if !ports.is_empty() {
        for (a, _) in ss(&["-Htn", "state", "established"]) {
            if let [local, peer, ..] = a[..] {
                if ports.contains(&local.port())
                    && !out.iter().any(|m| m.local == local && m.peer == peer)
                {
                    out.push(Management {
                        peer,
                        local,
                        source: "sshd",
                    });
                }
            }
        }
    }
    out
}

/// The interface a packet from `peer` arrives on (the route back to it).
fn iif_for(peer: IpAddr) -> String {
    let out = Command::new("ip")
        .args(["-o", "route", "get", &peer.to_string()])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if text.starts_with("local ") {
        return "lo".into();
    }
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "dev" {
            return words.next().unwrap_or("").to_string();
        }
    }
    String::new()
}

/// Run the shell command `cmd` in a scratch network namespace (`unshare -n`) with `script`
/// on its standard input; its standard output, or its error output when it fails.
pub(crate) fn in_scratch_namespace(cmd: &str, script: &str) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(script.as_bytes())
            .map_err(|e| format!("writing the script: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("the script in a scratch namespace: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// What a ruleset does with a new connection of `m`.
fn judge(rs: &Ruleset, m: &Management, iif: &str) -> Kind {
    let names = vec![iif.to_string(), "lo".to_string()];
    Decider::new(rs, &names).decide(
        &[Hook::Prerouting, Hook::Input],
        &Packet {
            iif: iif.to_string(),
            oif: String::new(),
            src: m.peer.ip(),
            dst: m.local.ip(),
            proto: 6,
            sport: m.peer.port(),
            dport: m.local.port(),
            icmp_type: 0,
        },
    )
}

/// A firewall target as apply drives it: the shared steps (diff, lockout, confirmation) call
/// these, in this order.
pub(crate) trait Way {
    fn name(&self) -> &'static str;
    /// The script that loads the rules here, keeping what sync and dns-proxy wrote; and a
    /// sentence on what it keeps.
    fn script(&self, plan: &Plan, rendered: &Rendered) -> Result<(String, String), String>;
    /// Load the script into a scratch network namespace; the listing there.
    fn scratch(&mut self, script: &str) -> Result<Listing, String>;
    /// Check the script against this host's ruleset, changing nothing.
    fn check(&self, script: &str, rendered: &Rendered) -> Result<(), String>;
    /// What portolan has loaded here now.
    fn live(&self) -> Result<Listing, String>;
    /// The whole ruleset now, and with the new rules in place of portolan's (after
    /// [`Way::scratch`]), as the audit engine reads them.
    fn rulesets(&self) -> Result<(Ruleset, Ruleset), String>;
    /// A script that brings back what portolan has loaded now.
    fn rollback(&self) -> Result<String, String>;
    /// Run a script of this target (the load, or a rollback).
    fn run(&self, script: &str) -> Result<(), String>;
}

fn way(target: SetTarget) -> Box<dyn Way> {
    match target {
        SetTarget::Nftables => Box::<nft::Nft>::default(),
        SetTarget::Iptables => Box::<ipt::Ipt>::default(),
    }
}

/// The flows that would let `m` in, among those of `all` (the plan with every feature on)
/// that `plan` leaves out: `flow `id` (feature `f`)`.
fn missing_flows(all: &Plan, plan: &Plan, m: &Management) -> Vec<String> {
    let ip = m.peer.ip();
    let holds = |set: &str| {
        all.set(set).is_some_and(|s| {
            s.v4.iter()
                .any(|n| matches!(ip, IpAddr::V4(a) if n.contains(&a)))
                || s.v6
                    .iter()
                    .any(|n| matches!(ip, IpAddr::V6(a) if n.contains(&a)))
        })
    };
    all.flows
        .iter()
        .filter(|f| {
            !plan
                .flows
                .iter()
                .any(|p| p.id == f.id && p.protocol == f.protocol)
        })
        .filter(|f| f.protocol == portolan_core::model::Protocol::Tcp)
        .filter(|f| {
            f.ports
                .iter()
                .any(|r| r.low <= m.local.port() && m.local.port() <= r.high)
        })
        .filter(|f| f.destination.peers.iter().any(|p| p.set == "appliance"))
        .filter(|f| f.source.peers.iter().any(|p| holds(&p.set)))
        .map(|f| match &f.feature {
            Some(x) => format!("flow `{}` (feature `{x}`)", f.id),
            None => format!("flow `{}`", f.id),
        })
        .collect()
}

fn read_pending(dir: &Path) -> Option<Pending> {
    let t = std::fs::read_to_string(dir.join("pending.json")).ok()?;
    serde_json::from_str(&t).ok()
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Take the pending apply: rename `pending.json` to `{what}-TOKEN.json`. Only one taker wins.
fn claim(dir: &Path, token: &str, what: &str) -> bool {
    match read_pending(dir) {
        Some(p) if p.token == token => std::fs::rename(
            dir.join("pending.json"),
            dir.join(format!("{what}-{token}.json")),
        )
        .is_ok(),
        _ => false,
    }
}

fn outcome(dir: &Path, token: &str) -> Option<Value> {
    let t = std::fs::read_to_string(dir.join(format!("outcome-{token}.json"))).ok()?;
    serde_json::from_str(&t).ok()
}

/// `apply --confirm-now`.
fn confirm_now(rep: &mut Reporter) -> i32 {
    let dir = run_dir();
    let Some(p) = read_pending(&dir) else {
        eprintln!(
            "no apply awaits confirmation (nothing in {})",
            dir.display()
        );
        return EXIT_WARNINGS;
    };
    if claim(&dir, &p.token, "confirmed") {
        eprintln!("confirmed: the rules loaded by apply {} stay", p.token);
        EXIT_OK
    } else {
        rep.emit(&Diagnostic::error(
            "too late: the rollback helper has already taken this apply back",
        ));
        EXIT_WARNINGS
    }
}

/// The hidden `apply-rollback` helper: wait for the deadline, then restore unless confirmed.
pub fn rollback_helper(args: &ApplyRollbackArgs) -> i32 {
    let dir = run_dir();
    loop {
        let Some(p) = read_pending(&dir).filter(|p| p.token == args.token) else {
            return EXIT_OK; // confirmed (or another apply's business)
        };
        let now = now_ms();
        if now < p.deadline_ms {
            std::thread::sleep(Duration::from_millis((p.deadline_ms - now).min(100)));
            continue;
        }
        if !claim(&dir, &p.token, "claimed") {
            return EXIT_OK;
        }
        let target = if p.target == "iptables" {
            SetTarget::Iptables
        } else {
            SetTarget::Nftables
        };
        let result = std::fs::read_to_string(&p.rollback)
            .map_err(|e| format!("{}: {e}", p.rollback.display()))
            .and_then(|s| way(target).run(&s));
        let doc = match &result {
            Ok(()) => json!({"outcome": "rolled-back", "at_ms": now_ms()}),
            Err(e) => json!({"outcome": "rollback-failed", "error": e, "at_ms": now_ms()}),
        };
        let _ = write_atomic(
            &dir.join(format!("outcome-{}.json", p.token)),
            &doc.to_string(),
        );
        return if result.is_ok() {
            EXIT_OK
        } else {
            EXIT_REFUSED
        };
    }
}

/// Start the helper so that nothing this session does can stop it.
fn spawn_helper(token: &str) -> Result<&'static str, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = run_dir();
    // systemd-run puts the helper outside the login session (logind may kill a session's
    // processes when it ends), but only makes sense in the host's own network namespace.
    let same_netns =
        std::fs::read_link("/proc/self/ns/net").ok() == std::fs::read_link("/proc/1/ns/net").ok();
    if Path::new("/run/systemd/system").exists() && same_netns {
        let st = Command::new("systemd-run")
            .args([
                "--quiet",
                "--collect",
                &format!("--unit=portolan-rollback-{token}"),
                &format!("--setenv=PORTOLAN_RUN_DIR={}", dir.display()),
            ])
            .arg(&exe)
            .args(["apply-rollback", "--token", token])
            .stdin(Stdio::null())
            .status();
        if st.is_ok_and(|s| s.success()) {
            return Ok("a transient systemd unit");
        }
    }
    use std::os::unix::process::CommandExt;
    Command::new(&exe)
        .args(["apply-rollback", "--token", token])
        .env("PORTOLAN_RUN_DIR", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the rollback helper: {e}"))?;
    Ok("a detached helper process")
}

fn confirm_window(args: &ApplyArgs) -> Result<Option<Duration>, Diagnostic> {
    match args.confirm.as_deref().map(str::trim) {
        None if std::io::stdin().is_terminal() => Ok(Some(DEFAULT_CONFIRM)),
        None => Ok(None),
        Some("0" | "off" | "0s") => Ok(None),
        Some(s) => crate::cmd::probe::parse_duration(s).map(Some),
    }
}

pub fn run(args: &ApplyArgs, rep: &mut Reporter) -> i32 {
    if args.confirm_now {
        return confirm_now(rep);
    }
    let window = match confirm_window(args) {
        Ok(w) => w,
        Err(d) => {
            rep.emit(&d);
            return EXIT_ERROR;
        }
    };
    let Some(loaded) = crate::inputs::load_reported(&args.sel, rep) else {
        return EXIT_ERROR;
    };
    rep.emit_all(&loaded.plan.warnings);
    let mut way = way(args.target);
    let name = way.name();
    let Some(target) = render::target(name) else {
        return EXIT_ERROR;
    };
    let out = render::render(&loaded.plan, target);
    rep.emit_all(&out.warnings);
    let refused = |rep: &mut Reporter, msg: String, help: &str| {
        rep.emit(&Diagnostic::error(msg).with_help(help));
        EXIT_REFUSED
    };

    let dir = run_dir();
    if let Some(p) = read_pending(&dir) {
        if !args.dry_run {
            return refused(
                rep,
                format!("apply {} is waiting for its confirmation", p.token),
                "confirm it with `portolan apply --confirm-now`, or wait for its rollback",
            );
        }
    }

    // 1. The script, with what sync and dns-proxy put into the sets; checked twice.
    let (script, kept) = match way.script(&loaded.plan, &out) {
        Ok(x) => x,
        Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
    };
    let new_listing = match way.scratch(&script) {
        Ok(x) => x,
        Err(e) => {
            return refused(
                rep,
                format!("the rules do not load (in a scratch network namespace): {e}"),
                "nothing was changed; `portolan load --dry-run` prints the script",
            )
        }
    };
    if let Err(e) = way.check(&script, &out) {
        return refused(rep, e, "nothing was changed");
    }

    // 2. What changes.
    let live = match way.live() {
        Ok(l) => l,
        Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
    };
    let changes = compare(&live, &new_listing);

    // 3. Lockout.
    let mgmt = management();
    let mut lockouts: Vec<(Management, &'static str)> = Vec::new();
    let mut judged: Vec<Value> = Vec::new();
    if !mgmt.is_empty() {
        let (before, after) = match way.rulesets() {
            Ok(x) => x,
            Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
        };
        for m in &mgmt {
            let iif = iif_for(m.peer.ip());
            let verdict = match (judge(&before, m, &iif), judge(&after, m, &iif)) {
                (Kind::Drop, Kind::Drop) => "dropped-before-too",
                (_, Kind::Drop) => "dropped",
                (_, Kind::Unknown) => "unknown",
                _ => "kept",
            };
            judged.push(json!({
                "peer": m.peer.to_string(), "local": m.local.to_string(),
                "source": m.source, "interface": iif, "verdict": verdict,
            }));
            if verdict == "dropped" {
                lockouts.push((m.clone(), verdict));
            }
        }
    }

    let report = |outcome: &str, extra: Value| {
        if args.format == TextFormat::Json {
            let mut doc = json!({
                "target": name,
                "outcome": outcome,
                "changes": changes,
                "kept": kept,
                "management": judged,
            });
            if let (Some(o), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            outln!("{doc:#}");
        }
    };
    if args.format == TextFormat::Text {
        print_changes(&changes, &new_listing);
        for j in &judged {
            outln!(
                "management connection {} -> {} ({}): {}",
                j["peer"].as_str().unwrap_or(""),
                j["local"].as_str().unwrap_or(""),
                j["source"].as_str().unwrap_or(""),
                j["verdict"].as_str().unwrap_or("")
            );
        }
    }
    if !lockouts.is_empty() && !args.dry_run && !args.force {
        report("refused-lockout", json!({}));
        let every = crate::args::Selection {
            input: crate::args::Input {
                site: args.sel.input.site.clone(),
                profile: args.sel.input.profile.clone(),
            },
            features: Some("all".into()),
        };
        let all = crate::inputs::load(&every).ok().map(|l| l.plan);
        for (m, _) in &lockouts {
            let missing = all
                .as_ref()
                .map(|a| missing_flows(a, &loaded.plan, m))
                .unwrap_or_default();
            let help = if missing.is_empty() {
                "add an inbound flow for the management network (e.g. tcp 22 from a role `admin`) and bind the role in the site, or pass --force".to_string()
            } else {
                format!(
                    "the profile's {} would allow it: enable its feature in the site (features = [...]), or pass --force",
                    missing.join(", ")
                )
            };
            rep.emit(
                &Diagnostic::error(format!(
                    "refused: the new rules drop new connections from {} to this host's tcp port {} (the connection {} -> {}, found by {}); no planned flow allows tcp {} from {}",
                    m.peer.ip(), m.local.port(), m.peer, m.local, m.source, m.local.port(), m.peer.ip()
                ))
                .with_help(help),
            );
        }
        return EXIT_REFUSED;
    }
    if args.dry_run {
        report("dry-run", json!({"lockouts": lockouts.len()}));
        return if changes.is_empty() {
            EXIT_OK
        } else {
            EXIT_WARNINGS
        };
    }
    if changes.is_empty() {
        report("unchanged", json!({}));
        if args.format == TextFormat::Text {
            eprintln!("nothing to change; nothing was loaded");
        }
        return if args.strict { EXIT_WARNINGS } else { EXIT_OK };
    }

    // 4. Save the way back and arm the rollback, then load: from the moment the new rules
    // are in, the helper's timer is running (killing apply at any point cannot leave them
    // without it).
    let token = format!("{:x}", now_ms() ^ u64::from(std::process::id()) << 40);
    let rollback_path = dir.join(format!("rollback-{token}.nft"));
    let mut pending: Option<(Pending, &'static str)> = None;
    if let Some(window) = window {
        let saved = way.rollback().and_then(|text| {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("{}: {e}", dir.display()))
                .and_then(|()| write_atomic(&rollback_path, &text))
        });
        if let Err(e) = saved {
            return refused(
                rep,
                format!("cannot save the rollback: {e}"),
                "nothing was changed; set PORTOLAN_RUN_DIR to a writable directory",
            );
        }
        let p = Pending {
            token: token.clone(),
            target: name.to_string(),
            deadline_ms: now_ms() + window.as_millis() as u64,
            rollback: rollback_path.clone(),
        };
        let armed = serde_json::to_string(&p)
            .map_err(|e| e.to_string())
            .and_then(|t| write_atomic(&dir.join("pending.json"), &t))
            .and_then(|()| spawn_helper(&token));
        match armed {
            Ok(how) => pending = Some((p, how)),
            Err(e) => {
                let _ = std::fs::remove_file(dir.join("pending.json"));
                return refused(
                    rep,
                    format!("cannot arm the rollback: {e}"),
                    "nothing was changed",
                );
            }
        }
    }
    if let Err(e) = way.run(&script) {
        // The helper stands down; an iptables script that stopped half-way is rolled back
        // now (nftables loads in one transaction: nothing changed).
        let mut help = match args.target {
            SetTarget::Nftables => "nothing was changed (the load is one transaction)",
            SetTarget::Iptables => {
                "the script stopped at its first failing step (set -eu); each step is atomic"
            }
        };
        if pending.is_some()
            && claim(&dir, &token, "cancelled")
            && args.target == SetTarget::Iptables
        {
            let back = std::fs::read_to_string(&rollback_path)
                .map_err(|e| e.to_string())
                .and_then(|s| way.run(&s));
            help = if back.is_ok() {
                "the steps that had run were rolled back"
            } else {
                "the steps that had run could NOT be rolled back: check the PORTOLAN chains"
            };
        }
        return refused(rep, e, help);
    }
    let (Some(window), Some((pending, how))) = (window, pending) else {
        report("applied", json!({}));
        eprintln!("applied ({name}): {kept}");
        return EXIT_OK;
    };

    // 5. Confirm or roll back.
    eprintln!(
        "applied; rolls back in {} unless confirmed (Enter here, or `portolan apply --confirm-now`); the timer runs in {how}",
        humantime::format_duration(window)
    );
    if args.no_wait {
        report(
            "pending",
            json!({"token": token, "deadline_ms": pending.deadline_ms}),
        );
        return EXIT_OK;
    }
    let enter = if std::io::stdin().is_terminal() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_ok() {
                let _ = tx.send(());
            }
        });
        Some(rx)
    } else {
        None
    };
    loop {
        if enter
            .as_ref()
            .is_some_and(|rx| rx.recv_timeout(Duration::from_millis(100)).is_ok())
            && claim(&dir, &token, "confirmed")
        {
            report("confirmed", json!({"token": token}));
            eprintln!("confirmed: the new rules stay");
            return EXIT_OK;
        }
        if enter.is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
        if dir.join(format!("confirmed-{token}.json")).exists() {
            report("confirmed", json!({"token": token}));
            eprintln!("confirmed: the new rules stay");
            return EXIT_OK;
        }
        if let Some(o) = outcome(&dir, &token) {
            let rolled = o["outcome"] == "rolled-back";
            report(
                if rolled {
                    "rolled-back"
                } else {
                    "rollback-failed"
                },
                json!({"token": token}),
            );
            if rolled {
                eprintln!("not confirmed in time: the previous rules are back");
                return EXIT_WARNINGS;
            }
            rep.emit(&Diagnostic::error(format!(
                "not confirmed in time, and the rollback failed: {}",
                o["error"]
            )));
            return EXIT_REFUSED;
        }
        if now_ms() > pending.deadline_ms + 15_000 {
            rep.emit(&Diagnostic::error(
                "the rollback helper has not reported 15 s after the deadline",
            ));
            return EXIT_REFUSED;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ss_addresses_read_v4_v6_and_mapped() {
        assert_eq!(sockaddr("192.0.2.1:22"), "192.0.2.1:22".parse().ok());
        assert_eq!(
            sockaddr("[2001:db8::1]:22"),
            "[2001:db8::1]:22".parse().ok()
        );
        assert_eq!(
            sockaddr("[::ffff:192.0.2.9]:22"),
            "192.0.2.9:22".parse().ok()
        );
        assert_eq!(sockaddr("[fe80::1%eth0]:22"), "[fe80::1]:22".parse().ok());
        assert_eq!(sockaddr("*:*"), None);
    }
}
