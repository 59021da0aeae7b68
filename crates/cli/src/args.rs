//! Command-line arguments: the only place flags are declared (help text included).
//!
//! Parsing only; turning arguments into profiles, sites and plans happens in `inputs.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const ABOUT: &str =
    "Turn an appliance's firewall requirements table into a working, verified firewall.";

const AFTER_HELP: &str = "\
Examples:
  portolan catalog list                                   built-in appliance profiles
  portolan render --profile intra2net --target nftables   rules for a demo site (documentation addresses)
  portolan plan --site site.toml --format json            the concrete flows for your site
  portolan render --site site.toml --target iptables -o fw.sh
  portolan check site.toml my-profile.toml --strict       validate files (exit 1 on warnings)

A site file binds a profile to your network: the appliance's addresses, which role is which
network, the features you use, and where the firewall sits. `portolan schema site` prints its
JSON Schema; the README has a complete example.

Exit codes: 0 ok, 1 warnings with --strict, 2 bad input.";

#[derive(Debug, Parser)]
#[command(name = "portolan", version, about = ABOUT, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Colour in diagnostics: on a terminal without NO_COLOR (auto), always, or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List or show the built-in appliance profiles.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Validate profile and site files; print errors, warnings and source caveats.
    #[command(
        after_help = "A FILE that does not exist but names a catalog id (e.g. `intra2net`) checks the built-in profile.\n\nExit codes: 0 ok (warnings allowed), 1 warnings with --strict, 2 errors."
    )]
    Check(CheckArgs),
    /// Show the plan: every concrete flow after binding the profile to the site.
    Plan(PlanArgs),
    /// Render firewall configuration for a target.
    #[command(
        after_help = "Targets:\n  nftables  an `nft -f` script: one `inet portolan` table, named sets, default-drop chains\n  iptables  a shell script applying `ipset restore`, `iptables-restore` and `ip6tables-restore`\n\nWith -o, the file is written completely or not at all."
    )]
    Render(RenderArgs),
    /// Render and load the rules on this host, keeping the addresses of DNS-filled sets.
    #[command(after_help = LOAD_HELP)]
    Load(LoadArgs),
    /// Load the rules safely: check, show what changes, refuse a lockout, roll back unless confirmed.
    #[command(after_help = APPLY_HELP)]
    Apply(ApplyArgs),
    /// (internal) The rollback helper `apply --confirm` leaves behind.
    #[command(name = "apply-rollback", hide = true)]
    ApplyRollback(ApplyRollbackArgs),
    /// Try every planned flow from this host, for real, and say exactly what is wrong.
    #[command(after_help = PROBE_HELP)]
    Probe(ProbeArgs),
    /// Stand in for the appliance: listen on every inbound flow's port and log arrivals.
    #[command(
        after_help = "Each arrival is one JSON line on standard output (with the peer address, so source NAT shows). Ports that cannot be bound (taken by a real service, or below 1024 without privileges) are reported and skipped.\n\nStops on Ctrl-C, SIGTERM, or after --duration."
    )]
    Listen(ListenArgs),
    /// Keep the DNS-filled sets current (nftables sets or ipsets; TTL-aware, over netlink).
    #[command(after_help = SYNC_HELP)]
    Sync(SyncArgs),
    /// A DNS forwarder that adds the addresses of wildcard names to their sets before answering.
    #[command(
        name = "dns-proxy",
        after_help = "Point the appliance's resolver at --listen. A query under a wildcard of the plan (e.g. *.avcloud.intra2net.com) is forwarded to --upstream; its addresses enter the wildcard's set (nftables, or with --target iptables its ipset), and only then is the answer sent, so the first connection is never dropped. If the set cannot be updated, the client gets SERVFAIL. Other queries are forwarded unchanged. It is not an open resolver: only the appliance's addresses (from the site) and loopback are answered, others get REFUSED unless --allow names them; each client is rate-limited (--rate), at most 256 queries are worked on at once and 64 TCP connections are open, idle ones closed after 10 s. Runs until Ctrl-C or SIGTERM; logs each wildcard answer to stderr."
    )]
    DnsProxy(DnsProxyArgs),
    /// Read an existing ruleset: which planned flows it blocks, what it allows beyond them.
    #[command(after_help = AUDIT_HELP)]
    Audit(AuditArgs),
    /// Turn a vendor's port table (copied from a web page or PDF) into a draft profile.
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// The plan explained: one HTML file with a diagram of the appliance, its zones and flows.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
    /// What changes between two profile versions: flows, and the rules of a site.
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Print the JSON Schema of the profile or site file format (for editor completion).
    Schema(SchemaArgs),
    /// Print shell completions (generated from the command-line definitions).
    #[command(
        after_help = "Install, e.g.:\n  portolan completions bash > /etc/bash_completion.d/portolan\n  portolan completions zsh > \"${fpath[1]}/_portolan\"\n  portolan completions fish > ~/.config/fish/completions/portolan.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), of portolan or of one subcommand.
    #[command(
        after_help = "Read it with: portolan man | man -l -\nInstall: portolan man > /usr/share/man/man1/portolan.1; portolan man sync > .../portolan-sync.1"
    )]
    Man {
        /// A subcommand, e.g. `sync`.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

const DIFF_HELP: &str = "\
OLD and NEW are catalog ids or profile files (e.g. the catalog's `intra2net` and a vendor's
new version imported with `portolan import`). Flows are matched by id: added, removed, and
for each changed flow the fields that differ (ports, protocols, peers, required or feature,
alternative, flags, function). Then both are bound to the same site (--site; default: each
profile's demo site) and rendered for --target: the rule lines that appear and disappear,
comments aside.

Exit codes: 0 no difference, 1 differences (like diff), 2 bad input.

Example:
  portolan diff intra2net ./intra2net-2027.toml --site /etc/portolan/site.toml";

const APPLY_HELP: &str = "\
As root, in this order:
  1. check   the rendered rules (nftables: with the addresses sync and dns-proxy put into the
             DNS-filled sets) are loaded into a scratch network namespace (`unshare -n`) and
             checked against this host with `nft -c` (iptables: `iptables-restore --test` once
             the ipsets exist); nothing is loaded when a check fails (exit 3).
  2. diff    what portolan has loaded (nftables: `table inet portolan`; iptables: the
             PORTOLAN-* chains, the jumps to them and the ipsets they use) against the new
             rules, both as the tools list them: rules, sets and static elements added and
             removed; DNS-filled elements are kept, not compared.
  3. lockout the connections that manage this host (SSH_CONNECTION, and established
             connections to every port sshd listens on) are judged as new connections by the
             audit engine, against this ruleset before and after: a connection the new one
             would drop refuses the apply (exit 3) unless --force.
  4. load    only portolan's own table, chains and ipsets change; DNS-filled elements stay.
  5. confirm with --confirm (default 60s on a terminal) the previous state is saved under
             /run/portolan (PORTOLAN_RUN_DIR) and a detached helper process restores it when
             the time runs out unconfirmed. The helper is its own process group (started
             through `systemd-run` when systemd runs the host, so that logind cannot kill it
             with the session): killing apply or losing the SSH session does not stop it.
             Confirm with Enter here or `portolan apply --confirm-now` from anywhere.

Exit codes: 0 applied (and confirmed) or nothing to change, 1 rolled back (or nothing to change
with --strict; or changes found with --dry-run), 2 bad input, 3 refused (by the kernel, by the
lockout check, or because another apply awaits confirmation).

Examples:
  portolan apply --site /etc/portolan/site.toml --dry-run
  portolan apply --site /etc/portolan/site.toml --confirm 2m
  portolan apply --site /etc/portolan/site.toml --target iptables --confirm 2m
  portolan apply --confirm-now
";

const LOAD_HELP: &str = "\
Renders the target and loads it here (as root):
  nftables  `table inet portolan` is replaced in one `nft` transaction; the addresses that
            `sync` and `dns-proxy` had put into its DNS-filled sets are read just before and
            added back inside the same transaction, with the time they had left, so a reload
            never blocks a flow until the next refresh. Nothing else in the ruleset is touched.
  iptables  the rendered script is run: the PORTOLAN chains are replaced, static ipsets are
            swapped in atomically, and the ipsets of DNS names are never flushed.

Use it wherever the rules are (re)loaded: by hand, from a systemd unit (contrib/), after a
site change. --dry-run prints the exact script instead of loading it.

Example:
  portolan load --site /etc/portolan/site.toml --target nftables";

const IMPORT_HELP: &str = "\
Reads text copied from a web page or PDF, in English or German, from any vendor: pipe and
Markdown tables (also wrapped, without separator, or with cells spread over lines), MediaWiki
tables, one cell per line, tab- or space-separated columns, PDF rows that start with their
port, tables whose separators were lost (`update.example.comTCP443 (https)Updates`), lists
and sentences (`443/tcp`, `TCP 25`, `port 443`, `25 (TCP)`, `1024-65535`). Columns are typed
by their header words and by what the cells hold. A row without a protocol gets the
service's or port's well-known one, marked as assumed. Writes a draft in the catalog's
format: one flow per row and protocol group, with direction, ports, peers (DNS names,
wildcards, roles such as dns-server or internet), optional rows as features, and the source
line of each flow.

Doubtful flows carry a `# REVIEW` comment with the reason; --report lists every flow with
its confidence and the heuristics used, and every line that could not be placed. The draft
passes `portolan check`; review it, then use it with `plan` and `render`.

Exit codes: 0 draft written, 2 bad input (binary, empty, or no port table found).";

const AUDIT_HELP: &str = "\
Get the ruleset from the firewall that will carry the appliance's traffic:
  nft -j list ruleset > ruleset.json
  { iptables-save; ip6tables-save; } > ruleset.rules; ipset save > ipsets.txt
The site's placement says what to evaluate: host mode the input and output hooks (the
firewall is the appliance), gateway mode the forward hook with the site's interfaces.

Each planned flow is allowed, blocked, partial (some packets certainly dropped) or unknown (a
match the audit does not model decides it; it is named). Blocked and partial flows show a
packet that is dropped and the rule that drops it. Evaluation is for the first packet of a
new connection (conntrack state new). The excess list shows what the ruleset accepts to or
from the appliance that no planned flow needs, largest first.

Exit codes: 0 every planned flow is allowed, 1 one is not, 2 bad input.";

const SYNC_HELP: &str = "\
Load the rules first (`portolan load --site FILE --target nftables|iptables`); sync fills
their DNS sets (the nftables sets, or with --target iptables the ipsets), over netlink.
Each name is refreshed at half its TTL (clamped to --min-refresh and --max-refresh);
elements expire after the TTL plus two refresh periods unless re-asserted. When the
resolver fails, the last known good addresses are kept (up to --max-stale); with
--state-dir they survive a restart and are applied before the first lookup.

With cron (--once), run it at least every --min-refresh (elements then live at least three
times that), e.g. every 5 minutes with --min-refresh 5m.

Exit codes (--once): 0 every name has addresses, 1 some name has none or writing the sets
failed, 2 bad input.";

const PROBE_HELP: &str = "\
Outbound (default): run on the appliance, or a machine standing in its place; probes every
planned flow the appliance opens. Inbound: `--inbound --target ADDRESS` probes the flows toward
the appliance at ADDRESS from this host (pair it with `portolan listen` on the appliance side).

Verdicts: open, refused, filtered (no connection), no-answer (connected, but the service
stayed silent), unreachable, dns-failure, tls-intercepted, tls-name-mismatch, tls-expired,
protocol-mismatch, open-or-filtered, not-permitted, not-probeable, error.

Exit codes: 0 every required flow is fine, 1 a required flow fails, 2 bad input.";

#[derive(Debug, Subcommand)]
pub enum CatalogCmd {
    /// List the built-in profiles.
    List {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Print a built-in profile's TOML (a starting point for your own).
    Show {
        /// Catalog id, e.g. `intra2net`.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Profile or site files (TOML). The kind is told from the content.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Exit 1 when there are warnings.
    #[arg(long)]
    pub strict: bool,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Where the plan comes from: a site file, or a profile with the built-in demo site. With
/// neither, the site file named by `$PORTOLAN_SITE`, else `/etc/portolan/site.toml`.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct Input {
    /// Site file: binds a profile to your network [default: $PORTOLAN_SITE, else
    /// /etc/portolan/site.toml].
    #[arg(long, value_name = "FILE", group = "input")]
    pub site: Option<PathBuf>,
    /// Catalog id or profile file, bound to the built-in demo site (documentation addresses).
    #[arg(long, value_name = "ID|FILE", group = "input")]
    pub profile: Option<String>,
}

#[derive(Debug, Args)]
pub struct Selection {
    #[command(flatten)]
    pub input: Input,
    /// Optional features to enable: `all`, or a comma-separated list. Replaces the site's list.
    #[arg(long, value_name = "all|a,b")]
    pub features: Option<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The document: text copied from the vendor's manual.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Language of the document.
    #[arg(long, value_enum, default_value_t = LangArg::Auto)]
    pub lang: LangArg,
    /// Profile id (default: from the file name).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Profile name (default: the document's first line).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Write the draft to FILE (replaced atomically; only a regular file is replaced) instead
    /// of standard output; `-` is standard output.
    #[arg(short = 'o', long = "output", value_name = "PROFILE.toml")]
    pub output: Option<PathBuf>,
    /// The draft profile (text), or a JSON object with the draft, its flows and the report.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
    /// Write the import report (flows, confidence, unplaced lines) to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LangArg {
    Auto,
    En,
    De,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// The ruleset: `nft -j list ruleset` or `iptables-save` (+ `ip6tables-save`) output.
    #[arg(long, value_name = "FILE", required_unless_present = "live")]
    pub ruleset: Option<PathBuf>,
    /// Read this machine's running ruleset instead of a file: `nft -j list ruleset`, and for
    /// the tables iptables-nft loaded (nft shows their matches as `xt`, without parameters)
    /// `iptables-save` and `ip6tables-save` (with `ipset save` when installed). Falls back to
    /// iptables-save alone where there is no nft.
    #[arg(long, conflicts_with_all = ["ruleset", "ruleset_format", "ipset"])]
    pub live: bool,
    /// Format of --ruleset; detected from the content when not given.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub ruleset_format: Option<RulesetFormatArg>,
    /// `ipset save` output, for `-m set` matches in an iptables-save ruleset.
    #[arg(long, value_name = "FILE")]
    pub ipset: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RulesetFormatArg {
    /// `nft -j list ruleset`
    NftJson,
    /// `iptables-save`, optionally followed by `ip6tables-save`
    IptablesSave,
}

const REPORT_HELP: &str = "One self-contained HTML file (inline CSS and SVG, no script, nothing fetched when opened), printable on A4: the site, a diagram of the appliance with the peers that connect to it (left) and those it connects to (right) grouped by zone, the same as a table, every planned flow with its source document row, the profile's caveats, probe and audit results when given, and the rule count of --target.

Examples:
  portolan report --profile clearswift --features all -o report.html
  portolan probe --site site.toml --format json -o probe.json
  portolan audit --site site.toml --live --format json > audit.json
  portolan report --site site.toml --probe probe.json --audit audit.json --lang de -o bericht.html
  portolan report --site site.toml --format svg -o diagram.svg

The date in the report is today's, or that of $SOURCE_DATE_EPOCH.";

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// `portolan probe --format json` output: each flow is marked with what the probe found.
    #[arg(long, value_name = "RESULT.json")]
    pub probe: Option<PathBuf>,
    /// `portolan audit --format json` output: each flow is marked with the audit's verdict.
    #[arg(long, value_name = "RESULT.json")]
    pub audit: Option<PathBuf>,
    /// Language of the report (the profile's German texts are used where it has them).
    #[arg(long, value_enum, default_value_t = ReportLang::En)]
    pub lang: ReportLang,
    /// `html`: the whole report; `svg`: the diagram alone.
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    pub format: ReportFormat,
    /// The target whose rule count the report gives.
    #[arg(long, value_name = "TARGET", value_parser = targets(), default_value = "nftables")]
    pub target: String,
    /// Write to FILE (replaced atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportLang {
    En,
    De,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// The whole report.
    Html,
    /// The diagram alone.
    Svg,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub sel: Selection,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--target` values: every backend of the one table, with its description.
fn targets() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        portolan_core::render::TARGETS
            .iter()
            .map(|t| clap::builder::PossibleValue::new(t.name()).help(t.description())),
    )
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Firewall target.
    #[arg(long, value_name = "TARGET", value_parser = targets())]
    pub target: String,
    /// Write to FILE instead of standard output (replaced atomically; only a regular file is
    /// replaced, never a device, directory or symbolic link); `-` is standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Language of the sheets' headers and texts (the profile's German texts where it has
    /// them).
    #[arg(long, value_enum, default_value_t = SheetLang::En)]
    pub lang: SheetLang,
    /// Exit 1 when there are warnings (e.g. a flow the target cannot express and leaves out);
    /// the output is written all the same.
    #[arg(long)]
    pub strict: bool,
    /// iptables only: print one part (`ipset`, `v4` or `v6`) in its tool's native format.
    #[arg(long, value_name = "PART")]
    pub part: Option<String>,
    /// The configuration as is (text), or a JSON object with it, its parts and the
    /// diagnostics.
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SheetLang {
    En,
    De,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The profile as it was: catalog id or file.
    #[arg(value_name = "OLD")]
    pub old: String,
    /// The profile as it is now: catalog id or file.
    #[arg(value_name = "NEW")]
    pub new: String,
    /// Bind both to this site (its `profile` is ignored) to compare the rendered rules.
    #[arg(long, value_name = "FILE")]
    pub site: Option<PathBuf>,
    /// Optional features to enable: `all`, or a comma-separated list. Replaces the site's list.
    #[arg(long, value_name = "all|a,b")]
    pub features: Option<String>,
    /// Target whose rules are compared.
    #[arg(long, default_value = "nftables", value_name = "TARGET", value_parser = targets())]
    pub target: String,
    /// Markdown or JSON.
    #[arg(long, value_enum, default_value_t = DiffFormat::Markdown)]
    pub format: DiffFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Firewall target on this host.
    #[arg(long, value_enum, default_value_t = SetTarget::Nftables)]
    pub target: SetTarget,
    /// Print the script that would be loaded (with the addresses kept), load nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Firewall target on this host.
    #[arg(long, value_enum, default_value_t = SetTarget::Nftables)]
    pub target: SetTarget,
    /// Roll back by itself unless confirmed within DURATION (e.g. 60s, 2m): by Enter in this
    /// terminal or by `portolan apply --confirm-now`. On by default (60s) when standard input
    /// is a terminal; `--confirm 0` turns it off.
    #[arg(long, value_name = "DURATION")]
    pub confirm: Option<String>,
    /// Confirm the apply that is waiting for it (from this or another session), and exit.
    #[arg(long, conflicts_with_all = ["confirm", "dry_run", "force"])]
    pub confirm_now: bool,
    /// With --confirm: return once the rules are loaded instead of waiting for the
    /// confirmation or the rollback (the rollback helper keeps its timer).
    #[arg(long, requires = "confirm")]
    pub no_wait: bool,
    /// Check and show what would change, change nothing: exit 0 when nothing would, 1 when
    /// something would.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when a connection that manages this host would be dropped.
    #[arg(long)]
    pub force: bool,
    /// Exit 1 when there is nothing to change.
    #[arg(long)]
    pub strict: bool,
    #[arg(long, value_enum, default_value_t = TextFormat::Text)]
    pub format: TextFormat,
}

#[derive(Debug, Args)]
pub struct ApplyRollbackArgs {
    /// The apply it belongs to.
    #[arg(long)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Only these flow ids (comma-separated).
    #[arg(long, value_name = "ID,...")]
    pub flows: Option<String>,
    /// How long each probe waits for an answer (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub timeout: String,
    /// Probes in flight at once.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub concurrency: usize,
    /// Probes in flight toward any one address (keeps an IPS from blocking this host).
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub per_destination: usize,
    /// DNS server for names that the site does not pin; repeat for several, tried in turn
    /// (default: every nameserver of /etc/resolv.conf).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Vec<String>,
    /// Trusted CA certificates (PEM) for TLS checks, instead of the public web roots.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = ProbeFormat::Table)]
    pub format: ProbeFormat,
    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Probe the inbound flows (toward the appliance) instead of the outbound ones.
    #[arg(long, requires = "target")]
    pub inbound: bool,
    /// With --inbound: the appliance's address as seen from this host.
    #[arg(long, value_name = "ADDRESS")]
    pub target: Option<String>,
    /// Probe failures once more, one at a time.
    #[arg(long)]
    pub retry_failed: bool,
    /// Probe every port of a port range (up to 4096), not only its first and last.
    #[arg(long)]
    pub all_ports: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbeFormat {
    Table,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Stop after this long (e.g. 30s, 10m); default: until Ctrl-C or SIGTERM.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// One pass, then exit (for cron or a systemd timer).
    #[arg(long)]
    pub once: bool,
    /// Keep last known good addresses here (survives restarts).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// DNS server; repeat for several, tried in turn (default: every nameserver of
    /// /etc/resolv.conf). Answers are accepted only from the server asked, with the query's
    /// random id and question.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Vec<String>,
    /// Serve Prometheus metrics over HTTP at ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Write Prometheus metrics to FILE after each pass (node_exporter textfile format).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub min_refresh: String,
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub max_refresh: String,
    /// Keep last known good addresses at most this long without a successful lookup.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    pub max_stale: String,
    /// Time to wait for the resolver.
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub timeout: String,
    /// Output of --once: a table, or JSON.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Whose sets to fill: the nftables sets of table inet portolan, or the ipsets of the
    /// iptables target (render and load the same target).
    #[arg(long, value_enum, default_value_t = SetTarget::Nftables)]
    pub target: SetTarget,
    /// Log lines as text (with a UTC timestamp) or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The firewall target whose DNS-filled sets `sync` and `dns-proxy` keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetTarget {
    Nftables,
    Iptables,
}

impl SetTarget {
    pub fn sets(self) -> portolan_net::sets::Sets {
        match self {
            SetTarget::Nftables => portolan_net::sets::Sets::Nftables,
            SetTarget::Iptables => portolan_net::sets::Sets::Ipset,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct DnsProxyArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Address and port to answer on (UDP and TCP), e.g. 127.0.0.1:53.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// The resolver to forward to; only its answers are accepted.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub upstream: String,
    /// How long to wait for the upstream.
    #[arg(long, default_value = "3s", value_name = "DURATION")]
    pub timeout: String,
    /// Also answer clients in this network (repeat for several). By default only the
    /// appliance's own addresses and loopback are answered; everyone else gets REFUSED.
    #[arg(long, value_name = "NET")]
    pub allow: Vec<String>,
    /// Queries per second answered per client (the burst is twice this); more are dropped.
    #[arg(long, default_value_t = portolan_net::dns_proxy::CLIENT_RATE, value_name = "QPS")]
    pub rate: u32,
    /// Addresses stay in the wildcard's set this long at least after each answer, even when
    /// the TTL is shorter (clients cache addresses beyond the TTL); longer TTLs are followed.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub min_timeout: String,
    /// Whose sets to fill: the nftables sets of table inet portolan, or the ipsets of the
    /// iptables target.
    #[arg(long, value_enum, default_value_t = SetTarget::Nftables)]
    pub target: SetTarget,
    /// Log lines as text (with a UTC timestamp) or as JSON objects, one per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SchemaKind {
    Profile,
    Site,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}
