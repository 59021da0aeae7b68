//! Address-set arithmetic: split by family, merge, and complement.
//!
//! Used to compute the default `internet` role (everything outside the site's internal
//! networks and the special-purpose ranges). Works on inclusive integer intervals and converts
//! back to the fewest CIDR blocks with ipnet's subnet iterators. Must never produce a block
//! that covers an excluded address: tests check membership at the edges.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv4Subnets, Ipv6Net, Ipv6Subnets};

/// IPv4 ranges that are never "the internet": this-network, private (RFC 1918), shared
/// address space (RFC 6598), loopback, link-local, multicast, reserved and broadcast.
pub const NOT_INTERNET_V4: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
];

/// IPv6 ranges that are never "the internet": unspecified, loopback, unique local, link-local
/// and multicast.
pub const NOT_INTERNET_V6: &[&str] = &["::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8"];

/// Split a mixed list into per-family lists, merged and sorted.
pub fn split(nets: &[IpNet]) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for n in nets {
        match n {
            IpNet::V4(n) => v4.push(n.trunc()),
            IpNet::V6(n) => v6.push(n.trunc()),
        }
    }
    (Ipv4Net::aggregate(&v4), Ipv6Net::aggregate(&v6))
}

fn intervals_v4(nets: &[Ipv4Net]) -> Vec<(u32, u32)> {
    merge(
        nets.iter()
            .map(|n| (u32::from(n.network()), u32::from(n.broadcast())))
            .collect(),
    )
}

fn intervals_v6(nets: &[Ipv6Net]) -> Vec<(u128, u128)> {
    merge(
        nets.iter()
            .map(|n| (u128::from(n.network()), u128::from(n.broadcast())))
            .collect(),
    )
}

fn merge<T: Ord + Copy + num_like::One>(mut iv: Vec<(T, T)>) -> Vec<(T, T)> {
    iv.sort();
    let mut out: Vec<(T, T)> = Vec::new();
    for (lo, hi) in iv {
        if let Some(last) = out.last_mut() {
            if last.1 == T::MAX || lo <= last.1.plus_one() {
                if hi > last.1 {
                    last.1 = hi;
                }
                continue;
            }
        }
        out.push((lo, hi));
    }
    out
}

mod num_like {
    pub trait One {
        const MAX: Self;
        const MIN: Self;
        fn plus_one(self) -> Self;
        fn minus_one(self) -> Self;
    }
    impl One for u32 {
        const MAX: u32 = u32::MAX;
        const MIN: u32 = 0;
        fn plus_one(self) -> u32 {
            self.saturating_add(1)
        }
        fn minus_one(self) -> u32 {
            self.saturating_sub(1)
        }
    }
    impl One for u128 {
        const MAX: u128 = u128::MAX;
        const MIN: u128 = 0;
        fn plus_one(self) -> u128 {
            self.saturating_add(1)
        }
        fn minus_one(self) -> u128 {
            self.saturating_sub(1)
        }
    }
}

fn gaps<T: Ord + Copy + num_like::One>(merged: &[(T, T)]) -> Vec<(T, T)> {
    let mut out = Vec::new();
    let mut next = T::MIN;
    let mut done = false;
    for &(lo, hi) in merged {
        if lo > next {
            out.push((next, lo.minus_one()));
        }
        if hi == T::MAX {
            done = true;
            break;
        }
        next = hi.plus_one();
    }
    if !done {
        out.push((next, T::MAX));
    }
    out
}

/// Every IPv4 address not in `exclude`, as CIDR blocks.
pub fn complement_v4(exclude: &[Ipv4Net]) -> Vec<Ipv4Net> {
    gaps(&intervals_v4(exclude))
        .into_iter()
        .flat_map(|(lo, hi)| Ipv4Subnets::new(Ipv4Addr::from(lo), Ipv4Addr::from(hi), 0))
        .collect()
}

/// Every IPv6 address not in `exclude`, as CIDR blocks.
pub fn complement_v6(exclude: &[Ipv6Net]) -> Vec<Ipv6Net> {
    gaps(&intervals_v6(exclude))
        .into_iter()
        .flat_map(|(lo, hi)| Ipv6Subnets::new(Ipv6Addr::from(lo), Ipv6Addr::from(hi), 0))
        .collect()
}

/// The default `internet`: everything except `internal` and the special-purpose ranges.
pub fn internet(internal: &[IpNet]) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let (mut v4, mut v6) = split(internal);
    v4.extend(
        NOT_INTERNET_V4
            .iter()
            .filter_map(|s| s.parse::<Ipv4Net>().ok()),
    );
    v6.extend(
        NOT_INTERNET_V6
            .iter()
            .filter_map(|s| s.parse::<Ipv6Net>().ok()),
    );
    (complement_v4(&v4), complement_v6(&v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains_v4(nets: &[Ipv4Net], a: &str) -> bool {
        let a: Ipv4Addr = a.parse().expect("addr");
        nets.iter().any(|n| n.contains(&a))
    }

    #[test]
    fn internet_excludes_internal_and_special_ranges_exactly() {
        let internal: Vec<IpNet> = vec!["192.0.2.0/24".parse().expect("net")];
        let (v4, v6) = internet(&internal);
        assert!(!contains_v4(&v4, "192.0.2.0"));
        assert!(!contains_v4(&v4, "192.0.2.255"));
        assert!(contains_v4(&v4, "192.0.1.255"));
        assert!(contains_v4(&v4, "192.0.3.0"));
        assert!(contains_v4(&v4, "203.0.113.7"));
        assert!(contains_v4(&v4, "8.8.8.8"));
        assert!(!contains_v4(&v4, "10.1.2.3"));
        assert!(!contains_v4(&v4, "127.0.0.1"));
        assert!(!contains_v4(&v4, "255.255.255.255"));
        assert!(contains_v4(&v4, "1.0.0.0"));
        let g: Ipv6Addr = "2001:db8::1".parse().expect("addr");
        assert!(v6.iter().any(|n| n.contains(&g)));
        let l: Ipv6Addr = "fe80::1".parse().expect("addr");
        assert!(!v6.iter().any(|n| n.contains(&l)));
    }

    #[test]
    fn complement_of_nothing_is_everything_and_of_everything_is_nothing() {
        assert_eq!(
            complement_v4(&[]),
            vec!["0.0.0.0/0".parse::<Ipv4Net>().expect("net")]
        );
        assert!(complement_v4(&["0.0.0.0/0".parse().expect("net")]).is_empty());
        assert!(complement_v6(&["::/0".parse().expect("net")]).is_empty());
    }
}
