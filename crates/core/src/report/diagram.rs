//! The report's diagram: the appliance in the middle, the peers that connect to it on the
//! left, the peers it connects to on the right, each side grouped by zone (internet, the
//! vendor's services by DNS name, internal networks, the admin network, networks). One
//! box per peer and side, with every protocol and port of the flows between them; one
//! horizontal arrow per box, so no arrow crosses another and none needs a hand position.
//!
//! The layout is computed ([`layout`]) and then written as SVG ([`svg`]); tests check the
//! layout's geometry (no overlap, everything inside the canvas) rather than pixels.

use std::collections::BTreeMap;

use super::i18n::Texts;
use super::{esc, Status};
use crate::model::Protocol;
use crate::plan::{Direction, Plan, PlannedFlow, SetKind};

/// Where a peer stands, in the order the diagram shows zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Zone {
    Internet,
    Vendor,
    Internal,
    Admin,
    Networks,
}

impl Zone {
    pub fn label(self, t: &Texts) -> &'static str {
        match self {
            Zone::Internet => t.zone_internet,
            Zone::Vendor => t.zone_vendor,
            Zone::Internal => t.zone_internal,
            Zone::Admin => t.zone_admin,
            Zone::Networks => t.zone_networks,
        }
    }
    pub fn of(kind: SetKind, name: &str) -> Zone {
        match kind {
            SetKind::Dns | SetKind::Wildcard => Zone::Vendor,
            SetKind::Network => Zone::Networks,
            _ if name == "internet" => Zone::Internet,
            _ if name == "admin" || name.starts_with("admin-") => Zone::Admin,
            _ => Zone::Internal,
        }
    }
}

/// One peer on one side: every flow between it and the appliance in that direction.
#[derive(Debug, Clone)]
pub struct Edge {
    pub zone: Zone,
    pub peer: String,
    /// `true`: the peer connects to the appliance (left side).
    pub inbound: bool,
    /// `tcp 25, 465, 587`, `udp 53`, `icmp echo-request`, in that order.
    pub services: Vec<String>,
    /// Some flow of the edge is required.
    pub required: bool,
    /// Features the optional flows of the edge are behind.
    pub features: Vec<String>,
    /// Index of each planned flow of the edge.
    pub flows: Vec<usize>,
    pub status: Status,
}

impl Edge {
    pub fn services_text(&self) -> String {
        self.services.join(" · ")
    }
}

fn service_key(f: &PlannedFlow) -> (u8, String) {
    match f.protocol {
        Protocol::Tcp => (0, "tcp".into()),
        Protocol::Udp => (1, "udp".into()),
        Protocol::Icmp => (2, "icmp".into()),
    }
}

/// The edges of the plan, sorted by side, zone and peer. `status` gives each planned
/// flow's checked status (from a probe or an audit).
pub fn edges(plan: &Plan, status: &dyn Fn(usize) -> Status) -> Vec<Edge> {
    // (inbound, zone, peer) -> (protocol -> ports), flows
    type Key = (bool, Zone, String);
    type Ports = BTreeMap<(u8, String), Vec<String>>;
    let mut map: BTreeMap<Key, (Ports, Vec<usize>)> = BTreeMap::new();
    for (k, f) in plan.flows.iter().enumerate() {
        let (inbound, others) = match f.direction {
            Direction::Inbound => (true, &f.source.peers),
            Direction::Outbound => (false, &f.destination.peers),
            Direction::Internal => continue,
        };
        for p in others {
            if p.kind == SetKind::Appliance {
                continue;
            }
            let e = map
                .entry((inbound, Zone::of(p.kind, &p.name), p.name.clone()))
                .or_default();
            let ports = e.0.entry(service_key(f)).or_default();
            let what = f.ports_text();
            for w in what.split(',') {
                if !ports.iter().any(|x| x == w) {
                    ports.push(w.to_string());
                }
            }
            if !e.1.contains(&k) {
                e.1.push(k);
            }
        }
    }
    map.into_iter()
        .map(|((inbound, zone, peer), (services, flows))| {
            let mut features: Vec<String> = flows
                .iter()
                .filter(|k| !plan.flows[**k].required)
                .filter_map(|k| plan.flows[*k].feature.clone())
                .collect();
            features.sort();
            features.dedup();
            let st = flows
                .iter()
                .map(|k| status(*k))
                .fold(Status::Unchecked, Status::worst);
            Edge {
                zone,
                peer,
                inbound,
                services: services
                    .into_iter()
                    .map(|((_, proto), mut ports)| {
                        ports.sort_by_key(|p| {
                            p.split('-')
                                .next()
                                .and_then(|x| x.parse::<u32>().ok())
                                .unwrap_or(u32::MAX)
                        });
                        format!("{proto} {}", ports.join(", "))
                    })
                    .collect(),
                required: flows.iter().any(|k| plan.flows[*k].required),
                features,
                flows,
                status: st,
            }
        })
        .collect()
}

/// A placed rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }
    pub fn inside(&self, o: &Rect) -> bool {
        self.x >= o.x
            && self.y >= o.y
            && self.x + self.w <= o.x + o.w
            && self.y + self.h <= o.y + o.h
    }
}

/// The computed layout.
#[derive(Debug, Clone)]
pub struct Layout {
    pub canvas: Rect,
    pub appliance: Rect,
    /// (zone, side inbound, header rect, background rect)
    pub zones: Vec<(Zone, bool, Rect)>,
    /// One box per edge, same order as the edges.
    pub boxes: Vec<Rect>,
    /// Arrow from (x1, y) to (x2, y) per edge; the head is at x2.
    pub arrows: Vec<(f64, f64, f64)>,
    /// Legend area.
    pub legend: Rect,
}

pub const WIDTH: f64 = 1000.0;
const SIDE_W: f64 = 330.0;
const BOX_H: f64 = 44.0;
const GAP: f64 = 8.0;
const ZONE_HEAD: f64 = 24.0;
const ZONE_PAD: f64 = 8.0;
const TOP: f64 = 64.0;
const APP_W: f64 = 180.0;
const LEGEND_H: f64 = 96.0;
/// Characters that fit on a line of a peer box (12 px sans-serif, about 6.6 px each).
pub const BOX_CHARS: usize = 46;

/// Place every zone and box; the taller side decides the height.
pub fn layout(edges: &[Edge]) -> Layout {
    let mut boxes = vec![
        Rect {
            x: 0.0,
            y: 0.0,
            w: 0.0,
            h: 0.0
        };
        edges.len()
    ];
    let mut zones = Vec::new();
    let mut bottoms = [TOP, TOP];
    for (side, inbound) in [(0usize, true), (1, false)] {
        let x = if inbound { 20.0 } else { WIDTH - 20.0 - SIDE_W };
        let mut y = TOP;
        let mut cur: Option<Zone> = None;
        let mut zone_start = y;
        for (i, e) in edges
            .iter()
            .enumerate()
            .filter(|(_, e)| e.inbound == inbound)
        {
            if cur != Some(e.zone) {
                if let Some(z) = cur {
                    zones.push((
                        z,
                        inbound,
                        Rect {
                            x,
                            y: zone_start,
                            w: SIDE_W,
                            h: y - zone_start,
                        },
                    ));
                    y += GAP * 2.0;
                }
                cur = Some(e.zone);
                zone_start = y;
                y += ZONE_HEAD;
            }
            boxes[i] = Rect {
                x: x + ZONE_PAD,
                y,
                w: SIDE_W - 2.0 * ZONE_PAD,
                h: BOX_H,
            };
            y += BOX_H + GAP;
        }
        if let Some(z) = cur {
            zones.push((
                z,
                inbound,
                Rect {
                    x,
                    y: zone_start,
                    w: SIDE_W,
                    h: y - zone_start,
                },
            ));
        }
        bottoms[side] = y;
    }
    let bottom = bottoms[0].max(bottoms[1]).max(TOP + 120.0);
    let appliance = Rect {
        x: (WIDTH - APP_W) / 2.0,
        y: TOP,
        w: APP_W,
        h: bottom - TOP,
    };
    let arrows = edges
        .iter()
        .zip(&boxes)
        .map(|(e, b)| {
            let y = b.y + b.h / 2.0;
            if e.inbound {
                (b.x + b.w, y, appliance.x)
            } else {
                (appliance.x + appliance.w, y, b.x)
            }
        })
        .collect();
    let legend = Rect {
        x: 20.0,
        y: bottom + 16.0,
        w: WIDTH - 40.0,
        h: LEGEND_H,
    };
    Layout {
        canvas: Rect {
            x: 0.0,
            y: 0.0,
            w: WIDTH,
            h: legend.y + legend.h + 12.0,
        },
        appliance,
        zones,
        boxes,
        arrows,
        legend,
    }
}

/// Cut to `n` characters with an ellipsis.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The diagram as a standalone SVG document (text is real text; every label has a
/// `<title>` with its full text).
/// `appliance_lines`: the first `name_lines` are the appliance's name (bold), then its
/// addresses.
pub fn svg(
    title: &str,
    appliance_lines: &[String],
    name_lines: usize,
    edges: &[Edge],
    t: &Texts,
) -> String {
    let l = layout(edges);
    let mut o = String::new();
    o.push_str(&format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="dia-title dia-desc" class="diagram" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#,
        w = l.canvas.w,
        h = l.canvas.h
    ));
    o.push_str(&format!(
        r#"<title id="dia-title">{}</title><desc id="dia-desc">{}</desc>"#,
        esc(title),
        esc(t.diagram_alt)
    ));
    o.push_str(concat!(
        r##"<defs><marker id="head-req" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#1f4e9c"/></marker>"##,
        r##"<marker id="head-opt" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#b35c00"/></marker></defs>"##
    ));
    o.push_str(&format!(
        r##"<rect x="0" y="0" width="{}" height="{}" fill="#ffffff"/>"##,
        l.canvas.w, l.canvas.h
    ));
    // Side headings.
    o.push_str(&format!(
        r#"<text x="20" y="30" font-weight="bold" font-size="13">{}</text>"#,
        esc(t.inbound_side)
    ));
    o.push_str(&format!(
        r#"<text x="{}" y="30" font-weight="bold" font-size="13" text-anchor="end">{}</text>"#,
        WIDTH - 20.0,
        esc(t.outbound_side)
    ));
    // Zones.
    for (z, _, r) in &l.zones {
        o.push_str(&format!(
            r##"<g class="zone"><rect x="{}" y="{}" width="{}" height="{}" rx="6" fill="#f2f4f7" stroke="#9aa5b1"/><text x="{}" y="{}" font-weight="bold" fill="#333">{}</text></g>"##,
            r.x,
            r.y,
            r.w,
            r.h,
            r.x + 8.0,
            r.y + 16.0,
            esc(z.label(t))
        ));
    }
    // Appliance.
    let a = l.appliance;
    o.push_str(&format!(
        r##"<g class="appliance"><rect x="{}" y="{}" width="{}" height="{}" rx="10" fill="#e8eefb" stroke="#1f4e9c" stroke-width="2"/>"##,
        a.x, a.y, a.w, a.h
    ));
    let cy = a.y + a.h / 2.0 - (appliance_lines.len() as f64 - 1.0) * 8.0;
    for (i, line) in appliance_lines.iter().enumerate() {
        o.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="middle"{}><title>{}</title>{}</text>"#,
            a.x + a.w / 2.0,
            cy + i as f64 * 16.0,
            if i < name_lines {
                r#" font-weight="bold" font-size="13""#
            } else {
                ""
            },
            esc(line),
            esc(&clip(line, 24))
        ));
    }
    o.push_str("</g>");
    // Arrows and boxes.
    for ((e, b), (x1, y, x2)) in edges.iter().zip(&l.boxes).zip(&l.arrows) {
        let (color, dash, head, sym) = if e.required {
            ("#1f4e9c", "", "head-req", "●")
        } else {
            ("#b35c00", r#" stroke-dasharray="6 4""#, "head-opt", "○")
        };
        o.push_str(&format!(
            r#"<g class="edge {}"><line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{color}" stroke-width="2"{dash} marker-end="url(#{head})"/>"#,
            if e.required { "required" } else { "optional" }
        ));
        let (mark, cls) = (e.status.mark(), e.status.class());
        o.push_str(&format!(
            r##"<rect x="{}" y="{}" width="{}" height="{}" rx="4" fill="#ffffff" stroke="{color}"{dash}/>"##,
            b.x, b.y, b.w, b.h
        ));
        let line1 = format!("{sym} {}", e.peer);
        o.push_str(&format!(
            r#"<text x="{}" y="{}" font-weight="bold" class="peer"><title>{}</title>{}</text>"#,
            b.x + 8.0,
            b.y + 17.0,
            esc(&e.peer),
            esc(&clip(&line1, BOX_CHARS - 4))
        ));
        if !mark.is_empty() {
            o.push_str(&format!(
                r#"<text x="{}" y="{}" text-anchor="end" font-weight="bold" class="status {cls}" fill="{}">{mark}</text>"#,
                b.x + b.w - 8.0,
                b.y + 17.0,
                match e.status {
                    Status::Ok => "#1b7a2f",
                    Status::Fail => "#b00020",
                    _ => "#555",
                }
            ));
        }
        let mut line2 = e.services_text();
        if !e.features.is_empty() && !e.required {
            line2.push_str(&format!(" [{}]", e.features.join(", ")));
        }
        o.push_str(&format!(
            r##"<text x="{}" y="{}" fill="#333" class="services"><title>{}</title>{}</text></g>"##,
            b.x + 8.0,
            b.y + 34.0,
            esc(&line2),
            esc(&clip(&line2, BOX_CHARS))
        ));
    }
    // Legend.
    let g = l.legend;
    o.push_str(&format!(
        r##"<g class="legend"><rect x="{}" y="{}" width="{}" height="{}" fill="#fafafa" stroke="#ccc"/><text x="{}" y="{}" font-weight="bold">{}</text>"##,
        g.x,
        g.y,
        g.w,
        g.h,
        g.x + 10.0,
        g.y + 18.0,
        esc(t.legend)
    ));
    let lx = g.x + 10.0;
    o.push_str(&format!(
        r##"<line x1="{lx}" y1="{y}" x2="{}" y2="{y}" stroke="#1f4e9c" stroke-width="2"/><text x="{}" y="{}">{}</text>"##,
        lx + 40.0,
        lx + 50.0,
        g.y + 40.0,
        esc(t.legend_required),
        y = g.y + 36.0
    ));
    o.push_str(&format!(
        r##"<line x1="{lx}" y1="{y}" x2="{}" y2="{y}" stroke="#b35c00" stroke-width="2" stroke-dasharray="6 4"/><text x="{}" y="{}">{}</text>"##,
        lx + 40.0,
        lx + 50.0,
        g.y + 62.0,
        esc(t.legend_optional),
        y = g.y + 58.0
    ));
    let rx = g.x + g.w / 2.0 + 40.0;
    for (i, s) in [
        t.legend_ok,
        t.legend_fail,
        t.legend_unknown,
        t.legend_unchecked,
    ]
    .iter()
    .enumerate()
    {
        o.push_str(&format!(
            r#"<text x="{rx}" y="{}">{}</text>"#,
            g.y + 18.0 + i as f64 * 20.0,
            esc(s)
        ));
    }
    o.push_str("</g></svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(inbound: bool, zone: Zone, peer: &str) -> Edge {
        Edge {
            zone,
            peer: peer.into(),
            inbound,
            services: vec!["tcp 25".into()],
            required: true,
            features: vec![],
            flows: vec![0],
            status: Status::Unchecked,
        }
    }

    #[test]
    fn boxes_never_overlap_and_stay_on_the_canvas() {
        let mut es = Vec::new();
        for (i, z) in [Zone::Internet, Zone::Vendor, Zone::Internal, Zone::Admin]
            .iter()
            .enumerate()
        {
            for k in 0..(3 + i * 4) {
                es.push(edge(true, *z, &format!("in{i}-{k}")));
                es.push(edge(false, *z, &format!("out{i}-{k}")));
            }
        }
        es.sort_by_key(|e| (!e.inbound, e.zone));
        let l = layout(&es);
        for (i, a) in l.boxes.iter().enumerate() {
            assert!(a.inside(&l.canvas));
            assert!(!a.overlaps(&l.appliance), "box {i} on the appliance");
            assert!(!a.overlaps(&l.legend));
            for b in &l.boxes[i + 1..] {
                assert!(!a.overlaps(b), "{a:?} overlaps {b:?}");
            }
            // Each box is inside its zone's background.
            assert!(l
                .zones
                .iter()
                .any(|(z, side, r)| *z == es[i].zone && *side == es[i].inbound && a.inside(r)));
        }
        for (x1, y, x2) in &l.arrows {
            assert!(x1 < x2, "arrows point right");
            assert!(*y > l.appliance.y && *y < l.appliance.y + l.appliance.h);
        }
        assert!(l.legend.inside(&l.canvas));
    }
}
