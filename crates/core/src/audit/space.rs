//! Packet sets as unions of boxes.
//!
//! A packet is a point in [`D`] dimensions (family, interfaces, addresses, protocol, ports,
//! ICMP type, the DNS-name tags and the flow it belongs to). A [`Cube`] is a product of one
//! interval set per dimension; a [`Region`] is a union of cubes. Every firewall match the
//! audit understands (prefixes, ranges, anonymous and named sets, negations, interface
//! wildcards) is a cube or a short union of cubes, and the difference of two cubes is at most
//! one cube per constrained dimension, so chain evaluation stays a sequence of cheap
//! interval operations. See ARCHITECTURE.md for why this and not a BDD.

use smallvec::SmallVec;

/// Dimensions of the packet space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(usize)]
pub enum Dim {
    /// 0 = IPv4, 1 = IPv6.
    Fam = 0,
    /// Interned interface ids (see `Ifaces`); 0 = no interface.
    Iif,
    Oif,
    Saddr,
    Daddr,
    /// IP protocol number (the transport header, not IPv6 extension headers).
    Proto,
    Sport,
    Dport,
    /// ICMP or ICMPv6 type.
    Icmp,
    /// Unresolved DNS name the source address belongs to (0 = a concrete address).
    Stag,
    /// Same for the destination.
    Dtag,
    /// Which planned flow (or the excess universe) a cube belongs to. No rule constrains it.
    Flow,
}

/// Number of dimensions.
pub const D: usize = 12;

pub const DIMS: [Dim; D] = [
    Dim::Fam,
    Dim::Iif,
    Dim::Oif,
    Dim::Saddr,
    Dim::Daddr,
    Dim::Proto,
    Dim::Sport,
    Dim::Dport,
    Dim::Icmp,
    Dim::Stag,
    Dim::Dtag,
    Dim::Flow,
];

impl Dim {
    /// Largest value of the dimension.
    pub fn max(self) -> u128 {
        match self {
            Dim::Fam => 1,
            Dim::Iif | Dim::Oif | Dim::Stag | Dim::Dtag | Dim::Flow => u128::from(u32::MAX),
            Dim::Saddr | Dim::Daddr => u128::MAX,
            Dim::Proto | Dim::Icmp => 255,
            Dim::Sport | Dim::Dport => 65535,
        }
    }
}

/// Sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct IvSet(pub SmallVec<[(u128, u128); 2]>);

impl IvSet {
    pub fn empty() -> Self {
        IvSet(SmallVec::new())
    }
    pub fn single(lo: u128, hi: u128) -> Self {
        let mut v = SmallVec::new();
        if lo <= hi {
            v.push((lo, hi));
        }
        IvSet(v)
    }
    pub fn point(v: u128) -> Self {
        Self::single(v, v)
    }
    /// From intervals in any order, overlapping or not.
    pub fn from_intervals(mut ivs: Vec<(u128, u128)>) -> Self {
        ivs.retain(|(a, b)| a <= b);
        ivs.sort_unstable();
        let mut out: SmallVec<[(u128, u128); 2]> = SmallVec::new();
        for (a, b) in ivs {
            if let Some(last) = out.last_mut() {
                if a <= last.1.saturating_add(1) {
                    last.1 = last.1.max(b);
                    continue;
                }
            }
            out.push((a, b));
        }
        IvSet(out)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn is_full(&self, max: u128) -> bool {
        self.0.len() == 1 && self.0[0] == (0, max)
    }
    pub fn contains(&self, v: u128) -> bool {
        self.0.iter().any(|&(a, b)| a <= v && v <= b)
    }
    pub fn first(&self) -> Option<u128> {
        self.0.first().map(|p| p.0)
    }
    /// A plausible host of the first interval: its first value when it is a single one,
    /// else the one after (not a network's own address such as `1.0.0.0`).
    pub fn first_host(&self) -> Option<u128> {
        self.0
            .first()
            .map(|&(lo, hi)| if hi > lo { lo + 1 } else { lo })
    }
    /// Number of values, saturating.
    pub fn count(&self) -> f64 {
        self.0.iter().map(|&(a, b)| (b - a) as f64 + 1.0).sum()
    }
    pub fn overlaps(&self, other: &IvSet) -> bool {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].1 < b[j].0 {
                i += 1;
            } else if b[j].1 < a[i].0 {
                j += 1;
            } else {
                return true;
            }
        }
        false
    }
    /// Is every value of `self` in `other`?
    pub fn subset_of(&self, other: &IvSet) -> bool {
        self.0
            .iter()
            .all(|&(a, b)| other.0.iter().any(|&(c, d)| c <= a && b <= d))
    }
    pub fn intersect(&self, other: &IvSet) -> IvSet {
        let (a, b) = (&self.0, &other.0);
        let mut out = SmallVec::new();
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            let lo = a[i].0.max(b[j].0);
            let hi = a[i].1.min(b[j].1);
            if lo <= hi {
                out.push((lo, hi));
            }
            if a[i].1 < b[j].1 {
                i += 1;
            } else {
                j += 1;
            }
        }
        IvSet(out)
    }
    pub fn complement(&self, max: u128) -> IvSet {
        let mut out = SmallVec::new();
        let mut next: Option<u128> = Some(0);
        for &(a, b) in &self.0 {
            if let Some(n) = next {
                if a > n {
                    out.push((n, a - 1));
                }
            }
            next = b.checked_add(1);
        }
        if let Some(n) = next {
            if n <= max {
                out.push((n, max));
            }
        }
        IvSet(out)
    }
    pub fn subtract(&self, other: &IvSet, max: u128) -> IvSet {
        if !self.overlaps(other) {
            return self.clone();
        }
        self.intersect(&other.complement(max))
    }
    pub fn union(&self, other: &IvSet) -> IvSet {
        let mut v: Vec<(u128, u128)> = self.0.to_vec();
        v.extend(other.0.iter().copied());
        IvSet::from_intervals(v)
    }
}

/// A product of one interval set per dimension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cube(pub [IvSet; D]);

impl Cube {
    /// Every packet.
    pub fn full() -> Cube {
        Cube(DIMS.map(|d| IvSet::single(0, d.max())))
    }
    pub fn get(&self, d: Dim) -> &IvSet {
        &self.0[d as usize]
    }
    /// Restrict one dimension (intersect).
    pub fn with(mut self, d: Dim, s: &IvSet) -> Cube {
        self.0[d as usize] = self.0[d as usize].intersect(s);
        self
    }
    pub fn set(&mut self, d: Dim, s: IvSet) {
        self.0[d as usize] = s;
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().any(IvSet::is_empty)
    }
    pub fn overlaps(&self, other: &Cube) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .all(|(a, b)| a.overlaps(b))
    }
    pub fn intersect(&self, other: &Cube) -> Option<Cube> {
        if !self.overlaps(other) {
            return None;
        }
        let mut out = self.clone();
        for (i, o) in out.0.iter_mut().enumerate() {
            if !o.subset_of(&other.0[i]) {
                *o = o.intersect(&other.0[i]);
            }
        }
        Some(out)
    }
    pub fn subset_of(&self, other: &Cube) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .all(|(a, b)| a.subset_of(b))
    }
    /// `self - other` as disjoint cubes (at most one per dimension `other` constrains).
    pub fn subtract(&self, other: &Cube, out: &mut Vec<Cube>) {
        if !self.overlaps(other) {
            out.push(self.clone());
            return;
        }
        let mut rest = self.clone();
        for (i, d) in DIMS.iter().enumerate() {
            let (a, b) = (&rest.0[i], &other.0[i]);
            if a.subset_of(b) {
                continue;
            }
            let outside = a.subtract(b, Dim::max(*d));
            let inside = a.intersect(b);
            let mut piece = rest.clone();
            piece.0[i] = outside;
            out.push(piece);
            rest.0[i] = inside;
        }
    }
    /// A rough size for ordering summaries: log2 of the number of points, ignoring the flow
    /// and tag dimensions.
    pub fn volume_log2(&self) -> f64 {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                ![Dim::Flow as usize, Dim::Stag as usize, Dim::Dtag as usize].contains(i)
            })
            .map(|(_, s)| s.count().max(1.0).log2())
            .sum()
    }
}

/// A union of cubes (not necessarily disjoint unless built by subtraction).
pub type Region = Vec<Cube>;

/// `region ∩ m`.
pub fn intersect(region: &[Cube], m: &[Cube]) -> Region {
    let mut out = Vec::new();
    for a in region {
        for b in m {
            if let Some(c) = a.intersect(b) {
                out.push(c);
            }
        }
    }
    out
}

/// `region - m`.
pub fn subtract(region: Region, m: &[Cube]) -> Region {
    let mut cur = region;
    for b in m {
        if !cur.iter().any(|a| a.overlaps(b)) {
            continue;
        }
        let mut next = Vec::with_capacity(cur.len() + 4);
        for a in &cur {
            a.subtract(b, &mut next);
        }
        cur = next;
    }
    cur
}

/// Merge cubes that differ in one dimension only, until nothing changes. Keeps regions
/// from fragmenting without end on long chains.
pub fn coalesce(region: Region) -> Region {
    use std::collections::HashMap;
    let mut cur = region;
    loop {
        let before = cur.len();
        for d in 0..D {
            let mut groups: HashMap<Vec<&IvSet>, usize> = HashMap::new();
            let mut merged: Vec<Cube> = Vec::with_capacity(cur.len());
            let mut idx_of: Vec<Option<usize>> = Vec::with_capacity(cur.len());
            // Two passes to appease the borrow checker: compute group targets first.
            {
                for c in &cur {
                    let key: Vec<&IvSet> =
                        c.0.iter()
                            .enumerate()
                            .filter(|(i, _)| *i != d)
                            .map(|(_, s)| s)
                            .collect();
                    match groups.get(&key) {
                        Some(&g) => idx_of.push(Some(g)),
                        None => {
                            groups.insert(key, merged.len());
                            idx_of.push(None);
                            merged.push(c.clone());
                        }
                    }
                }
            }
            for (c, g) in cur.iter().zip(idx_of) {
                if let Some(g) = g {
                    let u = merged[g].0[d].union(&c.0[d]);
                    merged[g].0[d] = u;
                }
            }
            cur = merged;
        }
        if cur.len() == before {
            return cur;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cube2(s: (u128, u128), p: (u128, u128)) -> Cube {
        Cube::full()
            .with(Dim::Saddr, &IvSet::single(s.0, s.1))
            .with(Dim::Dport, &IvSet::single(p.0, p.1))
    }

    fn points(r: &[Cube]) -> usize {
        // Count (saddr, dport) points in a small window, checking disjointness too.
        let mut n = 0;
        for s in 0..20u128 {
            for p in 0..20u128 {
                let k = r
                    .iter()
                    .filter(|c| c.get(Dim::Saddr).contains(s) && c.get(Dim::Dport).contains(p))
                    .count();
                assert!(k <= 1, "cubes overlap at ({s},{p})");
                n += k;
            }
        }
        n
    }

    #[test]
    fn interval_sets() {
        let a = IvSet::from_intervals(vec![(5, 9), (1, 3), (4, 4), (20, 30)]);
        assert_eq!(a.0.as_slice(), &[(1, 9), (20, 30)]);
        let c = a.complement(40);
        assert_eq!(c.0.as_slice(), &[(0, 0), (10, 19), (31, 40)]);
        assert!(!a.overlaps(&c));
        assert_eq!(a.union(&c), IvSet::single(0, 40));
        assert_eq!(
            a.intersect(&IvSet::single(8, 21)).0.as_slice(),
            &[(8, 9), (20, 21)]
        );
        assert_eq!(
            IvSet::single(0, u128::MAX).complement(u128::MAX),
            IvSet::empty()
        );
        assert_eq!(IvSet::empty().complement(7), IvSet::single(0, 7));
    }

    #[test]
    fn subtraction_is_exact_and_disjoint() {
        let r = vec![cube2((0, 19), (0, 19))];
        let r = subtract(r, &[cube2((5, 9), (5, 9))]);
        assert_eq!(points(&r), 400 - 25);
        let r = subtract(r, &[cube2((0, 19), (0, 4))]);
        assert_eq!(points(&r), 400 - 25 - 100);
        let r = coalesce(r);
        assert_eq!(points(&r), 275);
        let i = intersect(&r, &[cube2((0, 9), (0, 19))]);
        assert_eq!(points(&i), 200 - 50 - 25);
    }
}
