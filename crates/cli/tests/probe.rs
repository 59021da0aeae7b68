//! `portolan probe` and `portolan listen` against real servers in network namespaces.
//!
//! A small internet: a DNS server answering the vendors' names with namespace addresses (and
//! NXDOMAIN, and silence for one name); TLS servers with a test CA made here and a second
//! "inspection proxy" CA presenting forged certificates; SMTP, SSH, HTTP, Razor and NTP peers;
//! a firewall that drops, resets and administratively prohibits. Each case asserts the exact
//! verdict. Nothing outside the namespaces is contacted.

mod netns;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use netns::dns;
use netns::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

fn ip4(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

const DNS: &str = "203.0.113.53";

/// Vendor names and where the test DNS server points them.
const RECORDS: &[(&str, &str)] = &[
    ("update.intra2net.com", "203.0.113.10"),
    ("avupdate.intra2net.com", "203.0.113.11"),
    ("avfpc.intra2net.com", "203.0.113.12"),
    ("ksn1.kaspersky-labs.com", "203.0.113.13"),
    ("support.intra2net.com", "203.0.113.50"),
    ("support.seppmail.ch", "203.0.113.51"),
    ("update.seppmail.ch", "203.0.113.52"),
    ("repo.clearswift.net", "203.0.113.22"),
    ("www.clearswift.com", "203.0.113.80"),
    ("razor.intra2net.com", "203.0.113.27"),
    ("0.rhel.pool.ntp.org", "203.0.113.123"),
    ("services1.clearswift.net", "203.0.113.81"),
    ("services2.clearswift.net", "203.0.113.82"),
    ("services3.clearswift.net", "203.0.113.83"),
    ("ftp.clearswift.net", "203.0.113.21"),
    ("mail.seppmail.ch", "203.0.113.110"),
    ("keys.seppmail.ch", "203.0.113.38"),
    ("x1.avcloud.intra2net.com", "203.0.113.10"),
    ("ldaps.seppmail.ch", "203.0.113.39"),
    ("silent1.clearswift.net", "203.0.113.84"),
    ("silent2.clearswift.net", "203.0.113.85"),
];

/// AAAA records.
const RECORDS6: &[(&str, &str)] = &[("v6.clearswift.net", "2001:db8:d::10")];

const PROFILE: &str = r#"
id = "probe-test"
name = "Probe test appliance"
vendor = "portolan tests"
[roles.webmail]
description = "a web mail server bound to one host"
[features.extra]
description = "an optional flow that is down"

[[flows]]
id = "update"
function = "trusted TLS"
from = "appliance"
to = "update.intra2net.com"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "avupdate"
function = "TLS through an inspecting proxy"
from = "appliance"
to = "avupdate.intra2net.com"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "avfpc"
function = "trusted certificate for another name"
from = "appliance"
to = "avfpc.intra2net.com"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "ksn"
function = "must not be intercepted"
from = "appliance"
to = "ksn1.kaspersky-labs.com"
protocols = ["tcp"]
ports = [443]
app = "ksn"
flags = ["no_tls_interception"]

[[flows]]
id = "support"
function = "range, one end open, the other dropped"
from = "appliance"
to = "support.intra2net.com"
protocols = ["tcp"]
ports = ["5000-5050"]
app = "tcp"

[[flows]]
id = "rejected"
function = "firewall answers with a reset"
from = "appliance"
to = "support.seppmail.ch"
protocols = ["tcp"]
ports = [22]
app = "ssh"

[[flows]]
id = "prohibited"
function = "firewall answers admin-prohibited"
from = "appliance"
to = "update.seppmail.ch"
protocols = ["tcp"]
ports = [22]
app = "ssh"

[[flows]]
id = "ssh"
function = "SSH banner"
from = "appliance"
to = "repo.clearswift.net"
protocols = ["tcp"]
ports = [22]
app = "ssh"

[[flows]]
id = "smtp"
function = "SMTP with STARTTLS"
from = "appliance"
to = "smarthost"
protocols = ["tcp"]
ports = [25]
app = "smtp"

[[flows]]
id = "http"
function = "HTTP"
from = "appliance"
to = "www.clearswift.com"
protocols = ["tcp"]
ports = [80]
app = "http"

[[flows]]
id = "razor"
function = "Razor greeting"
from = "appliance"
to = "razor.intra2net.com"
protocols = ["tcp"]
ports = [2703]
app = "razor"

[[flows]]
id = "ntp"
function = "NTP"
from = "appliance"
to = "0.rhel.pool.ntp.org"
protocols = ["udp"]
ports = [123]
app = "ntp"

[[flows]]
id = "dns"
function = "DNS over UDP and TCP"
from = "appliance"
to = "dns-server"
protocols = ["tcp", "udp"]
ports = [53]
app = "dns"

[[flows]]
id = "expired"
function = "a certificate past its notAfter"
from = "appliance"
to = "services3.clearswift.net"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "sshonsmtp"
function = "SSH where SMTP is expected: the banner's dash is no SMTP continuation"
from = "appliance"
to = "services2.clearswift.net"
protocols = ["tcp"]
ports = [25]
app = "smtp"

[[flows]]
id = "mismatch"
function = "HTTP where SMTP is expected"
from = "appliance"
to = "services1.clearswift.net"
protocols = ["tcp"]
ports = [25]
app = "smtp"

[[flows]]
id = "nxdomain"
function = "a name that does not exist"
from = "appliance"
to = "gone.intra2net.com"
protocols = ["tcp"]
ports = [443]

[[flows]]
id = "dnstimeout"
function = "a name the resolver never answers"
from = "appliance"
to = "slow.intra2net.com"
protocols = ["tcp"]
ports = [443]

[[flows]]
id = "syslog"
function = "syslog is silent"
from = "appliance"
to = "syslog-server"
protocols = ["udp"]
ports = [514]
app = "syslog"

[[flows]]
id = "ping"
function = "ICMP echo"
from = "appliance"
to = "smarthost"
protocols = ["icmp"]
icmp_type = "echo-request"

[[flows]]
id = "ping-blocked"
function = "ICMP echo dropped"
from = "appliance"
to = "203.0.113.99"
protocols = ["icmp"]
icmp_type = "echo-request"

[[flows]]
id = "ftp"
function = "FTP banner"
from = "appliance"
to = "ftp.clearswift.net"
protocols = ["tcp"]
ports = [21]
app = "ftp"

[[flows]]
id = "pop3"
function = "POP3 banner"
from = "appliance"
to = "mail.seppmail.ch"
protocols = ["tcp"]
ports = [110]
app = "pop3"

[[flows]]
id = "imap"
function = "IMAP banner"
from = "appliance"
to = "mail.seppmail.ch"
protocols = ["tcp"]
ports = [143]
app = "imap"

[[flows]]
id = "ldap"
function = "anonymous RootDSE read"
from = "appliance"
to = "keys.seppmail.ch"
protocols = ["tcp"]
ports = [389]
app = "ldap"

[[flows]]
id = "snmp"
function = "SNMPv3 discovery"
from = "appliance"
to = "snmp-manager"
protocols = ["udp"]
ports = [161]
app = "snmp"

[[flows]]
id = "avcloud"
function = "wildcard probed through a concrete name"
from = "appliance"
to = "*.avcloud.intra2net.com"
protocols = ["tcp"]
ports = [443]
app = "tcp"

[[flows]]
id = "wild-unnamed"
function = "wildcard without a concrete name"
from = "appliance"
to = "*.apc.avira.com"
protocols = ["tcp"]
ports = [80]

[[flows]]
id = "ldaps"
function = "LDAP over TLS"
from = "appliance"
to = "ldaps.seppmail.ch"
protocols = ["tcp"]
ports = [636]
app = "ldaps"

[[flows]]
id = "v6"
function = "a name with an IPv6 address only"
from = "appliance"
to = "v6.clearswift.net"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "v6-prohibited"
function = "IPv6: a firewall answers ICMPv6 administratively prohibited"
from = "appliance"
to = "v6.clearswift.net"
protocols = ["tcp"]
ports = [22]
app = "ssh"

[[flows]]
id = "udp-unreach"
function = "a firewall answers UDP with ICMP host unreachable"
from = "appliance"
to = "203.0.113.96"
protocols = ["udp"]
ports = [514]
app = "syslog"

[[flows]]
id = "silenttls"
function = "accepts the connection, never answers the ClientHello"
from = "appliance"
to = "silent1.clearswift.net"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "silentsmtp"
function = "accepts the connection, never sends a greeting"
from = "appliance"
to = "silent2.clearswift.net"
protocols = ["tcp"]
ports = [25]
app = "smtp"

[[flows]]
id = "pinnedwild"
function = "a wildcard pinned under [hosts], verified by its probe name"
from = "appliance"
to = "*.gina.seppmail.ch"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "rolehttps"
function = "HTTPS to a role bound to a host, verified by the name [probe_names] gives"
from = "appliance"
to = "webmail"
protocols = ["tcp"]
ports = [443]
app = "https"

[[flows]]
id = "optional-down"
function = "optional and down"
from = "appliance"
to = "www.clearswift.com"
protocols = ["tcp"]
ports = [8080]
feature = "extra"
"#;

const SITE: &str = r#"
profile = "profile.toml"
features = "all"
tls_ca = "ca.pem"
[appliance]
addresses = ["192.0.2.10", "2001:db8:a::10"]
[roles]
internal = ["198.51.100.0/25"]
smarthost = ["203.0.113.25"]
dns-server = ["203.0.113.53"]
syslog-server = ["198.51.100.14"]
snmp-manager = ["198.51.100.16"]
webmail = ["203.0.113.87"]
[hosts]
"*.gina.seppmail.ch" = ["203.0.113.86"]
[probe_names]
"*.avcloud.intra2net.com" = "x1.avcloud.intra2net.com"
"*.gina.seppmail.ch" = "secure.gina.seppmail.ch"
webmail = "webmail.seppmail.ch"
"#;

/// A CA and a leaf certificate for `name` signed by it.
struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(cn: &str) -> Pki {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.self_signed(&key).expect("self-signed");
    Pki {
        ca_pem: cert.pem(),
        issuer: Issuer::new(p, key),
    }
}

fn leaf(pki: &Pki, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    leaf_with(pki, name, |_| {})
}

/// A leaf that was valid in 2020 only.
fn expired_leaf(pki: &Pki, name: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    leaf_with(pki, name, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    })
}

fn leaf_with(
    pki: &Pki,
    name: &str,
    adjust: impl FnOnce(&mut CertificateParams),
) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec![name.to_string()]).expect("params");
    adjust(&mut p);
    let cert = p.signed_by(&key, &pki.issuer).expect("signed");
    (
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

fn serve_tls(l: TcpListener, chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) {
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server cert"),
    );
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                if let Ok(mut conn) = rustls::ServerConnection::new(config) {
                    while conn.is_handshaking() {
                        if conn.complete_io(&mut s).is_err() {
                            return;
                        }
                    }
                    let _ = conn.complete_io(&mut s);
                }
            });
        }
    });
}

/// TLS, then an LDAP answer to whatever request comes (an LDAPS directory).
fn serve_tls_ldap(
    l: TcpListener,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) {
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server cert"),
    );
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = rustls::StreamOwned::new(conn, s);
                let mut buf = [0u8; 256];
                if tls
                    .read(&mut buf)
                    .map(|n| n > 0 && buf[0] == 0x30)
                    .unwrap_or(false)
                {
                    let _ = tls.write_all(&[
                        0x30, 0x0c, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00,
                        0x04, 0x00,
                    ]);
                    let _ = tls.flush();
                }
            });
        }
    });
}

fn serve_lines(l: TcpListener, greeting: &'static str, replies: fn(&str) -> Option<String>) {
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                let _ = w.write_all(greeting.as_bytes());
                let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
                let mut r = BufReader::new(s);
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if let Some(reply) = replies(line.trim_end()) {
                        let _ = w.write_all(reply.as_bytes());
                    }
                    line.clear();
                }
            });
        }
    });
}

/// Accepts connections and holds them open without a byte (a hung service, or a proxy that
/// holds the connection).
fn serve_silent(l: TcpListener) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s);
        }
    });
}

/// Answers any LDAP request with an empty SearchResultDone (success), as a directory does for
/// a RootDSE read it permits.
fn serve_ldap(l: TcpListener) {
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 256];
            if s.read(&mut buf)
                .map(|n| n > 0 && buf[0] == 0x30)
                .unwrap_or(false)
            {
                let _ = s.write_all(&[
                    0x30, 0x0c, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04,
                    0x00,
                ]);
            }
        }
    });
}

/// Answers an SNMPv3 message that asks for a report with a (minimal) BER report message.
fn serve_snmp(udp: UdpSocket) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = udp.recv_from(&mut buf) {
            // msgVersion 3 right after the outer SEQUENCE header.
            if n > 6 && buf[0] == 0x30 && buf[2..5] == [0x02, 0x01, 0x03] {
                let _ = udp.send_to(&[0x30, 0x03, 0x02, 0x01, 0x03], peer);
            }
        }
    });
}

fn serve_ntp(udp: UdpSocket) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 100];
        while let Ok((_, peer)) = udp.recv_from(&mut buf) {
            let mut r = [0u8; 48];
            r[0] = 0x24;
            r[1] = 2;
            r[40] = 0xea;
            let _ = udp.send_to(&r, peer);
        }
    });
}

fn tcp_in(topo: &Topology, z: Zone, addr: &str, port: u16) -> TcpListener {
    let sa = SocketAddr::new(ip4(addr), port);
    in_ns(&topo.ns(z), move || {
        TcpListener::bind(sa).unwrap_or_else(|e| panic!("bind {sa}: {e}"))
    })
}

fn udp_in(topo: &Topology, z: Zone, addr: &str, port: u16) -> UdpSocket {
    let sa = SocketAddr::new(ip4(addr), port);
    in_ns(&topo.ns(z), move || {
        UdpSocket::bind(sa).unwrap_or_else(|e| panic!("bind {sa}: {e}"))
    })
}

fn portolan_in(topo: &Topology, z: Zone, args: &[&str]) -> std::process::Output {
    let mut full = vec!["ip", "netns", "exec"];
    let ns = topo.ns(z);
    full.push(&ns);
    full.push(env!("CARGO_BIN_EXE_portolan"));
    full.extend_from_slice(args);
    Command::new(full[0])
        .args(&full[1..])
        .output()
        .expect("run portolan")
}

fn load_nft(topo: &Topology, rules: &str) -> std::process::Output {
    let f = std::env::temp_dir().join(format!("portolan-fw-{}.nft", topo.id));
    std::fs::write(&f, rules).expect("rules");
    let out = topo.exec(Zone::Fw, &["nft", "-f", &f.to_string_lossy()]);
    let _ = std::fs::remove_file(&f);
    out
}

fn write_files(dir: &std::path::Path, site: &str, profile: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("site.toml"), site).expect("site");
    std::fs::write(dir.join("profile.toml"), profile).expect("profile");
}

#[test]
fn probe_gives_the_exact_verdict_for_each_case() {
    if !require_root_tools() {
        return;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(ip4("192.0.2.10"), Zone::App);
    topo.add_addr(ip4("2001:db8:a::10"), Zone::App);
    topo.add_addr(ip4("2001:db8:d::10"), Zone::Wan);
    for (_, a) in RECORDS {
        topo.add_addr(ip4(a), Zone::Wan);
    }
    for a in [
        "203.0.113.25",
        DNS,
        "203.0.113.99",
        "203.0.113.86",
        "203.0.113.87",
    ] {
        topo.add_addr(ip4(a), Zone::Wan);
    }
    topo.add_addr(ip4("198.51.100.14"), Zone::Lan);
    topo.add_addr(ip4("198.51.100.16"), Zone::Lan);

    // The firewall: forwards, but drops, resets or prohibits a few things.
    let rules = "table inet t { chain forward { type filter hook forward priority 0; policy accept;
        ip daddr 203.0.113.50 tcp dport 5050 drop
        ip daddr 203.0.113.51 tcp dport 22 reject with tcp reset
        ip daddr 203.0.113.52 tcp dport 22 reject with icmp type admin-prohibited
        ip daddr 203.0.113.99 icmp type echo-request drop
        ip daddr 203.0.113.96 udp dport 514 reject with icmp type host-unreachable
        ip6 daddr 2001:db8:d::10 tcp dport 22 reject with icmpv6 type admin-prohibited
    }
    }";
    let out = load_nft(&topo, rules);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // PKI: a trusted test root and an inspection CA nobody trusts.
    let root = ca("portolan test root");
    let proxy = ca("Inspection Proxy CA");
    let (c, k) = leaf(&root, "update.intra2net.com");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.10", 443), c, k);
    let (c, k) = leaf(&proxy, "avupdate.intra2net.com");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.11", 443), c, k);
    let (c, k) = leaf(&root, "other.intra2net.com");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.12", 443), c, k);
    let (c, k) = leaf(&root, "v6.clearswift.net");
    serve_tls(tcp_in(&topo, Zone::Wan, "2001:db8:d::10", 443), c, k);
    let (c, k) = leaf(&root, "ldaps.seppmail.ch");
    serve_tls_ldap(tcp_in(&topo, Zone::Wan, "203.0.113.39", 636), c, k);
    let (c, k) = expired_leaf(&root, "services3.clearswift.net");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.83", 443), c, k);
    let (c, k) = leaf(&proxy, "ksn1.kaspersky-labs.com");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.13", 443), c, k);
    let (c, k) = leaf(&root, "secure.gina.seppmail.ch");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.86", 443), c, k);
    let (c, k) = leaf(&root, "webmail.seppmail.ch");
    serve_tls(tcp_in(&topo, Zone::Wan, "203.0.113.87", 443), c, k);
    // Connected, then silence: TLS and SMTP.
    serve_silent(tcp_in(&topo, Zone::Wan, "203.0.113.84", 443));
    serve_silent(tcp_in(&topo, Zone::Wan, "203.0.113.85", 25));
    // Plain services.
    let support = tcp_in(&topo, Zone::Wan, "203.0.113.50", 5000);
    let _support_far = tcp_in(&topo, Zone::Wan, "203.0.113.50", 5050);
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.22", 22),
        "SSH-2.0-OpenSSH_9.2 test\r\n",
        |_| None,
    );
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.25", 25),
        "220 mx.test ESMTP\r\n",
        |l| {
            if l.starts_with("EHLO") {
                Some("250-mx.test\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n".into())
            } else if l.starts_with("QUIT") {
                Some("221 bye\r\n".into())
            } else {
                None
            }
        },
    );
    serve_lines(tcp_in(&topo, Zone::Wan, "203.0.113.80", 80), "", |l| {
        l.starts_with("HEAD")
            .then(|| "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into())
    });
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.81", 25),
        "HTTP/1.0 400 Bad Request\r\n\r\n",
        |_| None,
    );
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.82", 25),
        "SSH-2.0-OpenSSH_9.2 test\r\n",
        |_| None,
    );
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.27", 2703),
        "sn=C&srl=42&ep4=7542-10&a=l\r\n",
        |_| None,
    );
    serve_ntp(udp_in(&topo, Zone::Wan, "203.0.113.123", 123));
    let zone = dns::zone(30, &[RECORDS, RECORDS6].concat());
    if let Ok(mut z) = zone.lock() {
        z.silent.insert("slow.intra2net.com".into());
        for i in 1..=6 {
            z.silent.insert(format!("quiet{i}.intra2net.com"));
        }
    }
    dns::serve(
        zone,
        udp_in(&topo, Zone::Wan, DNS, 53),
        tcp_in(&topo, Zone::Wan, DNS, 53),
    );
    let _silent_syslog = udp_in(&topo, Zone::Lan, "198.51.100.14", 514);
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.21", 21),
        "220 ProFTPD test\r\n",
        |_| None,
    );
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.110", 110),
        "+OK Dovecot ready.\r\n",
        |_| None,
    );
    serve_lines(
        tcp_in(&topo, Zone::Wan, "203.0.113.110", 143),
        "* OK [CAPABILITY IMAP4rev1] ready\r\n",
        |_| None,
    );
    serve_ldap(tcp_in(&topo, Zone::Wan, "203.0.113.38", 389));
    serve_snmp(udp_in(&topo, Zone::Lan, "198.51.100.16", 161));

    let dir = std::env::temp_dir().join(format!("portolan-probe-{}", topo.id));
    write_files(&dir, SITE, PROFILE);
    std::fs::write(dir.join("ca.pem"), &root.ca_pem).expect("ca");
    let site = dir.join("site.toml").to_string_lossy().to_string();
    let ca_file = dir.join("ca.pem").to_string_lossy().to_string();
    let started = std::time::Instant::now();
    let out = portolan_in(
        &topo,
        Zone::App,
        &[
            "probe",
            "--site",
            &site,
            "--resolver",
            DNS,
            "--ca",
            &ca_file,
            "--timeout",
            "1s",
            "--format",
            "json",
        ],
    );
    let wall = started.elapsed();
    drop(support);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "required flows fail, so exit 1");

    let mut got: BTreeMap<(String, String, u64), (String, String, bool)> = BTreeMap::new();
    for r in doc["results"].as_array().expect("results") {
        got.insert(
            (
                r["flow"].as_str().unwrap_or("").to_string(),
                r["protocol"].as_str().unwrap_or("").to_string(),
                r["port"].as_u64().unwrap_or(0),
            ),
            (
                r["verdict"].as_str().unwrap_or("").to_string(),
                r["detail"].as_str().unwrap_or("").to_string(),
                r["ok"].as_bool().unwrap_or(false),
            ),
        );
    }
    let expect: &[(&str, &str, u64, &str, &str, bool)] = &[
        ("update", "tcp", 443, "open", "TLS ok", true),
        (
            "avupdate",
            "tcp",
            443,
            "tls-intercepted",
            "Inspection Proxy CA",
            true,
        ),
        (
            "avfpc",
            "tcp",
            443,
            "tls-name-mismatch",
            "not for avfpc.intra2net.com",
            false,
        ),
        (
            "ksn",
            "tcp",
            443,
            "tls-intercepted",
            "Inspection Proxy CA",
            false,
        ),
        ("support", "tcp", 5000, "open", "TCP handshake", true),
        ("support", "tcp", 5050, "filtered", "no answer", false),
        ("rejected", "tcp", 22, "refused", "refused", false),
        // The ICMP type, code and sender, from the socket's error queue.
        (
            "prohibited",
            "tcp",
            22,
            "unreachable",
            "(type 3, code 13: communication administratively prohibited) from 192.0.2.1",
            false,
        ),
        ("ssh", "tcp", 22, "open", "SSH-2.0-OpenSSH", true),
        ("smtp", "tcp", 25, "open", "STARTTLS offered", true),
        ("http", "tcp", 80, "open", "HTTP/1.1 200", true),
        ("razor", "tcp", 2703, "open", "sn=C", true),
        ("ntp", "udp", 123, "open", "stratum 2", true),
        ("dns", "udp", 53, "open", "DNS server answered", true),
        ("dns", "tcp", 53, "open", "over TCP", true),
        (
            "mismatch",
            "tcp",
            25,
            "protocol-mismatch",
            "not an SMTP greeting",
            false,
        ),
        // Regression: an expired certificate was `error` with "verification time N (UNIX)".
        (
            "expired",
            "tcp",
            443,
            "tls-expired",
            "expired on 2021-01-01 00:00 UTC",
            false,
        ),
        // Regression: the dash of `SSH-2.0` was read as an SMTP continuation and the probe
        // waited for the timeout ("no greeting").
        (
            "sshonsmtp",
            "tcp",
            25,
            "protocol-mismatch",
            "not an SMTP greeting: SSH-2.0-OpenSSH_9.2",
            false,
        ),
        ("nxdomain", "tcp", 443, "dns-failure", "NXDOMAIN", false),
        (
            "dnstimeout",
            "tcp",
            443,
            "dns-failure",
            "did not answer",
            false,
        ),
        (
            "syslog",
            "udp",
            514,
            "open-or-filtered",
            "syslog never answers",
            true,
        ),
        ("ping", "icmp", 0, "open", "echo reply", true),
        (
            "ping-blocked",
            "icmp",
            0,
            "filtered",
            "no echo reply",
            false,
        ),
        ("ftp", "tcp", 21, "open", "FTP greeting: 220", true),
        ("pop3", "tcp", 110, "open", "+OK Dovecot", true),
        ("imap", "tcp", 143, "open", "* OK", true),
        ("ldap", "tcp", 389, "open", "RootDSE", true),
        ("snmp", "udp", 161, "open", "v3 report", true),
        ("avcloud", "tcp", 443, "open", "TCP handshake", true),
        (
            "wild-unnamed",
            "tcp",
            80,
            "not-probeable",
            "[probe_names]",
            true,
        ),
        ("ldaps", "tcp", 636, "open", "RootDSE", true),
        (
            "v6",
            "tcp",
            443,
            "open",
            "TLS ok for v6.clearswift.net",
            true,
        ),
        ("optional-down", "tcp", 8080, "refused", "refused", false),
        // Regression: an ICMPv6 administratively prohibited (EACCES) was `not-permitted`,
        // blaming this host's own firewall.
        (
            "v6-prohibited",
            "tcp",
            22,
            "unreachable",
            "ICMPv6 destination unreachable (type 1, code 1: communication administratively prohibited) from 2001:db8:a::1",
            false,
        ),
        // Regression: a UDP host unreachable was `open-or-filtered` (Linux keeps that "soft"
        // error quiet without IP_RECVERR).
        (
            "udp-unreach",
            "udp",
            514,
            "unreachable",
            "(type 3, code 1: host unreachable) from 192.0.2.1",
            false,
        ),
        // Regression: silence after the TCP handshake was `filtered` on TLS and
        // `protocol-mismatch` on SMTP; it is one verdict, apart from no connection.
        (
            "silenttls",
            "tcp",
            443,
            "no-answer",
            "no answer to the TLS ClientHello",
            false,
        ),
        ("silentsmtp", "tcp", 25, "no-answer", "no greeting", false),
        // Regression: a pinned wildcard was verified against its address
        // (tls-name-mismatch for a valid server).
        (
            "pinnedwild",
            "tcp",
            443,
            "open",
            "TLS ok for secure.gina.seppmail.ch",
            true,
        ),
        (
            "rolehttps",
            "tcp",
            443,
            "open",
            "TLS ok for webmail.seppmail.ch",
            true,
        ),
    ];
    let mut wrong = Vec::new();
    for (flow, proto, port, verdict, detail, ok) in expect {
        match got.get(&(flow.to_string(), proto.to_string(), *port)) {
            Some((v, d, o)) if v == verdict && d.contains(detail) && o == ok => {}
            Some(other) => wrong.push(format!(
                "{flow}/{proto}/{port}: got {other:?}, want ({verdict}, ..{detail}.., ok={ok})"
            )),
            None => wrong.push(format!("{flow}/{proto}/{port}: no result")),
        }
    }
    assert!(
        wrong.is_empty(),
        "verdicts differ:\n{}\n\nall results:\n{stdout}",
        wrong.join("\n")
    );
    assert_eq!(
        got.len(),
        expect.len(),
        "unexpected extra results:\n{stdout}"
    );
    // Concurrency: the run takes about one timeout (the dropped probes), not their sum.
    assert!(
        wall < Duration::from_secs(6),
        "probing took {wall:?}; probes must run concurrently"
    );

    // --retry-failed probes failures once more and says so.
    let retry = portolan_in(
        &topo,
        Zone::App,
        &[
            "probe",
            "--site",
            &site,
            "--resolver",
            DNS,
            "--timeout",
            "1s",
            "--format",
            "json",
            "--flows",
            "rejected,ssh",
            "--retry-failed",
        ],
    );
    let retried = String::from_utf8_lossy(&retry.stdout);
    assert_eq!(
        retried.matches("(retried)").count(),
        1,
        "only the failing probe is retried: {retried}"
    );

    // Regression: --retry-failed retried one failure after another (each a full timeout).
    // Three probes that time out (and port 5000, whose listener is gone by now), retried
    // together: about two timeouts in all, not four.
    let started = std::time::Instant::now();
    let retry = portolan_in(
        &topo,
        Zone::App,
        &[
            "probe",
            "--site",
            &site,
            "--resolver",
            DNS,
            "--timeout",
            "1s",
            "--format",
            "json",
            "--flows",
            "support,silenttls,silentsmtp",
            "--retry-failed",
        ],
    );
    let took = started.elapsed();
    let retried = String::from_utf8_lossy(&retry.stdout);
    assert_eq!(retried.matches("(retried)").count(), 4, "{retried}");
    assert!(
        took < Duration::from_millis(3500),
        "retrying three timeouts took {took:?}; retries must run concurrently"
    );

    // Regression: names were resolved one after another before any probe (a silent resolver
    // cost one deadline per name). Six silent names cost about one deadline.
    let silent_profile = (1..=6)
        .map(|i| {
            format!(
                "[[flows]]\nid = \"quiet{i}\"\nfunction = \"a name the resolver never answers\"\nfrom = \"appliance\"\nto = \"quiet{i}.intra2net.com\"\nprotocols = [\"tcp\"]\nports = [443]\n\n"
            )
        })
        .collect::<String>();
    let quiet_dir = dir.join("quiet");
    write_files(
        &quiet_dir,
        "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n",
        &format!("id = \"quiet\"\nname = \"Quiet names\"\nvendor = \"portolan tests\"\n\n{silent_profile}"),
    );
    let quiet_site = quiet_dir.join("site.toml").to_string_lossy().to_string();
    let started = std::time::Instant::now();
    let quiet = portolan_in(
        &topo,
        Zone::App,
        &[
            "probe",
            "--site",
            &quiet_site,
            "--resolver",
            DNS,
            "--timeout",
            "1s",
            "--format",
            "json",
        ],
    );
    let took = started.elapsed();
    let quiet_out = String::from_utf8_lossy(&quiet.stdout);
    assert_eq!(
        quiet_out.matches("\"verdict\": \"dns-failure\"").count(),
        6,
        "{quiet_out}{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    assert!(
        took < Duration::from_secs(6),
        "six silent names took {took:?}; names must be resolved concurrently"
    );

    // JUnit: one test case per flow, failures marked.
    let junit = portolan_in(
        &topo,
        Zone::App,
        &[
            "probe",
            "--site",
            &site,
            "--resolver",
            DNS,
            "--ca",
            &ca_file,
            "--timeout",
            "1s",
            "--format",
            "junit",
            "--flows",
            "update,ksn",
        ],
    );
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(xml.contains("type=\"tls-intercepted\""), "{xml}");
    let _ = std::fs::remove_dir_all(&dir);
}

const INBOUND_PROFILE: &str = r#"
id = "inbound-test"
name = "Inbound test appliance"
vendor = "portolan tests"

[[flows]]
id = "smtp-in"
function = "mail from the internet"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [25]
app = "smtp"

[[flows]]
id = "web"
function = "HTTPS from the internet"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [8443]
app = "https"

[[flows]]
id = "vpn"
function = "IKE"
from = "internet"
to = "appliance"
protocols = ["udp"]
ports = [500]
app = "ike"

[[flows]]
id = "blocked"
function = "dropped by the firewall"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [8444]

[[flows]]
id = "taken"
function = "a port a real service already holds"
from = "internet"
to = "appliance"
protocols = ["tcp"]
ports = [9999]
"#;

#[test]
fn listen_and_inbound_probe_across_the_firewall() {
    if !require_root_tools() {
        return;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(ip4("192.0.2.10"), Zone::App);
    topo.add_addr(ip4("203.0.113.77"), Zone::Wan);
    let rules = "table inet t { chain forward { type filter hook forward priority 0; policy accept;
        ip daddr 192.0.2.10 tcp dport 8444 drop
    }
    }";
    let out = load_nft(&topo, rules);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A "real service" holding port 9999 on the appliance.
    let _taken4 = tcp_in(&topo, Zone::App, "0.0.0.0", 9999);

    let dir = std::env::temp_dir().join(format!("portolan-inbound-{}", topo.id));
    write_files(
        &dir,
        "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n",
        INBOUND_PROFILE,
    );
    let site = dir.join("site.toml").to_string_lossy().to_string();

    let ns = topo.ns(Zone::App);
    let mut listener = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            env!("CARGO_BIN_EXE_portolan"),
            "listen",
            "--site",
            &site,
            "--duration",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start listen");
    // Wait until it says it listens.
    let stdout = listener.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut log = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("line");
        let done = line.contains("\"listening\"");
        log.push(line);
        if done {
            break;
        }
    }
    let probe = portolan_in(
        &topo,
        Zone::Wan,
        &[
            "probe",
            "--inbound",
            "--target",
            "192.0.2.10",
            "--site",
            &site,
            "--timeout",
            "1s",
            "--format",
            "json",
        ],
    );
    let _ = Command::new("kill").arg(listener.id().to_string()).status();
    let status = listener.wait().expect("wait");
    log.extend(lines.map_while(Result::ok));
    let _ = std::fs::remove_dir_all(&dir);

    let text = String::from_utf8_lossy(&probe.stdout).to_string();
    let doc: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let verdict = |flow: &str| -> String {
        doc["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["flow"] == flow))
            .and_then(|r| r["verdict"].as_str())
            .unwrap_or("none")
            .to_string()
    };
    assert_eq!(verdict("smtp-in"), "open", "{text}");
    // Regression: listen closed after its greeting, so the probe said "no EHLO answer".
    let detail = |flow: &str| -> String {
        doc["results"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["flow"] == flow))
            .and_then(|r| r["detail"].as_str())
            .unwrap_or("")
            .to_string()
    };
    assert!(
        !detail("smtp-in").contains("no EHLO answer") && detail("smtp-in").contains("SMTP"),
        "{text}"
    );
    assert_eq!(verdict("web"), "open", "{text}");
    assert_eq!(verdict("vpn"), "open", "{text}");
    assert_eq!(verdict("blocked"), "filtered", "{text}");
    assert_eq!(
        verdict("taken"),
        "open",
        "the real service on 9999 answers: {text}"
    );
    assert_eq!(
        probe.status.code(),
        Some(1),
        "a required inbound flow is blocked"
    );

    let log = log.join("\n");
    assert!(
        log.contains("\"bind-failed\"") && log.contains("port 9999 is taken"),
        "{log}"
    );
    // Arrivals carry the peer address as the appliance sees it (no NAT here: the internet host).
    for port in [25, 8443, 500] {
        assert!(
            log.lines().any(|l| l.contains("\"arrival\"")
                && l.contains(&format!("\"port\":{port}"))
                && l.contains("203.0.113.77")),
            "no arrival on {port} from 203.0.113.77:\n{log}"
        );
    }
    assert!(
        !log.lines()
            .any(|l| l.contains("\"arrival\"") && l.contains("\"port\":8444")),
        "{log}"
    );
    assert!(
        status.success() || status.code().is_none(),
        "listen exits cleanly on SIGTERM: {status:?}"
    );
}

#[test]
fn listen_without_privilege_reports_low_ports_and_binds_the_rest() {
    if !require_root_tools() {
        return;
    }
    let topo = Topology::build(&[]);
    let dir = std::env::temp_dir().join(format!("portolan-unpriv-{}", topo.id));
    let profile = "id = \"unpriv\"\nname = \"u\"\nvendor = \"t\"\n\
        [[flows]]\nid = \"smtp-in\"\nfunction = \"low port\"\nfrom = \"internet\"\nto = \"appliance\"\nprotocols = [\"tcp\"]\nports = [25]\n\
        [[flows]]\nid = \"high\"\nfunction = \"high port\"\nfrom = \"internet\"\nto = \"appliance\"\nprotocols = [\"tcp\"]\nports = [8025]\n";
    write_files(
        &dir,
        "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n",
        profile,
    );
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&dir)
        .status();
    let site = dir.join("site.toml").to_string_lossy().to_string();
    let ns = topo.ns(Zone::App);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([
            env!("CARGO_BIN_EXE_portolan"),
            "listen",
            "--site",
            &site,
            "--duration",
            "300ms",
        ])
        .output()
        .expect("run listen as nobody");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("port 25 is below 1024 and this process lacks the privilege"),
        "{stderr}"
    );
    assert!(
        stdout.contains("\"sockets\":2") && stdout.contains("\"failed\":2"),
        "{stdout}"
    );
}

#[test]
fn icmp_without_privilege_is_not_permitted() {
    if !require_root_tools() {
        return;
    }
    let mut topo = Topology::build(&[]);
    topo.add_addr(ip4("192.0.2.10"), Zone::App);
    topo.add_addr(ip4("203.0.113.25"), Zone::Wan);
    // No ping sockets for anyone in this namespace, and the prober runs as nobody.
    let o = topo.exec(
        Zone::App,
        &["sysctl", "-qw", "net.ipv4.ping_group_range=1 0"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dir = std::env::temp_dir().join(format!("portolan-noping-{}", topo.id));
    let profile = "id = \"noping\"\nname = \"n\"\nvendor = \"t\"\n\
        [[flows]]\nid = \"ping\"\nfunction = \"echo\"\nfrom = \"appliance\"\nto = \"smarthost\"\nprotocols = [\"icmp\"]\nicmp_type = \"echo-request\"\n";
    write_files(
        &dir,
        "profile = \"profile.toml\"\n[appliance]\naddresses = [\"192.0.2.10\"]\n[roles]\nsmarthost = [\"203.0.113.25\"]\n",
        profile,
    );
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&dir)
        .status();
    let site = dir.join("site.toml").to_string_lossy().to_string();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &topo.ns(Zone::App),
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .args([
            env!("CARGO_BIN_EXE_portolan"),
            "probe",
            "--site",
            &site,
            "--timeout",
            "1s",
            "--format",
            "json",
        ])
        .output()
        .expect("probe as nobody");
    let _ = std::fs::remove_dir_all(&dir);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let r = &doc["results"][0];
    assert_eq!(r["verdict"], "not-permitted", "{doc}");
    assert!(
        r["detail"]
            .as_str()
            .unwrap_or("")
            .contains("ping_group_range"),
        "{doc}"
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a required flow that cannot be checked fails"
    );
}
