//! `portolan apply`: load the nftables rules with a net under them.
//!
//! Check (a scratch network namespace and `nft -c`), show what changes against the loaded
//! table (both as `nft -s list` prints them, so formatting never shows as a change), refuse a
//! ruleset that would drop the connections managing this host (judged by the audit engine on
//! the whole ruleset before and after), load in one transaction keeping the DNS-filled
//! elements (as `load` does), and with `--confirm` leave a detached helper that restores the
//! previous table unless the apply is confirmed in time.
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

use portolan_core::audit::{self, eval::Kind, ruleset::Hook, Decider, Packet};
use portolan_core::diag::{Diagnostic, Source};
use portolan_core::render;
use portolan_net::sets::{run_tool, Sets};
use portolan_net::sync::TABLE;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::args::{ApplyArgs, ApplyRollbackArgs, TextFormat};
use crate::cmd::load;
use crate::report::{Reporter, EXIT_ERROR, EXIT_OK, EXIT_REFUSED, EXIT_WARNINGS};

/// Where the confirmation state is kept (a tmpfs: a reboot forgets a pending apply, and the
/// rules it loaded are gone with the reboot too).
pub const RUN_DIR: &str = "/run/portolan";
/// Confirmation window when standard input is a terminal and `--confirm` is not given.
pub const DEFAULT_CONFIRM: Duration = Duration::from_secs(60);
const MARK: &str = "@@@PORTOLAN-JSON@@@";

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
    /// Milliseconds since the epoch.
    deadline_ms: u64,
    rollback: PathBuf,
}

/// A table as `nft -s list table` prints it, in comparable parts.
#[derive(Debug, Default, PartialEq)]
struct Listing {
    exists: bool,
    /// Per chain, its lines in order (the `type ... hook ...; policy ...;` line included).
    chains: BTreeMap<String, Vec<String>>,
    /// Per set, its definition lines without the elements.
    sets: BTreeMap<String, Vec<String>>,
    /// Per static set, its elements.
    elements: BTreeMap<String, BTreeSet<String>>,
}

fn parse_listing(text: &str) -> Listing {
    enum In {
        Nothing,
        Set(String),
        Chain(String),
    }
    let mut l = Listing {
        exists: text.contains("table inet"),
        ..Listing::default()
    };
    let mut at = In::Nothing;
    let mut elems: Option<String> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(acc) = elems.as_mut() {
            acc.push(' ');
            acc.push_str(line);
        } else if let Some(rest) = line.strip_prefix("elements = {") {
            elems = Some(rest.to_string());
        } else if let Some(name) = line.strip_prefix("set ").and_then(|r| r.strip_suffix(" {")) {
            at = In::Set(name.to_string());
            l.sets.entry(name.to_string()).or_default();
            continue;
        } else if let Some(name) = line
            .strip_prefix("chain ")
            .and_then(|r| r.strip_suffix(" {"))
        {
            at = In::Chain(name.to_string());
            l.chains.entry(name.to_string()).or_default();
            continue;
        } else if line == "}" {
            at = In::Nothing;
            continue;
        } else if !line.is_empty() {
            match &at {
                In::Set(s) => l.sets.entry(s.clone()).or_default().push(line.to_string()),
                In::Chain(c) => l
                    .chains
                    .entry(c.clone())
                    .or_default()
                    .push(line.to_string()),
                In::Nothing => {}
            }
            continue;
        }
        // Inside `elements = { ... }`: done at the closing brace.
        if let Some(acc) = &elems {
            if let Some(body) = acc.strip_suffix('}') {
                if let In::Set(s) = &at {
                    let timed = l.sets.get(s).is_some_and(|d| {
                        d.iter()
                            .any(|x| x.starts_with("flags") && x.contains("timeout"))
                    });
                    if !timed {
                        let e = l.elements.entry(s.clone()).or_default();
                        for item in body.split(',') {
                            if let Some(v) = item.split_whitespace().next() {
                                e.insert(v.to_string());
                            }
                        }
                    }
                }
                elems = None;
            }
        }
    }
    l
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
        println!("no change: the loaded table already has these rules and sets");
        return;
    }
    if c.table_created {
        println!("table inet {TABLE} is new (none is loaded)");
    }
    for (ch, r) in &c.rules_removed {
        println!("- chain {ch}: {r}");
    }
    for (ch, r) in &c.rules_added {
        println!("+ chain {ch}: {r}");
    }
    for ch in &c.reordered {
        println!("~ chain {ch}: same rules, another order");
    }
    for s in &c.sets_removed {
        println!("- set {s}");
    }
    for s in &c.sets_added {
        match new.elements.get(s).map(BTreeSet::len) {
            Some(n) => println!("+ set {s} ({n} static elements)"),
            None => println!("+ set {s}"),
        }
    }
    for s in &c.sets_changed {
        println!("~ set {s}: definition changed");
    }
    for (s, e) in &c.elements_removed {
        println!("- element {e} in set {s}");
    }
    for (s, e) in &c.elements_added {
        println!("+ element {e} in set {s}");
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

/// `live` (`nft -j list ruleset`) with portolan's table replaced by `table` (`nft -j list
/// table`), or removed when `table` is `None`.
fn with_table(live: &Value, table: Option<&Value>) -> Value {
    let ours = |item: &Value| {
        item.as_object()
            .and_then(|o| o.iter().next())
            .is_some_and(|(kind, v)| {
                v["family"] == "inet"
                    && (v["table"] == TABLE || (kind == "table" && v["name"] == TABLE))
            })
    };
    let mut items: Vec<Value> = live["nftables"]
        .as_array()
        .map(|a| a.iter().filter(|i| !ours(i)).cloned().collect())
        .unwrap_or_default();
    if let Some(t) = table {
        items.extend(
            t["nftables"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i.get("metainfo").is_none())
                .cloned(),
        );
    }
    json!({ "nftables": items })
}

/// What a ruleset does with a new connection of `m`.
fn judge(ruleset: &Value, m: &Management, iif: &str) -> Result<Kind, String> {
    let src = Source::new("ruleset.json", ruleset.to_string());
    let rs = audit::parse_ruleset(&src, Some(audit::RulesetFormat::NftJson), None)
        .map_err(|e| format!("cannot read the ruleset back: {}", e.0.len()))?;
    let names = vec![iif.to_string(), "lo".to_string()];
    let d = Decider::new(&rs, &names);
    Ok(d.decide(
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
    ))
}

fn nft_text(args: &[&str]) -> Result<Option<String>, String> {
    let out = Command::new("nft")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        return Err(format!("nft {}: {}", args.join(" "), err.trim()));
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).to_string()))
}

/// Load `script` into a scratch network namespace; its listing (text, JSON) there.
fn scratch(script: &str) -> Result<(String, Value), String> {
    let cmd = format!(
        "nft -f - && nft -s list table inet {TABLE} && echo {MARK} && nft -j list table inet {TABLE}"
    );
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", &cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run unshare (util-linux): {e}"))?;
    if let Some(mut i) = child.stdin.take() {
        use std::io::Write;
        i.write_all(script.as_bytes())
            .map_err(|e| format!("writing to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft in a scratch namespace: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (listing, j) = text
        .split_once(MARK)
        .ok_or("nft printed no listing in the scratch namespace")?;
    let v: Value =
        serde_json::from_str(j.trim()).map_err(|e| format!("nft -j: unreadable JSON: {e}"))?;
    Ok((listing.to_string(), v))
}

/// The script that restores the table as it is now: its rules and static sets as listed,
/// DNS-filled elements with the time they have left (never longer).
fn rollback_script(live_full: Option<&str>) -> String {
    let mut s = format!(
        "# portolan apply: the table as it was before\ntable inet {TABLE}\ndelete table inet {TABLE}\n"
    );
    let Some(text) = live_full else {
        return s;
    };
    for line in text.lines() {
        let mut l = line.to_string();
        // `counter packets N bytes M` -> `counter`
        while let Some(i) = l.find("counter packets ") {
            let rest = &l[i + "counter packets ".len()..];
            let mut w = rest.splitn(4, ' ');
            let (_n, _b, _m) = (w.next(), w.next(), w.next());
            let tail = w.next().unwrap_or("");
            l = format!("{}counter {}", &l[..i], tail);
        }
        // `timeout 10m expires 9m58s,` -> `timeout 9m58s,`
        let toks: Vec<&str> = l.split(' ').collect();
        let mut kept: Vec<&str> = Vec::with_capacity(toks.len());
        let mut i = 0;
        while i < toks.len() {
            if toks[i] == "timeout" && toks.get(i + 2) == Some(&"expires") && i + 3 < toks.len() {
                kept.push("timeout");
                kept.push(toks[i + 3]);
                i += 4;
            } else {
                kept.push(toks[i]);
                i += 1;
            }
        }
        let out = kept.join(" ");
        s.push_str(&out);
        s.push('\n');
    }
    s
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
        let result = std::fs::read_to_string(&p.rollback)
            .map_err(|e| format!("{}: {e}", p.rollback.display()))
            .and_then(|s| run_tool("nft", &["-f", "-"], &s));
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
    let Some(target) = render::target("nftables") else {
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
    let dynamic = load::dynamic_sets(&loaded.plan, Sets::Nftables);
    let kept = match load::current_elements(&dynamic) {
        Ok(k) => k,
        Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
    };
    let script = format!("{}{}", out.text, load::carry_over(&kept));
    let (new_text, new_json) = match scratch(&script) {
        Ok(x) => x,
        Err(e) => {
            return refused(
                rep,
                format!("the rules do not load (in a scratch network namespace): {e}"),
                "nothing was changed; `portolan load --dry-run` prints the script",
            )
        }
    };
    if let Err(e) = run_tool("nft", &["-c", "-f", "-"], &script) {
        return refused(
            rep,
            format!("nft -c refused the rules against this ruleset: {e}"),
            "nothing was changed",
        );
    }

    // 2. What changes.
    let live_text = match nft_text(&["-s", "list", "table", "inet", TABLE]) {
        Ok(t) => t,
        Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
    };
    let new_listing = parse_listing(&new_text);
    let changes = compare(
        &parse_listing(live_text.as_deref().unwrap_or("")),
        &new_listing,
    );

    // 3. Lockout.
    let mgmt = management();
    let mut lockouts: Vec<(Management, &'static str)> = Vec::new();
    let mut judged: Vec<Value> = Vec::new();
    if !mgmt.is_empty() {
        let live = match nft_text(&["-j", "list", "ruleset"]) {
            Ok(t) => t
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(json!({"nftables": []})),
            Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
        };
        let after = with_table(&live, Some(&new_json));
        for m in &mgmt {
            let iif = iif_for(m.peer.ip());
            let (b, a) = (judge(&live, m, &iif), judge(&after, m, &iif));
            let verdict = match (&b, &a) {
                (_, Err(e)) | (Err(e), _) => {
                    rep.emit(&Diagnostic::warning(format!(
                        "cannot judge the management connection from {}: {e}",
                        m.peer
                    )));
                    "unknown"
                }
                (Ok(Kind::Drop), Ok(Kind::Drop)) => "dropped-before-too",
                (_, Ok(Kind::Drop)) => "dropped",
                (_, Ok(Kind::Unknown)) => "unknown",
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
                "target": "nftables",
                "outcome": outcome,
                "changes": changes,
                "kept_elements": kept.len(),
                "management": judged,
            });
            if let (Some(o), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
                o.extend(e.clone());
            }
            println!("{doc:#}");
        }
    };
    if args.format == TextFormat::Text {
        print_changes(&changes, &new_listing);
        for j in &judged {
            println!(
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
        for (m, _) in &lockouts {
            rep.emit(
                &Diagnostic::error(format!(
                    "refused: the new rules drop new connections from {} to this host's tcp port {} (the connection {} -> {}, found by {}); no planned flow allows tcp {} from {}",
                    m.peer.ip(), m.local.port(), m.peer, m.local, m.source, m.local.port(), m.peer.ip()
                ))
                .with_help("add an inbound flow for the management network (e.g. tcp 22 from a role `admin`) and bind the role in the site, or pass --force"),
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

    // 4. Save the way back, then load.
    let token = format!("{:x}", now_ms() ^ u64::from(std::process::id()) << 40);
    let rollback_path = dir.join(format!("rollback-{token}.nft"));
    if window.is_some() {
        let full = match nft_text(&["list", "table", "inet", TABLE]) {
            Ok(t) => t,
            Err(e) => return refused(rep, e, "run as root (CAP_NET_ADMIN)"),
        };
        let saved = std::fs::create_dir_all(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))
            .and_then(|()| write_atomic(&rollback_path, &rollback_script(full.as_deref())));
        if let Err(e) = saved {
            return refused(
                rep,
                format!("cannot save the rollback: {e}"),
                "nothing was changed; set PORTOLAN_RUN_DIR to a writable directory",
            );
        }
    }
    if let Err(e) = run_tool("nft", &["-f", "-"], &script) {
        return refused(rep, e, "nothing was changed (the load is one transaction)");
    }
    let Some(window) = window else {
        report("applied", json!({}));
        eprintln!(
            "applied: table inet {TABLE} loaded in one transaction; kept {} address(es) in DNS-filled sets",
            kept.len()
        );
        return EXIT_OK;
    };

    // 5. Confirm or roll back.
    let pending = Pending {
        token: token.clone(),
        deadline_ms: now_ms() + window.as_millis() as u64,
        rollback: rollback_path,
    };
    let started = serde_json::to_string(&pending)
        .map_err(|e| e.to_string())
        .and_then(|t| write_atomic(&dir.join("pending.json"), &t))
        .and_then(|()| spawn_helper(&token));
    let how = match started {
        Ok(h) => h,
        Err(e) => {
            // No helper: put the old table back now rather than run without the net.
            let _ = std::fs::remove_file(dir.join("pending.json"));
            let back = std::fs::read_to_string(&pending.rollback)
                .map_err(|e| e.to_string())
                .and_then(|s| run_tool("nft", &["-f", "-"], &s));
            rep.emit(&Diagnostic::error(format!(
                "cannot arm the rollback ({e}); the previous rules were restored{}",
                if back.is_ok() {
                    ""
                } else {
                    " - NOT: restore failed"
                }
            )));
            return EXIT_REFUSED;
        }
    };
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

    const LISTED: &str = "table inet portolan {\n\tset dns_a_v4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\telements = { 1.2.3.4 timeout 10m expires 9m58s, 5.6.7.8 timeout 10m expires 1m }\n\t}\n\n\tset role_x_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = { 10.0.0.0/8,\n\t\t\t     192.0.2.1 }\n\t}\n\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\ttcp dport 22 ip saddr @role_x_v4 counter packets 5 bytes 300 accept comment \"flows: ssh\"\n\t}\n}\n";

    #[test]
    fn listings_compare_by_rule_and_static_element_not_by_dynamic_element() {
        let old = parse_listing(LISTED);
        assert!(old.exists);
        assert_eq!(
            old.elements["role_x_v4"],
            ["10.0.0.0/8", "192.0.2.1"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        assert!(!old.elements.contains_key("dns_a_v4"));
        assert!(compare(&old, &parse_listing(LISTED)).is_empty());
        let new = LISTED
            .replace("192.0.2.1 }", "192.0.2.2 }")
            .replace("tcp dport 22", "tcp dport 2222");
        let c = compare(&old, &parse_listing(&new));
        assert_eq!(c.elements_added, [("role_x_v4".into(), "192.0.2.2".into())]);
        assert_eq!(
            c.elements_removed,
            [("role_x_v4".into(), "192.0.2.1".into())]
        );
        assert_eq!(c.rules_added.len(), 1);
        assert_eq!(c.rules_removed.len(), 1);
        let none = compare(&Listing::default(), &old);
        assert!(none.table_created && none.sets_added.len() == 2);
    }

    #[test]
    fn rollback_keeps_the_time_left_never_more_and_drops_counters() {
        let s = rollback_script(Some(LISTED));
        assert!(s.starts_with("# portolan apply"));
        assert!(s.contains("delete table inet portolan\n"));
        assert!(
            s.contains("1.2.3.4 timeout 9m58s, 5.6.7.8 timeout 1m }"),
            "{s}"
        );
        assert!(s.contains("@role_x_v4 counter accept"), "{s}");
        assert!(!s.contains("expires") && !s.contains("packets"));
        assert!(rollback_script(None).ends_with("delete table inet portolan\n"));
    }

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
