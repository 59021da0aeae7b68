//! The set writer: the one component that puts addresses into portolan's DNS-filled sets in
//! the kernel, for `sync` and `dns-proxy`.
//!
//! It owns a netlink socket to netfilter ([`crate::nfnl`]) on a thread of its own. Requests
//! that arrive while a transaction is being written are merged into the next one, so fifty
//! answers at once cost one kernel transaction, not fifty; each requester gets its answer
//! only after the kernel acknowledged its elements (the DNS proxy answers its client only
//! then). If a merged transaction fails, each request is written again on its own, so one
//! bad request does not fail the others.
//!
//! A transaction is all or nothing (a large write is several, each below the socket's
//! buffer). The first write of a writer first writes its first element on its own, to find
//! out whether a plain add refreshes a timeout in this kernel (one message per set instead
//! of three: the kernel looks each set up by name in a list).
//!
//! Targets: the nftables table `inet portolan` ([`Sets::Nftables`]), or the ipsets of the
//! iptables target ([`Sets::Ipset`], created with `timeout`). When netlink is refused (an
//! old kernel, a sandbox), the writer falls back to the `nft` / `ipset` commands, with one
//! warning.
//!
//! For the proxy, elements written in the last [`RECENT`] that live at least as long as the
//! new answer asks (less [`RECENT`]) are not written again ([`Service::commit`] with
//! `skip_recent`), as long as the nf_tables generation shows that nobody committed anything
//! since (a reload would have replaced the sets): the ruleset's generation is read before
//! and after each of the writer's own transactions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::nfnl::{self, Element, Nfnl};
use crate::sync::{SetUpdate, TABLE};

/// An element written this recently is not written again by the proxy.
pub const RECENT: Duration = Duration::from_secs(30);
/// Requests merged into one transaction at most.
const MAX_MERGED: usize = 256;
/// Remembered recent elements at most (older ones are forgotten first).
const MAX_RECENT: usize = 65_536;

/// Which kernel sets are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sets {
    /// Sets of the nftables table `inet portolan`.
    Nftables,
    /// ipsets of the iptables target.
    Ipset,
}

impl Sets {
    /// The render target whose sets these are (it names them).
    pub fn target(self) -> &'static dyn portolan_core::render::Target {
        match self {
            Sets::Nftables => &portolan_core::render::nftables::Nftables,
            Sets::Ipset => &portolan_core::render::iptables::Iptables,
        }
    }
}

/// Writes set updates into the kernel, by netlink or (fallback) the command-line tools.
pub struct Writer {
    sets: Sets,
    nl: Option<Nfnl>,
    tried: bool,
    /// Called once when netlink cannot be used.
    warn: Box<dyn Fn(&str) + Send>,
    /// nf_tables generation after the writer's last own transaction, when nobody else has
    /// committed in between.
    generation: Option<u32>,
    /// When each (set, address) was last written, and when it expires, for `skip_recent`.
    recent: HashMap<(String, IpAddr), (Instant, Instant)>,
    /// Does a plain add refresh an element's timeout in this kernel? Unknown until the
    /// first write, which finds out by trying on one element and reading it back; until
    /// then, and when it does not, each element is added, deleted and added again.
    single_add: Option<bool>,
}

/// Each (set, address) once, with the longest timeout asked for: requests merged from two
/// clients may name the same element, and one transaction must not add (or delete) an
/// element twice.
fn elements(updates: &[SetUpdate]) -> Vec<Element> {
    let mut index: HashMap<(&str, IpAddr), usize> = HashMap::new();
    let mut out: Vec<Element> = Vec::new();
    for u in updates {
        for a in &u.addresses {
            match index.get(&(u.set.as_str(), *a)) {
                Some(&i) => out[i].timeout = out[i].timeout.max(u.timeout),
                None => {
                    index.insert((u.set.as_str(), *a), out.len());
                    out.push(Element {
                        set: u.set.clone(),
                        addr: *a,
                        timeout: u.timeout,
                    });
                }
            }
        }
    }
    out
}

impl Writer {
    pub fn new(sets: Sets, warn: Box<dyn Fn(&str) + Send>) -> Writer {
        Writer {
            sets,
            nl: None,
            tried: false,
            warn,
            generation: None,
            recent: HashMap::new(),
            single_add: None,
        }
    }

    /// A writer that never tries netlink: the `nft` / `ipset` commands only (the fallback,
    /// on purpose; `warn` is called once, at the first write).
    pub fn tools_only(sets: Sets, warn: Box<dyn Fn(&str) + Send>) -> Writer {
        let mut w = Writer::new(sets, warn);
        w.tried = true;
        w.fall_back("netlink not used (tools only)");
        w
    }

    fn netlink(&mut self) -> Option<&mut Nfnl> {
        if !self.tried {
            self.tried = true;
            match Nfnl::open() {
                Ok(n) => self.nl = Some(n),
                Err(e) => self.fall_back(&e.to_string()),
            }
        }
        self.nl.as_mut()
    }

    fn fall_back(&mut self, why: &str) {
        self.nl = None;
        self.generation = None;
        self.recent.clear();
        let tool = match self.sets {
            Sets::Nftables => "nft",
            Sets::Ipset => "ipset",
        };
        (self.warn)(&format!(
            "{why}; writing sets with the `{tool}` command instead (slower: one process per update)"
        ));
    }

    /// Drop the elements written within [`RECENT`] (if the ruleset is unchanged since).
    fn without_recent(&mut self, updates: &[SetUpdate]) -> Vec<SetUpdate> {
        if self.sets != Sets::Nftables || self.recent.is_empty() {
            return updates.to_vec();
        }
        let known = self.generation;
        let now_gen = self.nl.as_mut().and_then(|n| n.nft_generation().ok());
        if known.is_none() || now_gen != known {
            self.recent.clear();
            return updates.to_vec();
        }
        let now = Instant::now();
        updates
            .iter()
            .map(|u| SetUpdate {
                set: u.set.clone(),
                addresses: u
                    .addresses
                    .iter()
                    // Written again unless written within RECENT and living at least as
                    // long as this update asks, less RECENT.
                    .filter(|a| {
                        self.recent
                            .get(&(u.set.clone(), **a))
                            .is_none_or(|(at, until)| {
                                now.duration_since(*at) >= RECENT
                                    || *until < now + u.timeout.saturating_sub(RECENT)
                            })
                    })
                    .copied()
                    .collect(),
                timeout: u.timeout,
            })
            .filter(|u| !u.addresses.is_empty())
            .collect()
    }

    /// Write `updates`: every address into its set with its timeout (an address already
    /// there gets the new timeout). With `skip_recent`, addresses written within [`RECENT`]
    /// are left as they are.
    pub fn write(&mut self, updates: &[SetUpdate], skip_recent: bool) -> Result<(), String> {
        let _ = self.netlink();
        let todo = if skip_recent {
            self.without_recent(updates)
        } else {
            updates.to_vec()
        };
        let elems = elements(&todo);
        if elems.is_empty() {
            return Ok(());
        }
        let sets = self.sets;
        let result = match (sets, self.nl.as_mut()) {
            (Sets::Nftables, Some(nl)) => {
                let before = nl.nft_generation().ok();
                // The first write finds out, on its first element, whether a plain add
                // refreshes timeouts here; the rest is written the way that works.
                let mut probes = 0;
                if self.single_add.is_none() {
                    if let Some((works, n)) = single_add_refreshes(nl, &elems[0]) {
                        self.single_add = Some(works);
                        probes = n;
                    }
                }
                let single = self.single_add == Some(true);
                match nl.nft_refresh(TABLE, &elems, single) {
                    Ok(transactions) => {
                        let transactions = transactions + probes;
                        let after = nl.nft_generation().ok();
                        self.generation = match (before, after) {
                            (Some(b), Some(a)) if a == b.wrapping_add(transactions) => Some(a),
                            _ => None,
                        };
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            (Sets::Ipset, Some(nl)) => nl.ipset_add(&elems),
            (Sets::Nftables, None) => return nft_command(&todo),
            (Sets::Ipset, None) => return ipset_command(&elems),
        };
        match result {
            Ok(()) => {
                if sets == Sets::Nftables {
                    let now = Instant::now();
                    if self.recent.len() > MAX_RECENT {
                        self.recent
                            .retain(|_, (at, _)| now.duration_since(*at) < RECENT);
                        if self.recent.len() > MAX_RECENT {
                            self.recent.clear();
                        }
                    }
                    for e in elems {
                        self.recent.insert((e.set, e.addr), (now, now + e.timeout));
                    }
                }
                Ok(())
            }
            Err(nfnl::Error::Unavailable(why)) => {
                self.fall_back(&why);
                match sets {
                    Sets::Nftables => nft_command(&todo),
                    Sets::Ipset => ipset_command(&elems),
                }
            }
            Err(nfnl::Error::Refused(why)) => Err(why),
        }
    }
}

/// Does a plain add refresh the timeout of an element that is there? Tried on `e`: written
/// the safe way (add, delete, add), then added again with one second more and read back.
/// Returns the answer and how many transactions the try committed; any doubt is "no" (the
/// safe way). `None` if `e` cannot be written at all (the real write then says why, and the
/// next write tries again).
fn single_add_refreshes(nl: &mut Nfnl, e: &Element) -> Option<(bool, u32)> {
    if nl
        .nft_refresh(TABLE, std::slice::from_ref(e), false)
        .is_err()
    {
        return None;
    }
    let longer = Element {
        timeout: e.timeout + Duration::from_secs(1),
        ..e.clone()
    };
    if nl
        .nft_refresh(TABLE, std::slice::from_ref(&longer), true)
        .is_err()
    {
        return Some((false, 1));
    }
    let want = u64::try_from(longer.timeout.as_millis()).unwrap_or(u64::MAX);
    let works = matches!(
        nl.nft_element_timeout(TABLE, &e.set, e.addr),
        Ok(Some(ms)) if ms.abs_diff(want) < 500
    );
    Some((works, 2))
}

/// Fallback: one `nft -j -f -` transaction (add, delete, add each element).
fn nft_command(updates: &[SetUpdate]) -> Result<(), String> {
    let json = serde_json::to_string(&crate::sync::transaction(updates))
        .map_err(|e| format!("nft: {e}"))?;
    run_tool("nft", &["-j", "-f", "-"], &json)
}

/// Run a tool with `input` on its standard input; its complaint, made readable, on failure.
pub fn run_tool(tool: &str, args: &[&str], input: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("{tool}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{tool}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err
        .lines()
        .map(|l| l.trim_start_matches("internal:0:0-0: ").trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let hint = if err.contains("No such file") || err.contains("does not exist") {
        " (no such table or set: is the ruleset loaded? `portolan load`)"
    } else {
        ""
    };
    Err(format!("{tool}: {err}{hint}"))
}

/// Fallback: `ipset -exist restore`, one `add` per element.
fn ipset_command(elems: &[Element]) -> Result<(), String> {
    let mut script = String::new();
    for e in elems {
        script.push_str(&format!(
            "add {} {} timeout {}\n",
            e.set,
            e.addr,
            e.timeout.as_secs().max(1)
        ));
    }
    run_tool("ipset", &["-exist", "restore"], &script)
}

struct Job {
    updates: Vec<SetUpdate>,
    skip_recent: bool,
    reply: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// A [`Writer`] on a thread of its own; cheap to clone, usable from async code.
#[derive(Clone)]
pub struct Service {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("sets::Service")
    }
}

impl Service {
    /// Start the writer thread. `warn` is called (once) if netlink cannot be used.
    pub fn start(sets: Sets, warn: Box<dyn Fn(&str) + Send>) -> Service {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("portolan-sets".into())
            .spawn(move || {
                let mut w = Writer::new(sets, warn);
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_MERGED {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    run(&mut w, jobs);
                }
            })
            .expect("spawn the set writer thread");
        Service { tx }
    }

    /// Write `updates` and wait until the kernel has them (or refused them). Returns how
    /// long it took, waiting included.
    pub async fn commit(
        &self,
        updates: Vec<SetUpdate>,
        skip_recent: bool,
    ) -> Result<Duration, String> {
        if updates.iter().all(|u| u.addresses.is_empty()) {
            return Ok(Duration::ZERO);
        }
        let start = Instant::now();
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job {
                updates,
                skip_recent,
                reply,
            })
            .map_err(|_| "the set writer has stopped".to_string())?;
        answer
            .await
            .map_err(|_| "the set writer has stopped".to_string())??;
        Ok(start.elapsed())
    }
}

/// Write merged jobs in one go; if that fails, each on its own.
fn run(w: &mut Writer, jobs: Vec<Job>) {
    if jobs.len() > 1 {
        let skip = jobs.iter().all(|j| j.skip_recent);
        let merged: Vec<SetUpdate> = jobs.iter().flat_map(|j| j.updates.clone()).collect();
        if w.write(&merged, skip).is_ok() {
            for j in jobs {
                let _ = j.reply.send(Ok(()));
            }
            return;
        }
    }
    for j in jobs {
        let r = w.write(&j.updates, j.skip_recent);
        let _ = j.reply.send(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_element_asked_for_twice_is_written_once_with_the_longer_timeout() {
        let u = |set: &str, a: &str, secs| SetUpdate {
            set: set.into(),
            addresses: vec![a.parse().expect("addr")],
            timeout: Duration::from_secs(secs),
        };
        let e = elements(&[
            u("s", "192.0.2.1", 60),
            u("t", "192.0.2.1", 60),
            u("s", "192.0.2.1", 600),
        ]);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].timeout, Duration::from_secs(600));
    }
}
