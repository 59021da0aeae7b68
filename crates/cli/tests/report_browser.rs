//! The report in a real browser: headless Chromium (Debian's package; the README's test
//! command installs it) opens each catalog profile's report with every feature on, and the
//! test checks what a person would see: the diagram's screenshot is not empty and has the
//! flow colours, the appliance's name and every peer's label are in the rendered SVG, and no
//! element is wider than an A4 page. The screenshots are kept under docs/ (`BLESS=1`
//! rewrites them); the README shows one.
//!
//! Chromium runs in a network namespace of its own, so it cannot reach any host.
//!
//! Without Chromium the test says so loudly and is counted as skipped (with
//! PORTOLAN_SKIP_BROWSER_TESTS=1), or fails.

mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A4 at 96 dpi.
const PAGE_W: u32 = 794;
const PAGE_H: u32 = 1123;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find(|b| {
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|b| b.to_string())
}

fn require_browser() -> Option<String> {
    if let Some(b) = chromium() {
        return Some(b);
    }
    let msg = "BROWSER TEST CANNOT RUN: no chromium on PATH (apt-get install -y chromium; the README's test command installs it).";
    netns::skip_loudly("PORTOLAN_SKIP_BROWSER_TESTS", msg);
    None
}

fn portolan(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1796515200")
        .output()
        .expect("run portolan");
    assert!(
        o.status.success(),
        "portolan {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Chromium in a network namespace of its own (`unshare --net`): it opens a local file and
/// can reach nothing, whatever it would like to call home to.
fn headless(bin: &str, dir: &Path, extra: &[&str], url: &Path) -> std::process::Output {
    let mut c = Command::new("unshare");
    c.args(["--net", "--", bin]);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--virtual-time-budget=3000",
    ])
    .arg(format!(
        "--user-data-dir={}",
        dir.join("chromium-profile").display()
    ))
    .args(extra)
    .arg(format!("file://{}", url.display()));
    let o = c.output().expect("run chromium");
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// Peer labels the diagram must show: every non-appliance peer of an inbound or outbound
/// flow.
fn peers(profile: &str) -> Vec<String> {
    let plan: Value = serde_json::from_str(&portolan(&[
        "plan",
        "--profile",
        profile,
        "--features",
        "all",
        "--format",
        "json",
    ]))
    .expect("plan json");
    let mut out = Vec::new();
    for f in plan["flows"].as_array().expect("flows") {
        let side = match f["direction"].as_str() {
            Some("inbound") => "source",
            Some("outbound") => "destination",
            _ => continue,
        };
        for p in f[side]["peers"].as_array().into_iter().flatten() {
            let n = p["name"].as_str().unwrap_or("").to_string();
            if p["kind"] != "appliance" && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Unescape the few entities the report writes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

#[test]
fn report_renders_in_a_real_browser() {
    let Some(bin) = require_browser() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    for p in ["intra2net", "seppmail", "clearswift"] {
        let html = portolan(&["report", "--profile", p, "--features", "all"]);
        let svg = portolan(&[
            "report",
            "--profile",
            p,
            "--features",
            "all",
            "--format",
            "svg",
        ]);
        // The page, with a measuring script added to this copy only (the report itself has
        // no script, and its Content-Security-Policy would block one).
        let probe = r#"<script>
window.addEventListener('load', () => {
  const w = document.documentElement.clientWidth;
  const over = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) over.push(e.tagName + '.' + (e.getAttribute('class') || ''));
  }
  document.body.setAttribute('data-width', String(w));
  document.body.setAttribute('data-overflow', String(over.length));
  document.body.setAttribute('data-over', over.slice(0, 5).join(' '));
  const svg = document.querySelector('figure svg');
  const b = svg.getBoundingClientRect();
  document.body.setAttribute('data-svg', Math.round(b.width) + 'x' + Math.round(b.height));
});
</script>"#;
        let csp_start = html
            .find("<meta http-equiv=\"Content-Security-Policy\"")
            .expect("the report sets a CSP");
        let csp_end = csp_start + html[csp_start..].find('>').expect("end") + 1;
        let check = format!("{}{}", &html[..csp_start], &html[csp_end..])
            .replace("</body>", &format!("{probe}</body>"));
        let page = dir.path().join(format!("{p}-check.html"));
        std::fs::write(&page, check).expect("write");
        let o = headless(
            &bin,
            dir.path(),
            &[&format!("--window-size={PAGE_W},{PAGE_H}"), "--dump-dom"],
            &page,
        );
        let dom = String::from_utf8_lossy(&o.stdout).to_string();
        let attr = |name: &str| -> String {
            let key = format!("{name}=\"");
            dom.find(&key)
                .map(|i| {
                    dom[i + key.len()..]
                        .split('"')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_else(|| {
                    panic!("{p}: no {name} in the DOM: the measuring script did not run")
                })
        };
        assert_eq!(
            attr("data-overflow"),
            "0",
            "{p}: elements wider than the page: {}",
            attr("data-over")
        );
        let svg_size = attr("data-svg");
        let (sw, sh) = svg_size.split_once('x').expect("size");
        assert!(
            sw.parse::<u32>().unwrap_or(0) > 600 && sh.parse::<u32>().unwrap_or(0) > 300,
            "{p}: the diagram renders at {svg_size}"
        );
        // The appliance's name and every peer's label are rendered SVG text.
        let svg_dom = &dom[dom.find("<svg").expect("svg in the DOM")..];
        let svg_dom = unescape(&svg_dom[..svg_dom.find("</svg>").expect("end of svg")]);
        let plan: Value =
            serde_json::from_str(&portolan(&["plan", "--profile", p, "--format", "json"]))
                .expect("plan");
        let name = plan["profile_name"].as_str().expect("name");
        assert!(
            svg_dom.contains(name),
            "{p}: appliance name {name} not in the diagram"
        );
        let labels = peers(p);
        assert!(labels.len() >= 4, "{p}: {labels:?}");
        for l in &labels {
            assert!(
                svg_dom.contains(&format!("<title>{l}</title>")),
                "{p}: peer {l} not labelled in the diagram"
            );
        }

        // A screenshot of the diagram alone, at its own size.
        let (w, h) = {
            let attr = |k: &str| -> u32 {
                let key = format!(" {k}=\"");
                svg[svg.find(&key).expect("size") + key.len()..]
                    .split('"')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .expect("number") as u32
            };
            (attr("width"), attr("height"))
        };
        let svg_path = dir.path().join(format!("{p}.svg"));
        std::fs::write(&svg_path, &svg).expect("write");
        let shot = dir.path().join(format!("{p}.png"));
        headless(
            &bin,
            dir.path(),
            &[
                &format!("--window-size={w},{h}"),
                &format!("--screenshot={}", shot.display()),
            ],
            &svg_path,
        );
        let (iw, ih, white, blue, total) = pixels(&shot);
        assert_eq!((iw, ih), (w, h), "{p}: screenshot size");
        assert!(
            white < total * 97 / 100,
            "{p}: the screenshot is (nearly) blank: {white} of {total} pixels white"
        );
        assert!(
            blue > 200,
            "{p}: no required-flow colour in the screenshot ({blue} px)"
        );
        let keep = docs().join(format!("report-{p}.png"));
        if std::env::var_os("BLESS").is_some() || !keep.exists() {
            std::fs::create_dir_all(docs()).expect("docs");
            std::fs::copy(&shot, &keep).expect("keep the screenshot");
        }
        let (kw, kh, kwhite, _, ktotal) = pixels(&keep);
        assert!(
            kw > 0 && kh > 0 && kwhite < ktotal,
            "{}: not a screenshot",
            keep.display()
        );
        eprintln!(
            "{p}: diagram {w}x{h}, {} peers, page without overflow",
            labels.len()
        );
    }
}

/// (width, height, white pixels, pixels of the required-flow blue, all pixels).
fn pixels(path: &Path) -> (u32, u32, usize, usize, usize) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let ch = info.color_type.samples();
    let (mut white, mut blue, mut total) = (0, 0, 0);
    for px in buf[..info.buffer_size()].chunks(ch) {
        let (r, g, b) = if ch >= 3 {
            (px[0], px[1], px[2])
        } else {
            (px[0], px[0], px[0])
        };
        total += 1;
        if r > 245 && g > 245 && b > 245 {
            white += 1;
        }
        // #1f4e9c, antialiased.
        if r < 80 && (50..130).contains(&g) && b > 120 && b > r + 60 {
            blue += 1;
        }
    }
    (info.width, info.height, white, blue, total)
}
