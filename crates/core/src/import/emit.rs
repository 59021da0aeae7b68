//! The draft's text, and its check.
//!
//! The draft is written once, in the catalog's format. While writing, the emitter builds the
//! same `Raw*` values the TOML reader would build from that text, with every span pointing
//! into it, so that [`Draft::check`] runs the profile checks of `portolan check`
//! ([`crate::profile::validate`]) without parsing the text again. Only the declarations
//! (everything before the first flow) are kept; the flows are written again chunk by chunk
//! when checked, at the place they were written, and must come out byte for byte as in the
//! text, so memory stays at one chunk and what is checked is what was written. The import
//! tests and the fuzz target parse the text too and require the same profile and the same
//! diagnostics at the same places.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::ops::Range;

use toml::Spanned;

use super::{Draft, DraftFlow, Lang, Report, REVIEW_BELOW};
use crate::diag::{Diagnostic, Errors, Source};
use crate::model::{Flag, Profile};
use crate::profile::{
    Endpoints, PortSpec, RawAlternative, RawCaveat, RawFeature, RawFlow, RawProfile, RawRole,
    RawSourceDoc,
};

/// Flows checked at once by [`Draft::check`].
pub const CHECK_CHUNK_FLOWS: usize = 1000;

/// A TOML string.
pub(super) fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_q(&mut out, s);
    out
}

/// A TOML string, appended.
fn push_q(out: &mut String, s: &str) {
    // Printable ASCII without quote or backslash needs no escaping: the common case, quoted
    // directly. Anything else goes through the TOML writer.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&toml::Value::String(s.to_string()).to_string());
    }
}

/// Text being written at `base` in the draft; spans are places in the draft.
struct Writer {
    t: String,
    base: usize,
}

impl Writer {
    fn at(&self) -> usize {
        self.base + self.t.len()
    }
    /// `key = value` on a line of its own; the span of the value.
    fn val(&mut self, key: &str, value: &str) -> Range<usize> {
        self.t.push_str(key);
        self.t.push_str(" = ");
        let at = self.at();
        self.t.push_str(value);
        let span = at..self.at();
        self.t.push('\n');
        span
    }
    /// A quoted string value and its span.
    fn str(&mut self, key: &str, value: &str) -> Spanned<String> {
        self.t.push_str(key);
        self.t.push_str(" = ");
        let at = self.at();
        push_q(&mut self.t, value);
        let span = at..self.at();
        self.t.push('\n');
        Spanned::new(span, value.to_string())
    }
    /// `[table.key]` after an empty line; the span of the key.
    fn table(&mut self, table: &str, key: &str) -> Spanned<String> {
        self.t.push_str("\n[");
        self.t.push_str(table);
        self.t.push('.');
        let at = self.at();
        self.t.push_str(key);
        let span = at..self.at();
        self.t.push_str("]\n");
        Spanned::new(span, key.to_string())
    }
    /// `from`/`to`: one string, or an array of them.
    fn endpoints(&mut self, key: &str, items: &[String]) -> Spanned<Endpoints> {
        if let [one] = items {
            let span = self.str(key, one).span();
            let items = vec![Spanned::new(0..0, one.clone())];
            return Spanned::new(
                span,
                Endpoints {
                    items,
                    single: true,
                },
            );
        }
        self.t.push_str(key);
        self.t.push_str(" = ");
        let at = self.at();
        self.t.push('[');
        let mut spanned = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.t.push_str(", ");
            }
            let a = self.at();
            push_q(&mut self.t, item);
            spanned.push(Spanned::new(a..self.at(), item.clone()));
        }
        self.t.push(']');
        let span = at..self.at();
        self.t.push('\n');
        Spanned::new(
            span,
            Endpoints {
                items: spanned,
                single: false,
            },
        )
    }
}

/// Everything before the first flow.
fn declarations(
    w: &mut Writer,
    doc: &str,
    name: &str,
    lang: Lang,
    id: &str,
    flows: &[DraftFlow],
    report: &Report,
) -> RawProfile {
    let review = flows.iter().filter(|f| f.confidence < REVIEW_BELOW).count();
    let _ = writeln!(
        w.t,
        "# Draft profile imported by `portolan import` from {} ({}).",
        crate::render::comment_text(doc),
        lang.code()
    );
    let _ = writeln!(
        w.t,
        "# {} flow(s), {} marked REVIEW. Check every flow against the source before use;",
        flows.len(),
        review
    );
    let _ = writeln!(
        w.t,
        "# lines the importer could not place are listed in its report (--report)."
    );
    let id = w.str("id", id);
    let name = w.str("name", name).into_inner();
    let vendor = w.str("vendor", "unknown (imported)").into_inner();
    let description = w.str(
        "description",
        &format!("Imported from {doc}; a draft to review."),
    );
    w.t.push_str("\n[[sources]]\n");
    let source = RawSourceDoc {
        id: w.str("id", lang.code()).into_inner(),
        title: w.str("title", &name).into_inner(),
        language: w.str("language", lang.code()).into_inner(),
        document: Some(w.str("document", doc).into_inner()),
        url: None,
    };

    let mut role_names: BTreeSet<&str> = BTreeSet::new();
    for f in flows {
        for p in &f.peers {
            if !p.contains('.') && crate::model::builtin_role(p).is_none() {
                role_names.insert(p);
            }
        }
    }
    let mut roles = BTreeMap::new();
    for r in &role_names {
        let key = w.table("roles", r);
        let text = format!("{r} (named in the source; bind it in the site)");
        let description = w.str("description", &text).into_inner();
        roles.insert(key, RawRole { description });
    }
    let mut feature_names: BTreeMap<&str, &str> = BTreeMap::new();
    for f in flows
        .iter()
        .filter(|f| f.optional && f.alternative.is_none())
    {
        feature_names.entry(&f.id).or_insert(&f.function);
    }
    let mut features = BTreeMap::new();
    for (fid, desc) in &feature_names {
        let key = w.table("features", fid);
        let description = w.str("description", desc).into_inner();
        features.insert(
            key,
            RawFeature {
                description,
                requires: Vec::new(),
                turns_off: Vec::new(),
            },
        );
    }
    let mut alt_names: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    for f in flows {
        if let Some(a) = &f.alternative {
            alt_names.entry(a).or_insert((&f.function, &f.id));
        }
    }
    let mut alternatives = BTreeMap::new();
    for (aid, (desc, default)) in &alt_names {
        let key = w.table("alternatives", aid);
        let description = w.str("description", desc).into_inner();
        let default = w.str("default", default);
        alternatives.insert(
            key,
            RawAlternative {
                description,
                default,
            },
        );
    }
    let mut caveats = Vec::new();
    for (line, what) in &report.corrections {
        w.t.push_str("\n[[caveats]]\n");
        let message = w.str("message", &format!("Import: {what}.")).into_inner();
        let source = w.str("source", lang.code()).into_inner();
        w.val("line", &line.to_string());
        caveats.push(RawCaveat {
            message,
            source: Some(source),
            line: Some(u32::try_from(*line).unwrap_or(u32::MAX)),
            flows: Vec::new(),
        });
    }
    RawProfile {
        id,
        name,
        vendor,
        description: Some(description.into_inner()),
        sources: vec![source],
        roles,
        features,
        alternatives,
        caveats,
        flows: Vec::new(),
    }
}

/// One flow, from the empty line before it to its last line.
fn flow(w: &mut Writer, f: &DraftFlow, lang: Lang) -> Spanned<RawFlow> {
    w.t.push('\n');
    if f.confidence < REVIEW_BELOW {
        let mut reasons = f.doubts.clone();
        reasons.extend(
            f.why
                .iter()
                .filter(|w| w.contains("assumed") || w.contains("from the"))
                .cloned(),
        );
        let _ = writeln!(
            w.t,
            "# REVIEW (confidence {:.2}): {}",
            f.confidence,
            crate::render::comment_text(&reasons.join("; "))
        );
    }
    // Like the TOML reader, a flow's span is its `[[flows]]` header.
    let header = w.at()..w.at() + "[[flows]]".len();
    w.t.push_str("[[flows]]\n");
    let id = w.str("id", &f.id);
    let function = w.str("function", &f.function).into_inner();
    let appliance = ["appliance".to_string()];
    let (from, to) = if f.outbound {
        let from = w.endpoints("from", &appliance);
        (from, w.endpoints("to", &f.peers))
    } else {
        let from = w.endpoints("from", &f.peers);
        (from, w.endpoints("to", &appliance))
    };
    let names: Vec<String> = f.protocols.iter().map(|p| q(&p.to_string())).collect();
    let protocols = Spanned::new(
        w.val("protocols", &format!("[{}]", names.join(", "))),
        f.protocols.clone(),
    );
    let mut ports = Vec::with_capacity(f.ports.len());
    if !f.ports.is_empty() {
        w.t.push_str("ports = [");
        for (i, &(a, b)) in f.ports.iter().enumerate() {
            if i > 0 {
                w.t.push_str(", ");
            }
            let at = w.at();
            let spec = if a == b {
                let _ = write!(w.t, "{a}");
                PortSpec::Number(i64::from(a))
            } else {
                let text = format!("{a}-{b}");
                w.t.push_str(&q(&text));
                PortSpec::Text(text)
            };
            ports.push(Spanned::new(at..w.at(), spec));
        }
        w.t.push_str("]\n");
    }
    let icmp_type = f
        .icmp
        .map(|i| Spanned::new(w.val("icmp_type", &q(i.name())), i));
    let feature = (f.optional && f.alternative.is_none()).then(|| w.str("feature", &f.id));
    let alternative = f.alternative.as_ref().map(|a| w.str("alternative", a));
    let mut flags = Vec::new();
    if f.no_tls_interception {
        w.val("flags", "[\"no_tls_interception\"]");
        flags.push(Flag::NoTlsInterception);
    }
    w.val(
        "source_lines",
        &format!("{{ {} = {} }}", lang.code(), f.line),
    );
    let line = u32::try_from(f.line).unwrap_or(u32::MAX);
    Spanned::new(
        header,
        RawFlow {
            id,
            function,
            function_de: None,
            from,
            to,
            protocols,
            ports,
            icmp_type,
            feature,
            with_features: Vec::new(),
            alternative,
            app: None,
            flags,
            notes: Vec::new(),
            source_lines: BTreeMap::from([(lang.code().to_string(), line)]),
        },
    )
}

impl Draft {
    /// A draft written from flows: what [`super::import`] does after reading the document.
    /// `doc` is the document's file name, `name` the profile's name.
    pub fn new(
        doc: &str,
        name: &str,
        lang: Lang,
        id: &str,
        flows: Vec<DraftFlow>,
        report: Report,
    ) -> Draft {
        // About the size of a flow in the catalog's format, so the text is not copied as it grows.
        let mut w = Writer {
            t: String::with_capacity(4096 + 256 * flows.len()),
            base: 0,
        };
        let header = declarations(&mut w, doc, name, lang, id, &flows, &report);
        let mut flow_at = Vec::with_capacity(flows.len() + 1);
        for f in &flows {
            flow_at.push(w.at());
            flow(&mut w, f, lang);
        }
        flow_at.push(w.at());
        Draft {
            toml: w.t,
            header,
            flow_at,
            lang,
            flows,
            report,
            id: id.to_string(),
        }
    }

    /// Flow `i` as the checker reads it from the text, or an error if the text there is not
    /// what flow `i` writes.
    fn raw_flow(&self, src: &Source, i: usize) -> Result<Spanned<RawFlow>, Diagnostic> {
        let (a, b) = (self.flow_at[i], self.flow_at[i + 1]);
        let mut w = Writer {
            t: String::with_capacity(b - a),
            base: a,
        };
        let raw = flow(&mut w, &self.flows[i], self.lang);
        if self.toml.get(a..b) != Some(w.t.as_str()) {
            return Err(Diagnostic::error(format!(
                "the text of flow `{}` is not what the importer wrote",
                self.flows[i].id
            ))
            .at(src, a..b));
        }
        Ok(raw)
    }

    /// Check the draft with the same rules as `portolan check`, in chunks of
    /// [`CHECK_CHUNK_FLOWS`] flows on two threads; diagnostics point into `toml`. The first
    /// chunk has all declarations and every flow of an alternative; the others the roles and
    /// features their flows use. Flow ids must be unique across chunks. A draft of one chunk
    /// is checked whole, exactly like [`Draft::profile`].
    pub fn check(&self) -> Result<(), Errors> {
        let src = Source::new("draft.toml", self.toml.as_str());
        let (alternative, plain): (Vec<usize>, Vec<usize>) =
            (0..self.flows.len()).partition(|&i| self.flows[i].alternative.is_some());
        let mut chunks: Vec<Vec<usize>> = plain
            .chunks(CHECK_CHUNK_FLOWS)
            .map(<[usize]>::to_vec)
            .collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        chunks[0].splice(0..0, alternative);
        // The first flow with each id, for duplicates in different chunks.
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(self.flows.len());
        let mut chunk_of = vec![0; self.flows.len()];
        for (c, chunk) in chunks.iter().enumerate() {
            for &i in chunk {
                chunk_of[i] = c;
            }
        }
        for (i, f) in self.flows.iter().enumerate() {
            first.entry(f.id.as_str()).or_insert(i);
        }
        let check_chunk = |c: usize| -> Vec<Diagnostic> {
            let mut errors = Vec::new();
            let mut raw = self.header.clone();
            if c > 0 {
                // Only what this chunk's flows use; the rest was checked with the first.
                let used: BTreeSet<&str> = chunks[c]
                    .iter()
                    .flat_map(|&i| {
                        let f = &self.flows[i];
                        f.peers.iter().map(String::as_str).chain([f.id.as_str()])
                    })
                    .collect();
                raw.roles.retain(|k, _| used.contains(k.get_ref().as_str()));
                raw.features
                    .retain(|k, _| used.contains(k.get_ref().as_str()));
                raw.alternatives.clear();
                raw.caveats.clear();
            }
            for &i in &chunks[c] {
                match self.raw_flow(&src, i) {
                    Ok(f) => {
                        let earlier = first[self.flows[i].id.as_str()];
                        if earlier != i && chunk_of[earlier] != c {
                            let (line, _) = src.line_col(self.flow_at[earlier]);
                            errors.push(
                                Diagnostic::error(format!(
                                    "duplicate flow id `{}`",
                                    self.flows[i].id
                                ))
                                .at(&src, f.get_ref().id.span())
                                .with_help(format!(
                                    "the first flow with this id is near line {line}; flow ids must be unique"
                                )),
                            );
                        }
                        raw.flows.push(f);
                    }
                    Err(d) => errors.push(d),
                }
            }
            if let Err(e) = crate::profile::validate(&raw, &src) {
                // Warnings of a chunk may not hold for the whole draft (a feature whose flow
                // is in another chunk); errors do.
                errors.extend(e.0.into_iter().filter(Diagnostic::is_error));
            }
            errors
        };
        let n = chunks.len();
        let every_other = |parity: usize| -> Vec<Diagnostic> {
            (parity..n).step_by(2).flat_map(check_chunk).collect()
        };
        let errors = std::thread::scope(|s| {
            let other = s.spawn(|| every_other(1));
            let mut errors = every_other(0);
            match other.join() {
                Ok(more) => errors.extend(more),
                Err(_) => errors.push(Diagnostic::error(
                    "checking the draft failed (a thread panicked)",
                )),
            }
            errors
        });
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Errors(errors))
        }
    }

    /// The whole draft as one profile, with its warnings, as [`crate::profile::parse`] gives
    /// them for `toml` (for tests and small drafts: it holds every flow at once).
    pub fn profile(&self) -> Result<(Profile, Vec<Diagnostic>), Errors> {
        let src = Source::new("draft.toml", self.toml.as_str());
        let mut raw = self.header.clone();
        for i in 0..self.flows.len() {
            raw.flows
                .push(self.raw_flow(&src, i).map_err(Errors::from)?);
        }
        crate::profile::validate(&raw, &src)
    }
}
