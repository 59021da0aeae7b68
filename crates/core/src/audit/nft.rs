//! Front end: `nft -j list ruleset` output.
//!
//! The JSON is read as a generic tree on purpose: a typed schema would reject a whole file
//! for one expression it does not know, where the audit must instead name that expression
//! and treat the rule as "may match".

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::ruleset::*;
use super::space::{Dim, IvSet};
use crate::diag::{Diagnostic, Errors, Source};

/// A value field on the left of a match.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    /// Saddr/Daddr of family 0/1.
    Addr(Dim, u8),
    /// Sport/Dport; the protocols the header implies (`th` = all port protocols).
    Port(Dim, &'static [u8]),
    /// Transport protocol; `Some(fam)` for `ip protocol` / `ip6 nexthdr`.
    Proto(Option<u8>),
    /// ICMP type of family 0/1.
    Icmp(u8),
    Iface(Dim),
    /// `meta nfproto` (ipv4/ipv6) and `meta protocol` (ip/ip6).
    Fam,
}

const TCP: &[u8] = &[6];
const UDP: &[u8] = &[17];
const SCTP: &[u8] = &[132];
const DCCP: &[u8] = &[33];
const UDPLITE: &[u8] = &[136];

impl Field {
    fn dim(self) -> Dim {
        match self {
            Field::Addr(d, _) | Field::Port(d, _) | Field::Iface(d) => d,
            Field::Proto(_) => Dim::Proto,
            Field::Icmp(_) => Dim::Icmp,
            Field::Fam => Dim::Fam,
        }
    }
    /// Conditions the field itself implies (its header must be there).
    fn deps(self) -> Vec<Cond> {
        let mut v = Vec::new();
        match self {
            Field::Addr(_, fam) | Field::Proto(Some(fam)) => {
                v.push(Cond::is(Dim::Fam, IvSet::point(fam.into())))
            }
            Field::Port(_, protos) => v.push(Cond::is(
                Dim::Proto,
                IvSet::from_intervals(
                    protos
                        .iter()
                        .map(|p| (u128::from(*p), u128::from(*p)))
                        .collect(),
                ),
            )),
            Field::Icmp(fam) => {
                v.push(Cond::is(Dim::Fam, IvSet::point(fam.into())));
                v.push(Cond::is(
                    Dim::Proto,
                    IvSet::point(if fam == 0 { 1 } else { 58 }),
                ));
            }
            _ => {}
        }
        v
    }
}

/// What the left side of a match is.
enum Left {
    Fields(Vec<Field>),
    CtState,
    CtDirection,
    /// `tcp flags`, with an optional mask.
    TcpFlags(Option<u8>),
    /// `fib saddr type` / `fib daddr type` (no other flags): the address's routing type.
    FibType(Dim),
    Unknown(String),
}

struct Ctx<'a> {
    family: &'a str,
    table: &'a str,
    sets: &'a HashMap<(String, String, String), Value>,
}

type R<T> = Result<T, String>;

/// Parse `nft -j list ruleset` output.
pub fn parse(src: &Source) -> Result<Ruleset, Errors> {
    let root: Value = serde_json::from_str(&src.text).map_err(|e| json_error(src, &e))?;
    let Some(items) = root.get("nftables").and_then(Value::as_array) else {
        return Err(
            Diagnostic::error("not nft JSON: no top-level \"nftables\" array")
                .in_file(src)
                .with_help("give the output of `nft -j list ruleset`")
                .into(),
        );
    };
    let err = |i: usize, what: &str, msg: String| -> Errors {
        Diagnostic::error(format!("object #{i} ({what}): {msg}"))
            .in_file(src)
            .with_help("give the unmodified output of `nft -j list ruleset`")
            .into()
    };
    let mut rs = Ruleset {
        format: "nft-json",
        families: IvSet::single(0, 1),
        ..Ruleset::default()
    };
    let mut sets: HashMap<(String, String, String), Value> = HashMap::new();
    // Pass 1: tables, chains and sets.
    for (i, it) in items.iter().enumerate() {
        let Some((kind, body)) = it.as_object().and_then(|o| o.iter().next()) else {
            return Err(err(i, "?", "expected an object with one key".into()));
        };
        match kind.as_str() {
            "set" | "map" => {
                let (f, t, n) = names(body).map_err(|m| err(i, kind, m))?;
                if kind == "set" && is_addr_type(body.get("type")) {
                    rs.address_sets.push(format!("{f} {t} {n}"));
                }
                sets.insert((f, t, n), body.clone());
            }
            "chain" => {
                let (f, t, n) = names(body).map_err(|m| err(i, kind, m))?;
                let scope = format!("{f} {t}");
                let base = match body.get("hook").and_then(Value::as_str) {
                    None => None,
                    Some(h) => {
                        let families = match f.as_str() {
                            "ip" => IvSet::point(0),
                            "ip6" => IvSet::point(1),
                            "inet" | "netdev" => IvSet::single(0, 1),
                            other => {
                                rs.notes.push(format!(
                                    "chain {scope} {n}: family {other} is not evaluated"
                                ));
                                continue;
                            }
                        };
                        let Some(hook) = Hook::parse(h) else {
                            rs.notes
                                .push(format!("chain {scope} {n}: hook {h} is not evaluated"));
                            continue;
                        };
                        let priority = body.get("prio").and_then(Value::as_i64).unwrap_or(0);
                        let policy_drop =
                            body.get("policy").and_then(Value::as_str) == Some("drop");
                        let device = body
                            .get("dev")
                            .and_then(Value::as_str)
                            .map(ToString::to_string);
                        let ty = body.get("type").and_then(Value::as_str).unwrap_or("filter");
                        Some(Base {
                            hook,
                            priority: priority.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                                as i32,
                            families,
                            policy_drop,
                            policy_loc: format!("{scope} {n} policy"),
                            device,
                            rewrites: ty != "filter",
                        })
                    }
                };
                let idx = rs.chains.len();
                rs.by_name.insert((scope.clone(), n.clone()), idx);
                rs.chains.push(Chain {
                    name: format!("{scope} {n}"),
                    scope,
                    rules: Vec::new(),
                    base,
                });
            }
            _ => {}
        }
    }
    // Pass 2: rules.
    let mut xt_rules = 0usize;
    for (i, it) in items.iter().enumerate() {
        let Some(body) = it.get("rule") else {
            continue;
        };
        let (f, t, c) = (
            str_field(body, "family").map_err(|m| err(i, "rule", m))?,
            str_field(body, "table").map_err(|m| err(i, "rule", m))?,
            str_field(body, "chain").map_err(|m| err(i, "rule", m))?,
        );
        let scope = format!("{f} {t}");
        let Some(&ci) = rs.by_name.get(&(scope.clone(), c.clone())) else {
            if matches!(f.as_str(), "ip" | "ip6" | "inet" | "netdev") {
                return Err(err(i, "rule", format!("chain {scope} {c} is not defined")));
            }
            continue;
        };
        let handle = body.get("handle").and_then(Value::as_u64);
        let loc = match handle {
            Some(h) => format!("{scope} {c} handle {h}"),
            None => format!("{scope} {c} rule #{}", rs.chains[ci].rules.len() + 1),
        };
        let text = body
            .get("comment")
            .and_then(Value::as_str)
            .map(|s| format!("comment \"{}\"", crate::render::comment_text(s)))
            .unwrap_or_default();
        let ctx = Ctx {
            family: &f,
            table: &t,
            sets: &sets,
        };
        let exprs = body
            .get("expr")
            .and_then(Value::as_array)
            .ok_or_else(|| err(i, "rule", format!("{loc}: no \"expr\" list")))?;
        let rule = rule(&ctx, exprs, loc.clone(), text)
            .map_err(|m| err(i, "rule", format!("{loc}: {m}")))?;
        // Jumps must resolve.
        let mut targets = Vec::new();
        collect_targets(&rule.action, &mut targets);
        for tgt in targets {
            if rs.chain_index(&scope, &tgt).is_none() {
                return Err(err(
                    i,
                    "rule",
                    format!("{loc}: jump to chain `{tgt}`, which is not defined"),
                ));
            }
        }
        xt_rules += usize::from(rule.is_xt());
        rs.chains[ci].rules.push(rule);
    }
    if xt_rules > 0 {
        rs.notes.push(format!(
            "{xt_rules} rule(s) were loaded by iptables-nft: nft shows their matches and targets as `xt` without parameters, so the audit cannot read them. Audit the output of `iptables-save` and `ip6tables-save` instead (`portolan audit --live` does when they are installed)"
        ));
    }
    Ok(rs)
}

fn collect_targets(a: &Action, out: &mut Vec<String>) {
    match a {
        Action::Jump(t) | Action::Goto(t) => out.push(t.clone()),
        Action::Vmap(es) => es.iter().for_each(|(_, a)| collect_targets(a, out)),
        _ => {}
    }
}

fn json_error(src: &Source, e: &serde_json::Error) -> Errors {
    let offset = offset_of(&src.text, e.line(), e.column());
    let what = if e.is_eof() {
        "the file ends in the middle of the JSON (truncated?)".to_string()
    } else {
        format!("not valid JSON: {e}")
    };
    let d = Diagnostic::error(what)
        .with_help("give the output of `nft -j list ruleset`, complete and unmodified");
    // `nft -j` writes one long line: quoting it would flood the terminal, so the column goes
    // into the message instead.
    let line_len = src.text[..offset].rsplit('\n').next().map_or(0, str::len)
        + src.text[offset..].split('\n').next().map_or(0, str::len);
    if line_len > 200 {
        Diagnostic {
            message: format!("{} (line {}, column {})", d.message, e.line(), e.column()),
            ..d
        }
        .in_file(src)
        .into()
    } else {
        d.at(src, offset..offset).into()
    }
}

/// Byte offset of a 1-based line and column (serde_json counts columns in bytes).
pub fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            // Regression (found by proptest): the column can point inside a multi-byte
            // character; slicing there panicked. Step back to the character's start.
            let mut at = (off + col.saturating_sub(1)).min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            return at;
        }
        off += l.len();
    }
    text.len()
}

fn str_field(v: &Value, k: &str) -> R<String> {
    v.get(k)
        .and_then(Value::as_str)
        .map(ToString::to_string)
        .ok_or_else(|| format!("missing \"{k}\""))
}

fn names(v: &Value) -> R<(String, String, String)> {
    Ok((
        str_field(v, "family")?,
        str_field(v, "table")?,
        str_field(v, "name")?,
    ))
}

fn is_addr_type(t: Option<&Value>) -> bool {
    matches!(t.and_then(Value::as_str), Some("ipv4_addr" | "ipv6_addr"))
}

fn rule(ctx: &Ctx, exprs: &[Value], loc: String, text: String) -> R<Rule> {
    let mut conds = Vec::new();
    let mut unknown = Vec::new();
    let mut action = Action::Continue;
    for st in exprs {
        let Some((k, body)) = st.as_object().and_then(|o| o.iter().next()) else {
            return Err("a statement is not an object".into());
        };
        if !matches!(action, Action::Continue) {
            // Nothing after a verdict runs.
            break;
        }
        match k.as_str() {
            "match" => {
                let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
                let left = body.get("left").ok_or("match without \"left\"")?;
                let right = body.get("right").ok_or("match without \"right\"")?;
                match match_conds(ctx, op, left, right)? {
                    Ok(mut c) => conds.append(&mut c),
                    Err(why) => unknown.push(why),
                }
            }
            // Statements that decide nothing. (`fwd` is not here: it sends the packet
            // elsewhere, so it falls to the unknown verdicts below.)
            "counter" | "log" | "comment" | "set" | "update" | "mangle" | "meta" | "ct"
            | "flow" | "ct helper" | "ct timeout" | "ct expectation" | "secmark" | "dup" => {}
            // The packet goes on untracked: a later `ct state ... untracked` accepts it, while
            // the audit takes every packet as a new connection. Its verdict is unknown.
            "notrack" => {
                action = Action::Unknown(
                    "notrack: the packet continues untracked, and ct state is not modelled for untracked packets"
                        .into(),
                );
            }
            "limit" | "quota" | "connlimit" | "last" => unknown.push(k.clone()),
            "accept" => action = Action::Accept,
            "drop" | "reject" => action = Action::Drop,
            "return" => action = Action::Return,
            "continue" => {}
            "jump" | "goto" => {
                let t = body
                    .get("target")
                    .and_then(Value::as_str)
                    .ok_or("jump without target")?
                    .to_string();
                action = if k == "jump" {
                    Action::Jump(t)
                } else {
                    Action::Goto(t)
                };
            }
            "snat" | "masquerade" => action = Action::Accept,
            "dnat" | "redirect" => match dnat(ctx, k == "redirect", body) {
                Ok(d) => action = Action::Dnat(d),
                Err(why) => action = Action::Unknown(format!("{k}: {why}")),
            },
            // Rules iptables-nft loaded: nft shows the xtables match or target by name only.
            "xt" => {
                let name = body.get("name").and_then(Value::as_str).unwrap_or("?");
                let what = format!("xt {name} (an iptables-nft rule; nft cannot show it)");
                if body.get("type").and_then(Value::as_str) == Some("target") {
                    action = Action::Unknown(what);
                } else {
                    unknown.push(what);
                }
            }
            "vmap" => {
                let key = body.get("key").ok_or("vmap without key")?;
                let data = body.get("data").ok_or("vmap without data")?;
                match vmap(ctx, key, data)? {
                    Ok(a) => action = a,
                    Err(why) => {
                        unknown.push(why);
                        action = Action::Unknown("vmap".into());
                    }
                }
            }
            other => {
                // dnat, redirect, tproxy, queue, xt, synproxy, ...: verdicts or rewrites
                // the audit does not follow.
                action = Action::Unknown(other.to_string());
            }
        }
    }
    if let Action::Unknown(name) = &action {
        if unknown.is_empty() {
            unknown.push(name.clone());
        }
    }
    Ok(Rule {
        conds,
        unknown,
        action,
        loc,
        text,
    })
}

/// `dnat` / `redirect` statement bodies.
fn dnat(ctx: &Ctx, redirect: bool, body: &Value) -> R<Dnat> {
    let fam = match body
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or(ctx.family)
    {
        "ip" => Some(0),
        "ip6" => Some(1),
        _ if redirect => None,
        other => return Err(format!("family {other}")),
    };
    let addr_fam = fam.unwrap_or(0);
    let addr = match body.get("addr") {
        None | Some(Value::Null) if redirect => None,
        None | Some(Value::Null) => return Err("no address".into()),
        Some(Value::String(s)) => Some(IvSet::point(addr(addr_fam, s)?)),
        Some(v) => match (v.get("range"), v.get("prefix")) {
            (Some(Value::Array(r)), _) if r.len() == 2 => {
                let a = |i: usize| r[i].as_str().ok_or("address range").map(String::from);
                Some(IvSet::single(
                    addr(addr_fam, &a(0)?)?,
                    addr(addr_fam, &a(1)?)?,
                ))
            }
            (_, Some(p)) => Some(prefix(
                addr_fam,
                p.get("addr").and_then(Value::as_str).ok_or("prefix")?,
                p.get("len").and_then(Value::as_u64).ok_or("prefix")?,
            )?),
            _ => return Err("an address chosen by a map or expression".into()),
        },
    };
    let ports = match body.get("port") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(IvSet::point(u128::from(
            n.as_u64().filter(|p| *p <= 65535).ok_or("port")?,
        ))),
        Some(v) => match v.get("range").and_then(Value::as_array) {
            Some(r) if r.len() == 2 => {
                let p = |i: usize| r[i].as_u64().filter(|p| *p <= 65535).ok_or("port range");
                Some(IvSet::single(u128::from(p(0)?), u128::from(p(1)?)))
            }
            _ => return Err("a port chosen by a map or expression".into()),
        },
    };
    if fam.is_none() && addr.is_some() {
        return Err("an address without a family".into());
    }
    Ok(Dnat { fam, addr, ports })
}

fn verdict(v: &Value) -> R<Action> {
    let Some((k, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Err(format!("not a verdict: {v}"));
    };
    Ok(match k.as_str() {
        "accept" => Action::Accept,
        "drop" | "reject" => Action::Drop,
        "return" => Action::Return,
        "continue" => Action::Continue,
        "jump" | "goto" => {
            let t = body
                .get("target")
                .and_then(Value::as_str)
                .ok_or("jump without target")?
                .to_string();
            if k == "jump" {
                Action::Jump(t)
            } else {
                Action::Goto(t)
            }
        }
        other => Action::Unknown(other.to_string()),
    })
}

/// `Ok(Err(name))`: a construct the audit does not understand.
fn vmap(ctx: &Ctx, key: &Value, data: &Value) -> R<Result<Action, String>> {
    let fields = match left(key) {
        Left::Fields(f) => f,
        Left::Unknown(n) => return Ok(Err(n)),
        _ => return Ok(Err("vmap on this key".into())),
    };
    let elems: Vec<Value> = match data {
        Value::String(s) if s.starts_with('@') => {
            let set = lookup(ctx, &s[1..])?;
            set.get("elem")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        Value::Object(o) if o.contains_key("set") => {
            o["set"].as_array().cloned().unwrap_or_default()
        }
        _ => return Ok(Err("vmap data".into())),
    };
    let deps: Vec<Cond> = fields.iter().flat_map(|f| f.deps()).collect();
    let mut entries = Vec::new();
    for e in &elems {
        let e = unwrap_elem(e);
        let pair = e
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or("vmap element is not a [key, verdict] pair")?;
        let term = match element_term(&fields, &pair[0])? {
            Ok(t) => t,
            Err(n) => return Ok(Err(n)),
        };
        let mut cond_terms = vec![term];
        // Deps go into every entry: a vmap on `tcp dport` only sees TCP.
        let mut c = Cond(std::mem::take(&mut cond_terms));
        for d in &deps {
            c = c.and(d);
        }
        entries.push((c, verdict(unwrap_elem(&pair[1]))?));
    }
    Ok(Ok(Action::Vmap(entries)))
}

fn unwrap_elem(v: &Value) -> &Value {
    v.get("elem").and_then(|e| e.get("val")).unwrap_or(v)
}

fn lookup<'a>(ctx: &'a Ctx, name: &str) -> R<&'a Value> {
    ctx.sets
        .get(&(
            ctx.family.to_string(),
            ctx.table.to_string(),
            name.to_string(),
        ))
        .ok_or_else(|| format!("set or map @{name} is not defined"))
}

fn left(v: &Value) -> Left {
    let Some((k, body)) = v.as_object().and_then(|o| o.iter().next()) else {
        return Left::Unknown(format!("{v}"));
    };
    match k.as_str() {
        "payload" => {
            let p = body.get("protocol").and_then(Value::as_str).unwrap_or("");
            let f = body.get("field").and_then(Value::as_str).unwrap_or("");
            let field = match (p, f) {
                ("ip", "saddr") => Field::Addr(Dim::Saddr, 0),
                ("ip", "daddr") => Field::Addr(Dim::Daddr, 0),
                ("ip6", "saddr") => Field::Addr(Dim::Saddr, 1),
                ("ip6", "daddr") => Field::Addr(Dim::Daddr, 1),
                ("ip", "protocol") => Field::Proto(Some(0)),
                ("ip6", "nexthdr") => Field::Proto(Some(1)),
                ("tcp", "sport") => Field::Port(Dim::Sport, TCP),
                ("tcp", "dport") => Field::Port(Dim::Dport, TCP),
                ("udp", "sport") => Field::Port(Dim::Sport, UDP),
                ("udp", "dport") => Field::Port(Dim::Dport, UDP),
                ("sctp", "sport") => Field::Port(Dim::Sport, SCTP),
                ("sctp", "dport") => Field::Port(Dim::Dport, SCTP),
                ("dccp", "sport") => Field::Port(Dim::Sport, DCCP),
                ("dccp", "dport") => Field::Port(Dim::Dport, DCCP),
                ("udplite", "sport") => Field::Port(Dim::Sport, UDPLITE),
                ("udplite", "dport") => Field::Port(Dim::Dport, UDPLITE),
                ("th", "sport") => Field::Port(Dim::Sport, &PORT_PROTOS),
                ("th", "dport") => Field::Port(Dim::Dport, &PORT_PROTOS),
                ("icmp", "type") => Field::Icmp(0),
                ("icmpv6", "type") => Field::Icmp(1),
                ("tcp", "flags") => return Left::TcpFlags(None),
                _ if p.is_empty() => return Left::Unknown("raw payload".into()),
                _ => return Left::Unknown(format!("{p} {f}")),
            };
            Left::Fields(vec![field])
        }
        "meta" => {
            let key = body.get("key").and_then(Value::as_str).unwrap_or("");
            Left::Fields(vec![match key {
                "l4proto" => Field::Proto(None),
                "nfproto" | "protocol" => Field::Fam,
                "iifname" | "iif" => Field::Iface(Dim::Iif),
                "oifname" | "oif" => Field::Iface(Dim::Oif),
                other => return Left::Unknown(format!("meta {other}")),
            }])
        }
        "fib" => {
            let flags = strings(body.get("flags").unwrap_or(&Value::Null));
            match (body.get("result").and_then(Value::as_str), flags.as_slice()) {
                (Some("type"), [f]) if f == "saddr" => Left::FibType(Dim::Saddr),
                (Some("type"), [f]) if f == "daddr" => Left::FibType(Dim::Daddr),
                _ => Left::Unknown("fib".into()),
            }
        }
        "ct" => match body.get("key").and_then(Value::as_str) {
            Some("state") if body.get("dir").is_none() => Left::CtState,
            Some("direction") => Left::CtDirection,
            Some(other) => Left::Unknown(format!("ct {other}")),
            None => Left::Unknown("ct".into()),
        },
        "&" => {
            let arr = body.as_array();
            let is_flags = arr
                .and_then(|a| a.first())
                .and_then(|x| x.get("payload"))
                .is_some_and(|p| {
                    p.get("protocol").and_then(Value::as_str) == Some("tcp")
                        && p.get("field").and_then(Value::as_str) == Some("flags")
                });
            match (is_flags, arr.and_then(|a| a.get(1)).and_then(tcp_flags)) {
                (true, Some(m)) => Left::TcpFlags(Some(m)),
                _ => Left::Unknown("bitwise expression".into()),
            }
        }
        "concat" => {
            let mut fs = Vec::new();
            for x in body.as_array().into_iter().flatten() {
                match left(x) {
                    Left::Fields(mut f) if f.len() == 1 => fs.append(&mut f),
                    Left::Unknown(n) => return Left::Unknown(n),
                    _ => return Left::Unknown("concatenation".into()),
                }
            }
            Left::Fields(fs)
        }
        other => Left::Unknown(other.to_string()),
    }
}

fn tcp_flags(v: &Value) -> Option<u8> {
    let one = |s: &str| -> Option<u8> {
        Some(match s {
            "fin" => 0x01,
            "syn" => 0x02,
            "rst" => 0x04,
            "psh" => 0x08,
            "ack" => 0x10,
            "urg" => 0x20,
            "ecn" => 0x40,
            "cwr" => 0x80,
            _ => return None,
        })
    };
    match v {
        Value::String(s) => one(s),
        Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
        Value::Array(a) => a.iter().try_fold(0u8, |acc, x| Some(acc | tcp_flags(x)?)),
        Value::Object(o) if o.contains_key("|") => tcp_flags(&o["|"]),
        _ => None,
    }
}

/// The first packet of a TCP connection carries SYN only.
const FIRST_PACKET_FLAGS: u8 = 0x02;

/// Conditions of one `match` statement. `Ok(Err(name))`: not understood.
fn match_conds(ctx: &Ctx, op: &str, l: &Value, r: &Value) -> R<Result<Vec<Cond>, String>> {
    let negated = match op {
        "==" | "in" => false,
        "!=" => true,
        "<" | ">" | "<=" | ">=" => false,
        other => return Ok(Err(format!("operator {other}"))),
    };
    let truth = |b: bool| -> Vec<Cond> {
        vec![if b != negated {
            Cond::always()
        } else {
            Cond::never()
        }]
    };
    match left(l) {
        Left::Unknown(n) => Ok(Err(n)),
        Left::CtState => {
            let states = strings(r);
            if states.is_empty() {
                return Ok(Err("ct state value".into()));
            }
            Ok(Ok(truth(states.iter().any(|s| s == "new"))))
        }
        Left::CtDirection => Ok(Ok(truth(r.as_str() == Some("original")))),
        Left::FibType(d) => {
            let types = strings(r);
            if types.is_empty() || !types.iter().all(|t| ADDR_TYPES.contains(&t.as_str())) {
                return Ok(Err(format!("fib type {}", types.join(","))));
            }
            let a = Atom::AddrType(d, types);
            Ok(Ok(vec![if negated {
                Cond::not_atom(a)
            } else {
                Cond::atom(a)
            }]))
        }
        Left::TcpFlags(mask) => {
            let Some(val) = tcp_flags(r) else {
                return Ok(Err("tcp flags value".into()));
            };
            let f = FIRST_PACKET_FLAGS;
            let hit = match (op, mask) {
                ("in", None) => f & val != 0,
                (_, Some(m)) => f & m == val,
                (_, None) => f == val,
            };
            let mut v = vec![Cond::is(Dim::Proto, IvSet::point(6))];
            v.extend(truth(hit));
            Ok(Ok(v))
        }
        Left::Fields(fields) => {
            let mut out: Vec<Cond> = fields.iter().flat_map(|f| f.deps()).collect();
            let cond = if matches!(op, "<" | ">" | "<=" | ">=") {
                let [field] = fields.as_slice() else {
                    return Ok(Err("comparison on a concatenation".into()));
                };
                let Some(n) = r.as_u64().map(u128::from) else {
                    return Ok(Err(format!("comparison with {r}")));
                };
                let max = field.dim().max();
                let s = match op {
                    "<" if n == 0 => IvSet::empty(),
                    "<" => IvSet::single(0, n - 1),
                    "<=" => IvSet::single(0, n),
                    ">" => IvSet::single(n + 1, max),
                    _ => IvSet::single(n, max),
                };
                Cond::is(field.dim(), s)
            } else {
                let c = match right_cond(ctx, &fields, r)? {
                    Ok(c) => c,
                    Err(n) => return Ok(Err(n)),
                };
                if negated {
                    match c.negate() {
                        Some(n) => n,
                        None => return Ok(Err("negated set of concatenations".into())),
                    }
                } else {
                    c
                }
            };
            out.push(cond);
            Ok(Ok(out))
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::Object(o) if o.contains_key("set") => strings(&o["set"]),
        _ => Vec::new(),
    }
}

/// The right side as a condition on `fields`.
fn right_cond(ctx: &Ctx, fields: &[Field], r: &Value) -> R<Result<Cond, String>> {
    // Named set.
    if let Some(name) = r.as_str().and_then(|s| s.strip_prefix('@')) {
        let set = lookup(ctx, name)?;
        let elems = set
            .get("elem")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut c = match elements_cond(fields, &elems)? {
            Ok(c) => c,
            Err(n) => return Ok(Err(n)),
        };
        if let [Field::Addr(d, _)] = fields {
            let tag_dim = if *d == Dim::Saddr {
                Dim::Stag
            } else {
                Dim::Dtag
            };
            let key = format!("{} {} {name}", ctx.family, ctx.table);
            c.0.push(Term(vec![(Atom::SetTag(tag_dim, key), false)]));
        }
        return Ok(Ok(c));
    }
    let elems: Vec<Value> = match r {
        Value::Object(o) if o.contains_key("set") => match &o["set"] {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        },
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    elements_cond(fields, &elems)
}

fn elements_cond(fields: &[Field], elems: &[Value]) -> R<Result<Cond, String>> {
    if fields.len() == 1 {
        // One dimension: merge everything into one interval set (or pattern list).
        let f = fields[0];
        if let Field::Iface(d) = f {
            let mut pats = Vec::new();
            for e in elems {
                let e = unwrap_elem(e);
                let s = e
                    .as_str()
                    .ok_or_else(|| format!("interface name expected, got {e}"))?;
                pats.push(iface_pattern(s));
            }
            return Ok(Ok(Cond::atom(Atom::Iface(d, pats))));
        }
        let mut ivs = Vec::new();
        for e in elems {
            match value(f, unwrap_elem(e))? {
                Ok(s) => ivs.extend(s.0.iter().copied()),
                Err(n) => return Ok(Err(n)),
            }
        }
        return Ok(Ok(Cond::is(f.dim(), IvSet::from_intervals(ivs))));
    }
    let mut terms = Vec::new();
    for e in elems {
        match element_term(fields, unwrap_elem(e))? {
            Ok(t) => terms.push(t),
            Err(n) => return Ok(Err(n)),
        }
    }
    Ok(Ok(Cond(terms)))
}

fn element_term(fields: &[Field], e: &Value) -> R<Result<Term, String>> {
    let parts: Vec<&Value> = if fields.len() == 1 {
        vec![e]
    } else {
        match e.get("concat").and_then(Value::as_array) {
            Some(a) if a.len() == fields.len() => a.iter().collect(),
            _ => {
                return Err(format!(
                    "element {e} does not match a concatenation of {}",
                    fields.len()
                ))
            }
        }
    };
    let mut atoms = Vec::new();
    for (f, v) in fields.iter().zip(parts) {
        if let Field::Iface(d) = f {
            let s = v
                .as_str()
                .ok_or_else(|| format!("interface name expected, got {v}"))?;
            atoms.push((Atom::Iface(*d, vec![iface_pattern(s)]), false));
            continue;
        }
        match value(*f, v)? {
            Ok(s) => atoms.push((Atom::In(f.dim(), s), false)),
            Err(n) => return Ok(Err(n)),
        }
    }
    Ok(Ok(Term(atoms)))
}

/// nft writes a literal `*` as `\*`; a bare trailing `*` is the wildcard.
fn iface_pattern(s: &str) -> String {
    if let Some(lit) = s.strip_suffix("\\*") {
        // A literal star: no interface has one in practice; keep it as an exact name.
        format!("{lit}\u{3}")
    } else {
        s.to_string()
    }
}

/// One value (scalar, prefix or range) of a field.
fn value(f: Field, v: &Value) -> R<Result<IvSet, String>> {
    if let Some(p) = v.get("prefix") {
        let Field::Addr(_, fam) = f else {
            return Err(format!("prefix on a non-address field: {v}"));
        };
        let addr = p
            .get("addr")
            .and_then(Value::as_str)
            .ok_or("prefix without addr")?;
        let len = p
            .get("len")
            .and_then(Value::as_u64)
            .ok_or("prefix without len")?;
        return Ok(Ok(prefix(fam, addr, len)?));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        if r.len() != 2 {
            return Err(format!("range with {} ends", r.len()));
        }
        let (a, b) = match (value(f, &r[0])?, value(f, &r[1])?) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(n), _) | (_, Err(n)) => return Ok(Err(n)),
        };
        let (Some(lo), Some(hi)) = (a.first(), b.0.last().map(|x| x.1)) else {
            return Err("empty range".into());
        };
        return Ok(Ok(IvSet::single(lo, hi)));
    }
    let n = |x: u128| Ok(Ok(IvSet::point(x)));
    match f {
        Field::Addr(_, fam) => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("address expected, got {v}"))?;
            Ok(Ok(IvSet::point(addr(fam, s)?)))
        }
        Field::Port(..) => match v {
            Value::Number(x) => x
                .as_u64()
                .filter(|p| *p <= 65535)
                .map_or_else(|| Err(format!("port out of range: {v}")), |p| n(p.into())),
            Value::String(s) => match service(s) {
                Some(p) => n(p.into()),
                None => Ok(Err(format!("service name {s}"))),
            },
            _ => Err(format!("port expected, got {v}")),
        },
        Field::Proto(_) => match v {
            Value::Number(x) => x.as_u64().filter(|p| *p <= 255).map_or_else(
                || Err(format!("protocol out of range: {v}")),
                |p| n(p.into()),
            ),
            Value::String(s) => match proto_number(s) {
                Some(p) => n(p.into()),
                None => Ok(Err(format!("protocol {s}"))),
            },
            _ => Err(format!("protocol expected, got {v}")),
        },
        Field::Icmp(fam) => match v {
            Value::Number(x) => x.as_u64().filter(|p| *p <= 255).map_or_else(
                || Err(format!("ICMP type out of range: {v}")),
                |p| n(p.into()),
            ),
            Value::String(s) => match icmp_type_number(fam == 1, s) {
                Some(p) => n(p.into()),
                None => Ok(Err(format!("ICMP type {s}"))),
            },
            _ => Err(format!("ICMP type expected, got {v}")),
        },
        Field::Fam => match v.as_str() {
            Some("ipv4" | "ip") => n(0),
            Some("ipv6" | "ip6") => n(1),
            _ => Ok(Err(format!("protocol family {v}"))),
        },
        Field::Iface(_) => Err("interface in a numeric context".into()),
    }
}

fn service(s: &str) -> Option<u16> {
    if let Ok(n) = s.parse() {
        return Some(n);
    }
    let t: BTreeMap<&str, u16> = [
        ("ftp", 21),
        ("ssh", 22),
        ("telnet", 23),
        ("smtp", 25),
        ("domain", 53),
        ("http", 80),
        ("pop3", 110),
        ("ntp", 123),
        ("imap", 143),
        ("snmp", 161),
        ("ldap", 389),
        ("https", 443),
        ("submissions", 465),
        ("submission", 587),
        ("ldaps", 636),
        ("imaps", 993),
        ("pop3s", 995),
    ]
    .into_iter()
    .collect();
    t.get(s).copied()
}

pub fn addr(fam: u8, s: &str) -> R<u128> {
    if fam == 0 {
        s.parse::<Ipv4Addr>()
            .map(|a| u128::from(u32::from(a)))
            .map_err(|_| format!("`{s}` is not an IPv4 address"))
    } else {
        s.parse::<Ipv6Addr>()
            .map(u128::from)
            .map_err(|_| format!("`{s}` is not an IPv6 address"))
    }
}

pub fn prefix(fam: u8, a: &str, len: u64) -> R<IvSet> {
    let base = addr(fam, a)?;
    let bits: u32 = if fam == 0 { 32 } else { 128 };
    let len = u32::try_from(len)
        .ok()
        .filter(|l| *l <= bits)
        .ok_or_else(|| format!("prefix length {len} out of range"))?;
    let host_bits = bits - len;
    let mask: u128 = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = base & !mask;
    Ok(IvSet::single(lo, lo | mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (found by proptest): `{"𑙐` made the error position fall inside a
    /// character and the audit panicked instead of reporting bad JSON.
    #[test]
    fn a_json_error_inside_a_multibyte_character_is_reported() {
        let src = Source::new("r.json", "{\"\u{11650}");
        let e = parse(&src).expect_err("invalid");
        assert!(e.to_string().contains("JSON"), "{e}");
        assert_eq!(offset_of("a\u{11650}", 1, 3), 1);
    }
}
