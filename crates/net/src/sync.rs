//! `portolan sync`: keep the DNS-filled sets of the nftables table current.
//!
//! For every DNS name in the plan (not pinned, not a wildcard), A and AAAA are resolved and
//! written into the named sets the nftables renderer made, as elements with a timeout: the
//! clamped TTL plus a grace of two refresh periods. Every pass re-asserts the current
//! addresses, so an address the vendor dropped ages out and one still in use never
//! disappears. The changes of a pass are written by the set writer ([`crate::sets`]): over
//! netlink, in nf_tables transactions (each element added, deleted and added again inside
//! one, which refreshes its timeout on any kernel), or into ipsets for the iptables target.
//! Never flush-and-refill in two steps.
//!
//! Failures keep the last known good addresses (up to `max_stale`); NXDOMAIN or an empty
//! answer removes nothing until seen `empty_threshold` times in a row. The last known good
//! state is saved in the state directory and applied at start, before the first lookup.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nftables::batch::Batch;
use nftables::expr::{Elem, Expression, NamedExpression};
use nftables::schema::{Element, NfListObject};
use nftables::types::NfFamily;
use portolan_core::plan::{Plan, SetKind};
use portolan_core::render::{self, Family};
use serde::{Deserialize, Serialize};

use crate::dns::{ResolveError, Resolver};
use crate::sets::{Service, Sets};

/// The nftables table the renderer owns.
pub const TABLE: &str = portolan_core::render::nftables::TABLE;
/// Lookups in flight at once (each holds a socket). Each is two or three datagrams at the
/// resolver; 64 of them stay within a resolver's default socket buffer (dnsmasq's dropped
/// about 60 of 20,000 queries at 256 in flight, and each lost query waited for its retry:
/// 3.2 s for 10,000 names instead of 1.2 s).
pub const LOOKUP_CONCURRENCY: usize = 64;
/// Answered names per write while a pass resolves.
pub const WRITE_EVERY: usize = 256;
/// The state file inside `--state-dir`.
pub const STATE_FILE: &str = "sync-state.json";

/// Tuning; the defaults follow the issue: refresh at half the TTL, 30 s to 1 h.
#[derive(Debug, Clone)]
pub struct Config {
    pub min_refresh: Duration,
    pub max_refresh: Duration,
    /// Refresh at this fraction of the TTL.
    pub fraction: f64,
    /// Keep last known good addresses at most this long without a successful lookup.
    pub max_stale: Duration,
    /// NXDOMAIN/empty answers in a row before the addresses are let go.
    pub empty_threshold: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            min_refresh: Duration::from_secs(30),
            max_refresh: Duration::from_secs(3600),
            fraction: 0.5,
            max_stale: Duration::from_secs(24 * 3600),
            empty_threshold: 3,
        }
    }
}

impl Config {
    /// When to look again, given a TTL.
    pub fn refresh(&self, ttl: u32) -> Duration {
        Duration::from_secs_f64(f64::from(ttl) * self.fraction)
            .clamp(self.min_refresh, self.max_refresh)
    }
    /// Element timeout: the clamped TTL plus two refresh periods of grace.
    pub fn element_timeout(&self, ttl: u32) -> Duration {
        let r = self.refresh(ttl);
        Duration::from_secs(u64::from(ttl)).clamp(self.min_refresh, self.max_refresh) + 2 * r
    }
}

/// What is known about one name.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NameState {
    pub addresses: Vec<IpAddr>,
    /// Unix seconds of the last successful lookup.
    pub resolved_at: u64,
    pub ttl: u32,
    /// NXDOMAIN or empty answers in a row.
    #[serde(default)]
    pub empty_in_a_row: u32,
}

/// Last known good addresses of every name, saved between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub names: BTreeMap<String, NameState>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    /// Load from `dir`; a missing file is an empty state, a damaged one an error.
    pub fn load(dir: &Path) -> Result<State, String> {
        let path = dir.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: damaged state file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Save atomically: a temporary file of mode 0600 created exclusively in `dir` (mode
    /// 0700, created if missing), synced, then renamed over the state file.
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        prepare_state_dir(dir)?;
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
        // tempfile creates the file with O_EXCL and mode 0600.
        let mut tmp = tempfile::Builder::new()
            .prefix(".sync-state-")
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(fail)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        Ok(())
    }
}

/// Create the state directory with mode 0700, or check an existing one: it must be a real
/// directory (not a link) that nobody but its owner can write to, since what is in it is
/// put into allow sets at start.
pub fn prepare_state_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display())),
        Err(e) => Err(format!("cannot use {}: {e}", dir.display())),
        Ok(m) if !m.is_dir() => Err(format!(
            "{} is not a directory (a symbolic link or a file); give a directory for --state-dir",
            dir.display()
        )),
        Ok(m) if m.permissions().mode() & 0o022 != 0 => Err(format!(
            "{} can be written by others (mode {:o}); its contents go into allow sets: chmod 700 it",
            dir.display(),
            m.permissions().mode() & 0o7777
        )),
        Ok(_) => Ok(()),
    }
}

/// A DNS name and the sets it fills: its own, or the groups of names that share a match
/// (one name can be in several, one per port list).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub sets_v4: Vec<String>,
    pub sets_v6: Vec<String>,
}

/// The names to keep current: DNS sets the rendered rules use, by family, named as the
/// target (`sets`) names them.
pub fn targets(plan: &Plan, sets: Sets) -> Vec<Target> {
    let (rules, _) = render::lower(plan);
    let mut map: BTreeMap<String, Target> = BTreeMap::new();
    for (sref, fed) in render::dynamic_feeds(plan, &rules) {
        let Some(kernel) = render::set_of(plan, sref) else {
            continue;
        };
        let Some(n) = sets.target().set_name(&kernel, sref.family) else {
            continue;
        };
        for set in fed.into_iter().filter(|s| s.kind == SetKind::Dns) {
            let t = map.entry(set.name.clone()).or_insert_with(|| Target {
                name: set.name.clone(),
                sets_v4: Vec::new(),
                sets_v6: Vec::new(),
            });
            let v = match sref.family {
                Family::V4 => &mut t.sets_v4,
                Family::V6 => &mut t.sets_v6,
            };
            if !v.contains(&n) {
                v.push(n.clone());
            }
        }
    }
    map.into_values().collect()
}

/// One set's new content.
#[derive(Debug, Clone)]
pub struct SetUpdate {
    pub set: String,
    pub addresses: Vec<IpAddr>,
    pub timeout: Duration,
}

/// The nft transaction for a batch of updates: add, delete, add each element (see module doc).
pub fn transaction(updates: &[SetUpdate]) -> nftables::schema::Nftables<'static> {
    let mut batch = Batch::new();
    for u in updates.iter().filter(|u| !u.addresses.is_empty()) {
        let timed: Vec<Expression<'static>> = u
            .addresses
            .iter()
            .map(|a| {
                Expression::Named(NamedExpression::Elem(Elem {
                    val: Box::new(Expression::String(a.to_string().into())),
                    timeout: Some(u.timeout.as_secs().max(1) as u32),
                    expires: None,
                    comment: None,
                    counter: None,
                }))
            })
            .collect();
        let plain: Vec<Expression<'static>> = u
            .addresses
            .iter()
            .map(|a| Expression::String(a.to_string().into()))
            .collect();
        let elem = |e: Vec<Expression<'static>>| {
            NfListObject::Element(Element {
                family: NfFamily::INet,
                table: TABLE.into(),
                name: u.set.clone().into(),
                elem: e.into(),
            })
        };
        batch.add(elem(timed.clone()));
        batch.delete(elem(plain));
        batch.add(elem(timed));
    }
    batch.to_nftables()
}

fn updates_for(t: &Target, addrs: &[IpAddr], timeout: Duration) -> Vec<SetUpdate> {
    let mut out = Vec::new();
    for (sets, v4) in [(&t.sets_v4, true), (&t.sets_v6, false)] {
        for s in sets {
            out.push(SetUpdate {
                set: s.clone(),
                addresses: addrs
                    .iter()
                    .filter(|a| a.is_ipv4() == v4)
                    .copied()
                    .collect(),
                timeout,
            });
        }
    }
    out
}

/// What happened to one name in a pass.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    /// `ok`, `nxdomain`, `nodata`, `timeout`, `servfail`, `error`.
    pub result: &'static str,
    pub detail: String,
    /// Addresses asserted into the sets this pass (fresh or last known good).
    pub asserted: Vec<IpAddr>,
    /// The asserted addresses are last known good, not fresh.
    pub stale: bool,
    /// Seconds until this name is due again.
    pub next_in: u64,
}

/// Counters for the metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub lookups: BTreeMap<(String, &'static str), u64>,
    pub last_success: BTreeMap<String, u64>,
    /// Addresses asserted per set, by the name that asserted them (a group set holds many).
    pub elements: BTreeMap<String, BTreeMap<String, usize>>,
    /// Failed set writes.
    pub nft_errors: u64,
    pub last_apply_seconds: f64,
}

impl Metrics {
    /// Note what `name` asserts into each set with `updates`.
    fn record(&mut self, name: &str, updates: &[SetUpdate]) {
        for u in updates {
            self.elements
                .entry(u.set.clone())
                .or_default()
                .insert(name.to_string(), u.addresses.len());
        }
    }

    /// Prometheus text exposition format.
    pub fn render(&self, state: &State) -> String {
        let now = now();
        let mut s = String::new();
        s.push_str("# HELP portolan_sync_lookups_total DNS lookups by name and result.\n# TYPE portolan_sync_lookups_total counter\n");
        for ((n, r), c) in &self.lookups {
            s.push_str(&format!(
                "portolan_sync_lookups_total{{name=\"{n}\",result=\"{r}\"}} {c}\n"
            ));
        }
        s.push_str("# HELP portolan_sync_last_success_age_seconds Seconds since the last successful lookup.\n# TYPE portolan_sync_last_success_age_seconds gauge\n");
        for (n, st) in &state.names {
            if st.resolved_at > 0 {
                s.push_str(&format!(
                    "portolan_sync_last_success_age_seconds{{name=\"{n}\"}} {}\n",
                    now.saturating_sub(st.resolved_at)
                ));
            }
        }
        s.push_str("# HELP portolan_sync_set_elements Addresses asserted into each set by the last pass.\n# TYPE portolan_sync_set_elements gauge\n");
        for (set, by_name) in &self.elements {
            let n: usize = by_name.values().sum();
            s.push_str(&format!(
                "portolan_sync_set_elements{{set=\"{set}\"}} {n}\n"
            ));
        }
        s.push_str(&format!(
            "# HELP portolan_sync_nft_errors_total Failed set writes (nf_tables transactions or ipset updates).\n# TYPE portolan_sync_nft_errors_total counter\nportolan_sync_nft_errors_total {}\n",
            self.nft_errors
        ));
        s.push_str(&format!(
            "# HELP portolan_sync_apply_seconds Time the last pass spent writing sets (first write to last acknowledgement).\n# TYPE portolan_sync_apply_seconds gauge\nportolan_sync_apply_seconds {:.6}\n",
            self.last_apply_seconds
        ));
        s
    }
}

/// Addresses and TTL of a name, or why there are none.
type Lookup = Result<(Vec<IpAddr>, u32), ResolveError>;

/// Everything a sync run keeps between passes.
pub struct Syncer {
    pub config: Config,
    pub resolver: Resolver,
    pub targets: Vec<Target>,
    pub state: State,
    pub state_dir: Option<PathBuf>,
    pub metrics: Metrics,
    /// Names with consecutive failures (for backoff).
    failures: BTreeMap<String, u32>,
    writer: Service,
}

impl Syncer {
    pub fn new(
        config: Config,
        resolver: Resolver,
        targets: Vec<Target>,
        state_dir: Option<PathBuf>,
        writer: Service,
    ) -> Result<Syncer, String> {
        let state = match &state_dir {
            Some(d) => State::load(d)?,
            None => State::default(),
        };
        Ok(Syncer {
            config,
            resolver,
            targets,
            state,
            state_dir,
            metrics: Metrics::default(),
            failures: BTreeMap::new(),
            writer,
        })
    }

    /// Assert the saved last known good addresses, before any lookup.
    pub async fn restore(&mut self) -> Result<usize, String> {
        let now = now();
        let mut updates = Vec::new();
        let mut n = 0;
        for t in &self.targets {
            let Some(st) = self.state.names.get(&t.name) else {
                continue;
            };
            if now.saturating_sub(st.resolved_at) > self.config.max_stale.as_secs()
                || st.addresses.is_empty()
            {
                continue;
            }
            n += 1;
            let u = updates_for(t, &st.addresses, self.config.element_timeout(st.ttl));
            self.metrics.record(&t.name, &u);
            updates.extend(u);
        }
        self.commit(updates).await?;
        Ok(n)
    }

    async fn commit(&mut self, updates: Vec<SetUpdate>) -> Result<(), String> {
        match self.writer.commit(updates, false).await {
            Ok(d) => {
                self.metrics.last_apply_seconds = d.as_secs_f64();
                Ok(())
            }
            Err(e) => {
                self.metrics.nft_errors += 1;
                Err(e)
            }
        }
    }

    /// Look up the given names (all when `None`) and write their sets. Writing starts while
    /// lookups are still under way: every [`WRITE_EVERY`] answered names go to the set writer
    /// (which merges what queues up), so a large pass costs about the longer of resolving and
    /// writing, not their sum.
    pub async fn pass(&mut self, only: Option<&[String]>) -> (Vec<Outcome>, Result<(), String>) {
        let now = now();
        let chosen: Vec<Target> = self
            .targets
            .iter()
            .filter(|t| only.is_none_or(|o| o.contains(&t.name)))
            .cloned()
            .collect();
        // Resolve concurrently.
        let resolver = Arc::new(self.resolver.clone());
        let gate = Arc::new(tokio::sync::Semaphore::new(LOOKUP_CONCURRENCY));
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in chosen.iter().enumerate() {
            let (r, name, gate) = (resolver.clone(), t.name.clone(), gate.clone());
            set.spawn(async move {
                let _permit = gate.acquire_owned().await.ok();
                (i, r.lookup_ttl(&name).await)
            });
        }
        let mut answered = vec![false; chosen.len()];
        let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(chosen.len());
        let mut writes = tokio::task::JoinSet::new();
        let mut pending: Vec<SetUpdate> = Vec::new();
        let mut pending_names = 0;
        let mut first_write: Option<std::time::Instant> = None;
        loop {
            let next = set.join_next().await;
            let done = next.is_none();
            if let Some(Ok((i, answer))) = next {
                answered[i] = true;
                let (outcome, updates) = self.settle(&chosen[i], answer, now);
                self.metrics.record(&chosen[i].name, &updates);
                outcomes.push((i, outcome));
                pending.extend(updates);
                pending_names += 1;
            }
            if done {
                // Names whose lookup task failed.
                for (i, t) in chosen.iter().enumerate().filter(|(i, _)| !answered[*i]) {
                    let failed = Err(ResolveError::Other("lookup task failed".into()));
                    let (outcome, updates) = self.settle(t, failed, now);
                    self.metrics.record(&t.name, &updates);
                    outcomes.push((i, outcome));
                    pending.extend(updates);
                }
            }
            if (done || pending_names >= WRITE_EVERY) && !pending.is_empty() {
                let (writer, updates) = (self.writer.clone(), std::mem::take(&mut pending));
                first_write.get_or_insert_with(std::time::Instant::now);
                writes.spawn(async move { writer.commit(updates, false).await });
                pending_names = 0;
            }
            if done {
                break;
            }
        }
        let mut committed = Ok(());
        while let Some(r) = writes.join_next().await {
            match r.map_err(|e| e.to_string()).and_then(|r| r) {
                Ok(_) => {}
                Err(e) => {
                    self.metrics.nft_errors += 1;
                    if committed.is_ok() {
                        committed = Err(e);
                    }
                }
            }
        }
        // From the pass's first write to its last acknowledgement.
        self.metrics.last_apply_seconds = first_write.map_or(0.0, |t| t.elapsed().as_secs_f64());
        outcomes.sort_by_key(|(i, _)| *i);
        let outcomes = outcomes.into_iter().map(|(_, o)| o).collect();
        if let Some(d) = &self.state_dir {
            if let Err(e) = self.state.save(d) {
                return (outcomes, Err(e));
            }
        }
        (outcomes, committed)
    }

    /// One name's answer: its new state, what happened, and the set updates to write.
    fn settle(&mut self, t: &Target, answer: Lookup, now: u64) -> (Outcome, Vec<SetUpdate>) {
        let mut updates = Vec::new();
        let prev = self.state.names.get(&t.name).cloned().unwrap_or_default();
        let (result, detail, asserted, stale, ttl) = match answer {
            Ok((addrs, ttl)) => {
                self.failures.remove(&t.name);
                self.state.names.insert(
                    t.name.clone(),
                    NameState {
                        addresses: addrs.clone(),
                        resolved_at: now,
                        ttl,
                        empty_in_a_row: 0,
                    },
                );
                (
                    "ok",
                    format!("{} address(es), TTL {ttl}", addrs.len()),
                    addrs,
                    false,
                    ttl,
                )
            }
            Err(e) => {
                let result = match &e {
                    ResolveError::NxDomain(_) => "nxdomain",
                    ResolveError::NoData(_) => "nodata",
                    ResolveError::Timeout(..) => "timeout",
                    ResolveError::ServerError(..) => "servfail",
                    ResolveError::Other(_) => "error",
                };
                *self.failures.entry(t.name.clone()).or_insert(0) += 1;
                let empty = matches!(e, ResolveError::NxDomain(_) | ResolveError::NoData(_));
                let mut st = prev.clone();
                if empty {
                    st.empty_in_a_row += 1;
                }
                let fresh_enough =
                    now.saturating_sub(st.resolved_at) <= self.config.max_stale.as_secs();
                let keep =
                    fresh_enough && !(empty && st.empty_in_a_row >= self.config.empty_threshold);
                let detail = if keep && !st.addresses.is_empty() {
                    format!(
                        "{e}; keeping {} last known good address(es)",
                        st.addresses.len()
                    )
                } else if !st.addresses.is_empty() {
                    format!("{e}; letting the last known addresses age out")
                } else {
                    e.to_string()
                };
                let asserted = if keep { st.addresses.clone() } else { vec![] };
                let ttl = st.ttl;
                if !keep {
                    st.addresses.clear();
                }
                self.state.names.insert(t.name.clone(), st);
                (result, detail, asserted, true, ttl)
            }
        };
        *self
            .metrics
            .lookups
            .entry((t.name.clone(), result))
            .or_insert(0) += 1;
        if result == "ok" {
            self.metrics.last_success.insert(t.name.clone(), now);
        }
        // Every set of the name, empty ones too: the element count of a set whose
        // addresses were let go drops to zero.
        updates.extend(updates_for(t, &asserted, self.config.element_timeout(ttl)));
        let next = self.next_due(&t.name, ttl);
        let outcome = Outcome {
            name: t.name.clone(),
            result,
            detail,
            asserted,
            stale,
            next_in: next.as_secs(),
        };
        (outcome, updates)
    }

    /// When a name is due again: its refresh period, or a backoff after failures.
    pub fn next_due(&self, name: &str, ttl: u32) -> Duration {
        let refresh = self.config.refresh(ttl.max(1));
        match self.failures.get(name) {
            Some(n) if *n > 0 => {
                let backoff = self.config.min_refresh.max(Duration::from_secs(1))
                    * 2u32.saturating_pow((*n - 1).min(10));
                backoff.min(refresh)
            }
            _ => refresh,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_and_timeout_follow_the_ttl_within_bounds() {
        let c = Config::default();
        assert_eq!(c.refresh(300), Duration::from_secs(150));
        assert_eq!(c.refresh(10), Duration::from_secs(30));
        assert_eq!(c.refresh(86_400), Duration::from_secs(3600));
        // TTL 300: 300 s + 2 x 150 s of grace.
        assert_eq!(c.element_timeout(300), Duration::from_secs(600));
    }

    #[test]
    fn one_transaction_adds_deletes_and_adds_each_set() {
        let u = SetUpdate {
            set: "dns_update.intra2net.com_v4".into(),
            addresses: vec!["203.0.113.10".parse().expect("addr")],
            timeout: Duration::from_secs(90),
        };
        let json = serde_json::to_string(&transaction(&[u])).expect("json");
        assert_eq!(json.matches("\"add\"").count(), 2, "{json}");
        assert_eq!(json.matches("\"delete\"").count(), 1, "{json}");
        assert!(json.contains("\"timeout\":90"), "{json}");
        assert!(!json.contains("flush"), "{json}");
    }

    #[test]
    fn state_round_trips_and_a_damaged_file_is_an_error() {
        let dir = std::env::temp_dir().join(format!("portolan-state-{}", std::process::id()));
        let mut s = State::default();
        s.names.insert(
            "a.example.com".into(),
            NameState {
                addresses: vec!["192.0.2.1".parse().expect("a")],
                resolved_at: 5,
                ttl: 60,
                empty_in_a_row: 0,
            },
        );
        s.save(&dir).expect("save");
        assert_eq!(State::load(&dir).expect("load").names, s.names);
        std::fs::write(dir.join(STATE_FILE), "{not json").expect("write");
        assert!(State::load(&dir).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Regression (issue: state written with the default mode through a predictable name):
    /// the directory is 0700, the file 0600, and a directory others can write to is refused.
    #[test]
    fn state_is_private_and_a_shared_directory_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("portolan-state-mode-{}", std::process::id()));
        let dir = base.join("state");
        State::default().save(&dir).expect("save");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(STATE_FILE)), 0o600);
        let shared = base.join("shared");
        std::fs::create_dir_all(&shared).expect("dir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = State::default().save(&shared).expect_err("refused");
        assert!(e.contains("written by others"), "{e}");
        let link = base.join("link");
        std::os::unix::fs::symlink(&dir, &link).expect("symlink");
        assert!(State::default().save(&link).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }
}
