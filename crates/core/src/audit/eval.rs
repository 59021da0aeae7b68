//! Symbolic evaluation: push a region of packets through the hooks of a path and split it
//! into what is accepted, dropped, and what depends on a match the audit does not
//! understand.

use std::collections::{BTreeSet, HashMap};

use super::ruleset::{iface_match, Action, Atom, Cond, Hook, Ruleset};
use super::space::{coalesce, intersect, subtract, Cube, Dim, IvSet, Region};

/// Interned interface names. Id 0 is "no interface" (the input interface of a locally
/// generated packet), 1 is `lo`; then every name the ruleset or the site mentions; then one
/// class per wildcard prefix for the names that match it and are not listed; then "any
/// other interface".
#[derive(Debug, Clone)]
pub struct Ifaces {
    names: Vec<String>,
}

const WILD_MARK: char = '\u{1}';
const OTHER: &str = "\u{2}other";

impl Ifaces {
    pub fn new(exact: &BTreeSet<String>, prefixes: &BTreeSet<String>) -> Ifaces {
        let mut names = vec![String::new(), "lo".to_string()];
        names.extend(
            exact
                .iter()
                .filter(|n| !n.is_empty() && *n != "lo")
                .cloned(),
        );
        names.extend(prefixes.iter().map(|p| format!("{p}{WILD_MARK}")));
        names.push(OTHER.to_string());
        Ifaces { names }
    }
    pub fn id(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }
    pub fn none() -> u32 {
        0
    }
    pub fn lo() -> u32 {
        1
    }
    pub fn len(&self) -> u32 {
        self.names.len() as u32
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Ids of real interfaces other than `lo`.
    pub fn wire(&self) -> IvSet {
        IvSet::single(2, u128::from(self.len() - 1))
    }
    /// Ids matching any of the patterns.
    pub fn matching(&self, patterns: &[String]) -> IvSet {
        let mut v = Vec::new();
        for (i, n) in self.names.iter().enumerate() {
            let hit = if i == 0 || n == OTHER {
                false
            } else if let Some(prefix) = n.strip_suffix(WILD_MARK) {
                // The class "some name starting with `prefix`": a pattern matches it when the
                // pattern is a wildcard no longer than the prefix and a prefix of it.
                patterns
                    .iter()
                    .any(|p| p.strip_suffix('*').is_some_and(|pp| prefix.starts_with(pp)))
            } else {
                patterns.iter().any(|p| iface_match(p, n))
            };
            if hit {
                v.push((i as u128, i as u128));
            }
        }
        IvSet::from_intervals(v)
    }
    /// A printable name for an id.
    pub fn display(&self, id: u128) -> String {
        match self.names.get(id as usize) {
            None => "?".into(),
            Some(n) if n.is_empty() => "(none)".into(),
            Some(n) if n == OTHER => "(an interface not named in the ruleset or site)".into(),
            Some(n) => match n.strip_suffix(WILD_MARK) {
                Some(p) => format!("{p}… (an interface matching {p}*)"),
                None => n.clone(),
            },
        }
    }
}

/// Which rule decided: (chain, rule index), or the chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleRef {
    pub chain: usize,
    /// `None`: the chain's policy.
    pub rule: Option<usize>,
}

/// What happened to a piece of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Accept,
    Drop,
    /// The rule has a match or verdict the audit does not model.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Decision {
    pub cube: Cube,
    pub kind: Kind,
    pub by: RuleRef,
    /// The destination NAT rule that rewrote it on the way, if any.
    pub nat: Option<RuleRef>,
}

/// A piece of a region on its way along a path: who accepted it so far and which
/// destination NAT rewrote it.
#[derive(Debug, Clone)]
pub struct Piece {
    pub cube: Cube,
    pub by: Option<RuleRef>,
    pub nat: Option<RuleRef>,
}

impl From<Cube> for Piece {
    /// A piece not yet accepted or rewritten by anything.
    fn from(cube: Cube) -> Piece {
        Piece {
            cube,
            by: None,
            nat: None,
        }
    }
}

impl Decision {
    fn new(cube: Cube, kind: Kind, by: RuleRef) -> Decision {
        Decision {
            cube,
            kind,
            by,
            nat: None,
        }
    }
}

/// Compiled destination NAT: the family it rewrites, new addresses (per family for a
/// REDIRECT in an inet table), new ports.
#[derive(Debug, Clone)]
struct CDnat {
    fams: IvSet,
    addr: [Option<IvSet>; 2],
    ports: Option<IvSet>,
}

#[derive(Debug, Clone)]
enum CAction {
    Continue,
    Accept,
    Drop,
    Return,
    Jump(usize),
    Goto(usize),
    Unknown,
    Vmap(Vec<(Region, CAction)>),
    Dnat(Box<CDnat>),
}

#[derive(Debug, Clone)]
struct CRule {
    region: Region,
    unknown: bool,
    action: CAction,
}

/// A ruleset compiled against an interface table and DNS bindings.
pub struct Compiled<'a> {
    pub rs: &'a Ruleset,
    pub ifaces: Ifaces,
    rules: Vec<Vec<CRule>>,
    /// Too fragmented, or out of rule visits: evaluation stopped.
    pub overflow: std::cell::Cell<bool>,
    /// Cubes a chain walk may hold before giving up (see [`CUBE_BUDGET`]).
    pub budget: usize,
    /// Work so far (rule visits, each weighted by the packet pieces it was tested against),
    /// over all walks of this compiled ruleset.
    pub work: std::cell::Cell<usize>,
    /// Work allowed before evaluation stops: [`WORK_BASE`], plus for each walk
    /// [`WORK_PER_RULE`] x rules x pieces walked.
    pub work_budget: std::cell::Cell<usize>,
    total_rules: usize,
    /// Rules assumed to match (`true`) or not (`false`) whatever their unmodelled matches
    /// say: the conditional verdicts ("allowed unless the rule at ... matches").
    pub assume: std::cell::RefCell<HashMap<RuleRef, bool>>,
    /// The host's own addresses per family (REDIRECT's target, addrtype `local`).
    local: [IvSet; 2],
}

/// Work allowed per rule of the ruleset and per packet piece walked. A chain reached from
/// several places is walked once per place, so a ruleset where every chain jumps twice to
/// the next costs 2^depth walks; this bound keeps any ruleset linear in its size times the
/// flows. When it is hit, the packets still undecided are `unknown`, with the reason.
pub const WORK_PER_RULE: usize = 64;
/// Work every ruleset may use, however small.
pub const WORK_BASE: usize = 100_000;

/// Cubes a single evaluation may hold before it gives up.
pub const CUBE_BUDGET: usize = 500_000;

impl<'a> Compiled<'a> {
    /// `tags`: named-set key -> DNS tag (the plan's unresolved names); `extra_ifaces`: the
    /// site's interface names.
    pub fn new(rs: &'a Ruleset, tags: &HashMap<String, Vec<u32>>, extra_ifaces: &[String]) -> Self {
        Self::with_local(rs, tags, extra_ifaces, &[IvSet::empty(), IvSet::empty()])
    }

    /// As [`Compiled::new`]; `local`: the addresses a REDIRECT sends to, per family (the
    /// host's own; loopback when empty).
    pub fn with_local(
        rs: &'a Ruleset,
        tags: &HashMap<String, Vec<u32>>,
        extra_ifaces: &[String],
        local: &[IvSet; 2],
    ) -> Self {
        let mut exact: BTreeSet<String> = extra_ifaces.iter().cloned().collect();
        let mut prefixes = BTreeSet::new();
        let mut note = |pats: &[String]| {
            for p in pats {
                match p.strip_suffix('*') {
                    Some(pre) => {
                        prefixes.insert(pre.to_string());
                    }
                    None => {
                        exact.insert(p.clone());
                    }
                }
            }
        };
        for c in &rs.chains {
            if let Some(d) = c.base.as_ref().and_then(|b| b.device.as_ref()) {
                note(std::slice::from_ref(d));
            }
            for r in &c.rules {
                for cond in &r.conds {
                    visit_ifaces(cond, &mut note);
                }
                if let Action::Vmap(es) = &r.action {
                    for (cond, _) in es {
                        visit_ifaces(cond, &mut note);
                    }
                }
            }
        }
        let ifaces = Ifaces::new(&exact, &prefixes);
        let mut out = Compiled {
            rs,
            ifaces,
            rules: Vec::new(),
            overflow: std::cell::Cell::new(false),
            budget: CUBE_BUDGET,
            work: std::cell::Cell::new(0),
            work_budget: std::cell::Cell::new(WORK_BASE),
            total_rules: rs.chains.iter().map(|c| c.rules.len()).sum::<usize>(),
            assume: std::cell::RefCell::new(HashMap::new()),
            // Loopback is always local.
            local: [
                local[0].union(&IvSet::single(0x7f00_0000, 0x7fff_ffff)),
                local[1].union(&IvSet::point(1)),
            ],
        };
        // REDIRECT goes to the receiving interface's address: the host's own, or loopback
        // when none is known.
        let local: [IvSet; 2] = [
            if local[0].is_empty() {
                IvSet::point(0x7f00_0001)
            } else {
                local[0].clone()
            },
            if local[1].is_empty() {
                IvSet::point(1)
            } else {
                local[1].clone()
            },
        ];
        let mut rules = Vec::with_capacity(rs.chains.len());
        for c in &rs.chains {
            let mut v = Vec::with_capacity(c.rules.len());
            for r in &c.rules {
                let region = out.conds_region(&r.conds, tags);
                let action = out.action(&c.scope, &r.action, tags, &local);
                v.push(CRule {
                    region,
                    unknown: !r.unknown.is_empty(),
                    action,
                });
            }
            rules.push(v);
        }
        out.rules = rules;
        out
    }

    fn action(
        &self,
        scope: &str,
        a: &Action,
        tags: &HashMap<String, Vec<u32>>,
        local: &[IvSet; 2],
    ) -> CAction {
        match a {
            Action::Continue => CAction::Continue,
            Action::Accept => CAction::Accept,
            Action::Drop => CAction::Drop,
            Action::Return => CAction::Return,
            Action::Jump(t) => self
                .rs
                .chain_index(scope, t)
                .map_or(CAction::Unknown, CAction::Jump),
            Action::Goto(t) => self
                .rs
                .chain_index(scope, t)
                .map_or(CAction::Unknown, CAction::Goto),
            Action::Unknown(_) => CAction::Unknown,
            Action::Dnat(d) => CAction::Dnat(Box::new(CDnat {
                fams: d
                    .fam
                    .map_or(IvSet::single(0, 1), |f| IvSet::point(f.into())),
                addr: [0usize, 1].map(|f| match &d.addr {
                    Some(a) if d.fam == Some(f as u8) => Some(a.clone()),
                    Some(_) => None,
                    None => Some(local[f].clone()),
                }),
                ports: d.ports.clone(),
            })),
            Action::Vmap(es) => CAction::Vmap(
                es.iter()
                    .map(|(c, a)| {
                        (
                            self.conds_region(std::slice::from_ref(c), tags),
                            self.action(scope, a, tags, local),
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn atom_set(&self, a: &Atom, tags: &HashMap<String, Vec<u32>>) -> (Dim, IvSet) {
        match a {
            Atom::In(d, s) => (*d, s.clone()),
            Atom::Iface(d, pats) => (*d, self.ifaces.matching(pats)),
            Atom::AddrType(..) => unreachable!("split per family in cond_region"),
            Atom::SetTag(d, key) => (
                *d,
                tags.get(key).map_or_else(IvSet::empty, |t| {
                    IvSet::from_intervals(
                        t.iter().map(|&t| (u128::from(t), u128::from(t))).collect(),
                    )
                }),
            ),
        }
    }

    /// Addresses of the given types in a family (`None`: a type the audit cannot decide).
    pub fn addr_types(&self, fam: usize, types: &[String]) -> IvSet {
        let (mcast, bcast) = if fam == 0 {
            (
                IvSet::single(0xe000_0000, 0xefff_ffff),
                IvSet::point(0xffff_ffff),
            )
        } else {
            (IvSet::single(0xff00u128 << 112, u128::MAX), IvSet::empty())
        };
        let local = &self.local[fam];
        let mut out = IvSet::empty();
        for t in types {
            let s = match t.as_str() {
                "local" => local.clone(),
                "multicast" => mcast.clone(),
                "broadcast" => bcast.clone(),
                _ => local.union(&mcast).union(&bcast).complement(if fam == 0 {
                    u128::from(u32::MAX)
                } else {
                    u128::MAX
                }),
            };
            out = out.union(&s);
        }
        out
    }

    pub fn cond_region(&self, c: &Cond, tags: &HashMap<String, Vec<u32>>) -> Region {
        let mut out = Vec::new();
        'terms: for t in &c.0 {
            // An address type differs per family: such a term is one cube per family.
            if let Some(pos) =
                t.0.iter()
                    .position(|(a, _)| matches!(a, Atom::AddrType(..)))
            {
                let (Atom::AddrType(d, types), neg) = &t.0[pos] else {
                    unreachable!()
                };
                let mut rest = t.clone();
                rest.0.remove(pos);
                for fam in [0usize, 1] {
                    let mut s = self.addr_types(fam, types);
                    if *neg {
                        s = s.complement(Dim::max(*d));
                    }
                    let part = Cube::full()
                        .with(Dim::Fam, &IvSet::point(fam as u128))
                        .with(*d, &s);
                    if part.is_empty() {
                        continue;
                    }
                    out.extend(intersect(
                        &[part],
                        &self.cond_region(&Cond(vec![rest.clone()]), tags),
                    ));
                }
                continue 'terms;
            }
            let mut cube = Cube::full();
            for (a, neg) in &t.0 {
                let (d, mut s) = self.atom_set(a, tags);
                if *neg {
                    s = s.complement(d.max());
                }
                cube = cube.with(d, &s);
                if cube.get(d).is_empty() {
                    continue 'terms;
                }
            }
            out.push(cube);
        }
        out
    }

    pub fn conds_region(&self, conds: &[Cond], tags: &HashMap<String, Vec<u32>>) -> Region {
        let mut r = vec![Cube::full()];
        for c in conds {
            let cr = self.cond_region(c, tags);
            r = intersect(&r, &cr);
            if r.is_empty() {
                break;
            }
        }
        r
    }

    /// Base chains on a hook, in the order the kernel runs them.
    fn base_chains(&self, hook: Hook) -> Vec<usize> {
        let mut v: Vec<(i32, usize)> = self
            .rs
            .chains
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.base
                    .as_ref()
                    .filter(|b| b.hook == hook)
                    .map(|b| (b.priority, i))
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// Why evaluation stopped early (when [`Compiled::overflow`] is set).
    pub fn overflow_reason(&self) -> String {
        if self.work.get() > self.work_budget.get() {
            format!(
                "evaluation stopped after {} steps (chains reached from many places, e.g. each jumping twice to the next); what was still undecided is unknown",
                self.work_budget.get()
            )
        } else {
            format!(
                "the ruleset split the packet space into more than {} pieces; evaluation stopped early and the results may be incomplete",
                self.budget
            )
        }
    }

    /// Push `region` along the hooks of a path. Returns every decided piece; accepted
    /// pieces carry the rule credited with accepting them (see [`Compiled::run_hooks`]).
    pub fn run_path(&self, hooks: &[Hook], region: Region) -> Vec<Decision> {
        let pieces = region.into_iter().map(Piece::from).collect();
        let (mut out, left) = self.run_hooks(hooks, pieces);
        out.extend(Self::accepted(left));
        out
    }

    /// Pieces that went through every hook, as accept decisions.
    pub fn accepted(pieces: Vec<Piece>) -> impl Iterator<Item = Decision> {
        pieces.into_iter().map(|p| Decision {
            cube: p.cube,
            kind: Kind::Accept,
            // No chain at all on the path: the kernel's default is to accept.
            by: p.by.unwrap_or(RuleRef {
                chain: usize::MAX,
                rule: None,
            }),
            nat: p.nat,
        })
    }

    /// Push pieces along some hooks. Returns what was dropped or left undecided, and the
    /// pieces that went on (accepted, possibly rewritten by a destination NAT), each
    /// credited with the accepting rule of a filtering chain (a later chain's policy accept
    /// or a nat chain's accept is no answer to "who let this in").
    pub fn run_hooks(&self, hooks: &[Hook], pieces: Vec<Piece>) -> (Vec<Decision>, Vec<Piece>) {
        self.work_budget.set(
            self.work_budget.get().saturating_add(
                WORK_PER_RULE
                    .saturating_mul(self.total_rules)
                    .saturating_mul(pieces.len().max(1)),
            ),
        );
        let mut cur = pieces;
        let mut out = Vec::new();
        for &hook in hooks {
            for ci in self.base_chains(hook) {
                if cur.is_empty() {
                    break;
                }
                let Some(base) = self.rs.chains[ci].base.as_ref() else {
                    continue;
                };
                let mut scope = Cube::full().with(Dim::Fam, &base.families);
                if let Some(dev) = &base.device {
                    scope = scope.with(Dim::Iif, &self.ifaces.matching(std::slice::from_ref(dev)));
                }
                let policy_drop = base.policy_drop;
                let mut inside = Vec::new();
                let mut cur_inside: Vec<Piece> = Vec::new();
                let mut next = Vec::new();
                for p in cur {
                    let mut tmp = Vec::new();
                    p.cube.subtract(&scope, &mut tmp);
                    next.extend(tmp.into_iter().map(|c| Piece {
                        cube: c,
                        by: p.by,
                        nat: p.nat,
                    }));
                    if let Some(i) = p.cube.intersect(&scope) {
                        inside.push(i.clone());
                        cur_inside.push(Piece {
                            cube: i,
                            by: p.by,
                            nat: p.nat,
                        });
                    }
                }
                let rewrites = base.rewrites;
                let credit = |earlier: Option<RuleRef>, now: RuleRef| -> Option<RuleRef> {
                    match earlier {
                        Some(e) if rewrites || (now.rule.is_none() && e.rule.is_some()) => Some(e),
                        _ => Some(now),
                    }
                };
                let mut local = Vec::new();
                let fall = self.run_chain(ci, inside, 0, &mut local);
                // What each part of `inside` was credited with before this chain; a piece a
                // destination NAT rewrote is found by the dimensions NAT leaves alone.
                let before = |c: &Cube, rewritten: bool| -> Option<&Piece> {
                    cur_inside.iter().find(|e| e.cube.overlaps(c)).or_else(|| {
                        rewritten
                            .then(|| {
                                let mut wide = c.clone();
                                for d in [Dim::Daddr, Dim::Dport, Dim::Dtag] {
                                    wide.set(d, IvSet::single(0, d.max()));
                                }
                                cur_inside.iter().find(|e| e.cube.overlaps(&wide))
                            })
                            .flatten()
                    })
                };
                for d in local {
                    match d.kind {
                        Kind::Accept => {
                            let prev = before(&d.cube, d.nat.is_some());
                            next.push(Piece {
                                by: credit(prev.and_then(|p| p.by), d.by),
                                nat: d.nat.or(prev.and_then(|p| p.nat)),
                                cube: d.cube,
                            });
                        }
                        _ => {
                            let nat = before(&d.cube, true).and_then(|p| p.nat);
                            out.push(Decision { nat, ..d });
                        }
                    }
                }
                let by = RuleRef {
                    chain: ci,
                    rule: None,
                };
                for c in fall {
                    let prev = before(&c, true);
                    let nat = prev.and_then(|p| p.nat);
                    if policy_drop {
                        out.push(Decision {
                            cube: c,
                            kind: Kind::Drop,
                            by,
                            nat,
                        });
                    } else {
                        next.push(Piece {
                            by: credit(prev.and_then(|p| p.by), by),
                            nat,
                            cube: c,
                        });
                    }
                }
                cur = next;
            }
        }
        (out, cur)
    }

    /// Run a chain; returns what falls through or returns to the caller.
    fn run_chain(
        &self,
        ci: usize,
        region: Region,
        depth: usize,
        out: &mut Vec<Decision>,
    ) -> Region {
        let mut rem = region;
        let mut ret: Region = Vec::new();
        let mut last_coalesce = rem.len().max(32);
        let n = self.rules[ci].len();
        for ri in 0..n {
            if rem.is_empty() || self.overflow.get() {
                break;
            }
            let by = RuleRef {
                chain: ci,
                rule: Some(ri),
            };
            let r = &self.rules[ci][ri];
            let work = self.work.get().saturating_add(rem.len());
            self.work.set(work);
            if work > self.work_budget.get() {
                self.overflow.set(true);
                break;
            }
            if !rem.iter().any(|a| r.region.iter().any(|b| a.overlaps(b))) {
                continue;
            }
            let rule_region = &r.region;
            let assumed = if r.unknown {
                self.assume.borrow().get(&by).copied()
            } else {
                None
            };
            if assumed == Some(false) {
                // Assumed not to match: the packets go on.
                continue;
            }
            if r.unknown && assumed.is_none() {
                if matches!(r.action, CAction::Continue) {
                    continue;
                }
                for c in intersect(&rem, rule_region) {
                    out.push(Decision::new(c, Kind::Unknown, by));
                }
                rem = subtract(rem, rule_region);
            } else {
                self.apply(&r.action, rule_region, &mut rem, &mut ret, by, depth, out);
            }
            if rem.len() > 2 * last_coalesce {
                rem = coalesce(rem);
                last_coalesce = rem.len().max(32);
            }
            if rem.len() + ret.len() > self.budget {
                self.overflow.set(true);
            }
        }
        rem.extend(ret);
        if self.overflow.get() {
            // Gave up: what is left is undecided, never "fell through to the policy".
            for c in rem {
                out.push(Decision::new(
                    c,
                    Kind::Unknown,
                    RuleRef {
                        chain: ci,
                        rule: None,
                    },
                ));
            }
            return Vec::new();
        }
        rem
    }

    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        action: &CAction,
        m: &[Cube],
        rem: &mut Region,
        ret: &mut Region,
        by: RuleRef,
        depth: usize,
        out: &mut Vec<Decision>,
    ) {
        let decide = |kind: Kind, rem: &mut Region, out: &mut Vec<Decision>| {
            for c in intersect(rem, m) {
                out.push(Decision::new(c, kind, by));
            }
            *rem = subtract(std::mem::take(rem), m);
        };
        match action {
            CAction::Continue => {}
            CAction::Accept => decide(Kind::Accept, rem, out),
            CAction::Drop => decide(Kind::Drop, rem, out),
            CAction::Unknown => decide(Kind::Unknown, rem, out),
            CAction::Return => {
                ret.extend(intersect(rem, m));
                *rem = subtract(std::mem::take(rem), m);
            }
            CAction::Jump(t) | CAction::Goto(t) => {
                let hit = intersect(rem, m);
                *rem = subtract(std::mem::take(rem), m);
                if depth > 32 {
                    for c in hit {
                        out.push(Decision::new(c, Kind::Unknown, by));
                    }
                    return;
                }
                let back = self.run_chain(*t, hit, depth + 1, out);
                if matches!(action, CAction::Jump(_)) {
                    rem.extend(back);
                } else {
                    ret.extend(back);
                }
            }
            CAction::Dnat(d) => {
                // Only the family it rewrites; the other passes the rule unchanged.
                let fam_m: Region = m
                    .iter()
                    .filter_map(|c| {
                        let x = c.clone().with(Dim::Fam, &d.fams);
                        (!x.is_empty()).then_some(x)
                    })
                    .collect();
                for c in intersect(rem, &fam_m) {
                    for fam in [0u8, 1] {
                        let mut c = c.clone().with(Dim::Fam, &IvSet::point(fam.into()));
                        if c.is_empty() {
                            continue;
                        }
                        let Some(a) = &d.addr[usize::from(fam)] else {
                            continue;
                        };
                        c.set(Dim::Daddr, a.clone());
                        c.set(Dim::Dtag, IvSet::point(0));
                        if let Some(p) = &d.ports {
                            c.set(Dim::Dport, p.clone());
                        }
                        out.push(Decision {
                            cube: c,
                            kind: Kind::Accept,
                            by,
                            nat: Some(by),
                        });
                    }
                }
                *rem = subtract(std::mem::take(rem), &fam_m);
            }
            CAction::Vmap(entries) => {
                for (er, ea) in entries {
                    let mm = intersect(m, er);
                    if mm.is_empty() {
                        continue;
                    }
                    self.apply(ea, &mm, rem, ret, by, depth, out);
                }
            }
        }
    }
}

fn visit_ifaces(c: &Cond, f: &mut impl FnMut(&[String])) {
    for t in &c.0 {
        for (a, _) in &t.0 {
            if let Atom::Iface(_, pats) = a {
                f(pats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::ruleset::{Base, Chain, Rule};

    /// A chain of drops that each carve one (source, port) point out of everything: the
    /// remaining region fragments. With a tiny budget, the walk must stop and say so.
    fn carving_ruleset(n: u128) -> Ruleset {
        let rules = (0..n)
            .map(|i| Rule {
                conds: vec![
                    Cond::is(Dim::Saddr, IvSet::point(i * 3)),
                    Cond::is(Dim::Dport, IvSet::point(1000 + i * 7)),
                    Cond::is(Dim::Sport, IvSet::point(40000 - i)),
                ],
                unknown: vec![],
                action: Action::Drop,
                loc: format!("r{i}"),
                text: String::new(),
            })
            .collect();
        let mut rs = Ruleset {
            format: "test",
            families: IvSet::single(0, 1),
            ..Ruleset::default()
        };
        rs.chains.push(Chain {
            name: "in".into(),
            scope: "t".into(),
            rules,
            base: Some(Base {
                hook: Hook::Input,
                priority: 0,
                families: IvSet::single(0, 1),
                policy_drop: false,
                policy_loc: "policy".into(),
                device: None,
                rewrites: false,
            }),
        });
        rs
    }

    #[test]
    fn fragmentation_is_bounded_and_reported() {
        let rs = carving_ruleset(200);
        let mut c = Compiled::new(&rs, &HashMap::new(), &[]);
        let full = c.run_path(&[Hook::Input], vec![Cube::full()]);
        assert!(!c.overflow.get());
        let dropped = full.iter().filter(|d| d.kind == Kind::Drop).count();
        assert_eq!(dropped, 200, "each rule drops its own point");
        c.budget = 50;
        let cut = c.run_path(&[Hook::Input], vec![Cube::full()]);
        assert!(c.overflow.get(), "a walk beyond the budget must be flagged");
        assert!(
            cut.iter().any(|d| d.kind == Kind::Unknown),
            "what was not walked is unknown, not accepted by the policy"
        );
    }
}
