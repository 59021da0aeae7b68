//! FTP data connections through a real kernel: a gateway with portolan's rules between an
//! appliance (FTP client) and an FTP server, in network namespaces. The control flow is
//! flagged `needs_ftp_helper`; active (PORT: the server connects back from port 20) and
//! passive (PASV: the client connects to the port the server announces) data connections
//! must pass as RELATED, for nftables and iptables alike. The same rules without the flag are
//! the control: there, both data connections are dropped, so the helper is what lets them
//! through. A tiny FTP server and client speak just the commands the helper reads.

mod netns;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use netns::*;

const APPLIANCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);
const SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 21);
const WAIT: Duration = Duration::from_secs(2);

fn profile(helper: bool) -> String {
    format!(
        r#"id = "ftp-test"
name = "FTP through a gateway"
vendor = "portolan tests"

[[flows]]
id = "ftp"
function = "FTP control connection; its data connections pass as RELATED"
from = "appliance"
to = "ftp-server"
protocols = ["tcp"]
ports = [21]
app = "ftp"
{}
"#,
        if helper {
            "flags = [\"needs_ftp_helper\"]"
        } else {
            ""
        }
    )
}

fn site(topo: &Topology) -> String {
    format!(
        "profile = \"profile.toml\"\n[appliance]\naddresses = [\"{APPLIANCE}\"]\n[roles]\nftp-server = [\"{SERVER}\"]\n[placement]\nmode = \"gateway\"\nappliance_interface = \"{}\"\ndefault_interface = \"{}\"\n[placement.zones]\nftp-server = \"{}\"\n",
        topo.fw_if(Zone::App),
        topo.fw_if(Zone::Lan),
        topo.fw_if(Zone::Wan),
    )
}

/// The FTP server: for each control connection, answers PORT by connecting back from port
/// 20, and PASV by announcing a port and waiting for the client there. Replies 200/226 when
/// the data connection was made, 425 when not.
fn serve_ftp(topo: &Topology) {
    let wan = topo.ns(Zone::Wan);
    let control = in_ns(&wan, move || {
        TcpListener::bind(SocketAddr::new(IpAddr::V4(SERVER), 21)).expect("bind 21")
    });
    std::thread::spawn(move || {
        for (n, s) in control.incoming().flatten().enumerate() {
            let wan = wan.clone();
            std::thread::spawn(move || {
                let mut w = s.try_clone().expect("clone");
                let _ = w.write_all(b"220 test FTP\r\n");
                let mut r = BufReader::new(s);
                let mut line = String::new();
                while r.read_line(&mut line).map(|k| k > 0).unwrap_or(false) {
                    let cmd = line.trim().to_string();
                    line.clear();
                    if let Some(arg) = cmd.strip_prefix("PORT ") {
                        let to = parse_host_port(arg).expect("PORT argument");
                        let sock = in_ns(&wan, move || {
                            let s = socket2::Socket::new(
                                socket2::Domain::IPV4,
                                socket2::Type::STREAM,
                                None,
                            )
                            .expect("socket");
                            s.set_reuse_address(true).expect("reuse");
                            s.bind(&SocketAddr::new(IpAddr::V4(SERVER), 20).into())
                                .expect("bind 20");
                            s
                        });
                        let ok = sock.connect_timeout(&to.into(), WAIT).is_ok();
                        let _ = w.write_all(if ok {
                            b"200 data\r\n"
                        } else {
                            b"425 no data\r\n"
                        });
                    } else if cmd == "PASV" {
                        let port = 40000 + n as u16;
                        let data = in_ns(&wan, move || {
                            TcpListener::bind(SocketAddr::new(IpAddr::V4(SERVER), port))
                                .expect("bind data")
                        });
                        let o = SERVER.octets();
                        // One write for the whole line: the helper reads a reply from the
                        // start of a segment (a 227 split after `(` is dropped as partial).
                        let reply = format!(
                            "227 Entering Passive Mode ({},{},{},{},{},{})\r\n",
                            o[0],
                            o[1],
                            o[2],
                            o[3],
                            port >> 8,
                            port & 0xff
                        );
                        let _ = w.write_all(reply.as_bytes());
                        let got = accept_within(&data, WAIT);
                        let _ = w.write_all(if got {
                            b"226 data\r\n"
                        } else {
                            b"425 no data\r\n"
                        });
                    } else if cmd.starts_with("USER") {
                        let _ = w.write_all(b"331 any password\r\n");
                    } else if cmd == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n");
                        break;
                    }
                }
            });
        }
    });
}

fn parse_host_port(arg: &str) -> Option<SocketAddr> {
    let n: Vec<u16> = arg
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect::<Option<Vec<u16>>>()?;
    if n.len() != 6 || n.iter().any(|x| *x > 255) {
        return None;
    }
    let ip = Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
    Some(SocketAddr::new(IpAddr::V4(ip), n[4] * 256 + n[5]))
}

fn accept_within(l: &TcpListener, d: Duration) -> bool {
    l.set_nonblocking(true).expect("nonblocking");
    let end = Instant::now() + d;
    while Instant::now() < end {
        if l.accept().is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The appliance's side: (active data connection made, passive data connection made).
fn client(topo: &Topology) -> (bool, bool) {
    let app = topo.ns(Zone::App);
    let stream = in_ns(&app, move || {
        TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(SERVER), 21), WAIT)
            .expect("the control connection passes the gateway")
    });
    stream.set_read_timeout(Some(WAIT * 3)).expect("timeout");
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).expect("greeting");
    assert!(line.starts_with("220"), "{line}");
    // A real client logs in first; the helper reads a command only after a line of the same
    // direction, so PORT as the very first line would go unread.
    w.write_all(b"USER anonymous\r\n").expect("USER");
    line.clear();
    r.read_line(&mut line).expect("USER reply");
    assert!(line.starts_with("331"), "{line}");

    // Active: listen, announce with PORT; the server connects back from port 20.
    let listener = in_ns(&app, || {
        TcpListener::bind(SocketAddr::new(IpAddr::V4(APPLIANCE), 45000)).expect("bind")
    });
    w.write_all(b"PORT 192,0,2,25,175,200\r\n").expect("PORT");
    let active_accepted = accept_within(&listener, WAIT);
    line.clear();
    r.read_line(&mut line).expect("PORT reply");
    let active = active_accepted && line.starts_with("200");

    // Passive: PASV, then connect to the port the server announced.
    w.write_all(b"PASV\r\n").expect("PASV");
    line.clear();
    r.read_line(&mut line).expect("PASV reply");
    let at = line
        .find('(')
        .and_then(|i| parse_host_port(&line[i..]))
        .expect("227 with an address");
    let connected = in_ns(&app, move || TcpStream::connect_timeout(&at, WAIT).is_ok());
    line.clear();
    r.read_line(&mut line).expect("data reply");
    let passive = connected && line.starts_with("226");
    let _ = w.write_all(b"QUIT\r\n");
    (active, passive)
}

fn run(target: &str, helper: bool) -> (bool, bool) {
    let mut topo = Topology::build(&[]);
    topo.add_addr(IpAddr::V4(APPLIANCE), Zone::App);
    topo.add_addr(IpAddr::V4(SERVER), Zone::Wan);
    let dir = std::env::temp_dir().join(format!("portolan-ftp-{}-{target}-{helper}", topo.id));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("profile.toml"), profile(helper)).expect("profile");
    std::fs::write(dir.join("site.toml"), site(&topo)).expect("site");
    let rules = dir.join("rules");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portolan"))
        .args(["render", "--site"])
        .arg(dir.join("site.toml"))
        .args(["--target", target, "-o"])
        .arg(&rules)
        .output()
        .expect("render");
    assert!(
        out.status.success(),
        "render: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&rules).expect("rules");
    assert_eq!(
        text.contains("helper"),
        helper,
        "the helper is in the rules exactly when the flow needs it:\n{text}"
    );
    let r = rules.to_string_lossy().to_string();
    let load = if target == "nftables" {
        topo.exec(Zone::Fw, &["nft", "-f", &r])
    } else {
        topo.exec(Zone::Fw, &["sh", &r])
    };
    assert!(
        load.status.success(),
        "load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    serve_ftp(&topo);
    let got = client(&topo);
    let _ = std::fs::remove_dir_all(&dir);
    got
}

#[test]
fn ftp_data_connections_pass_as_related_with_the_helper() {
    if !require_root_tools() {
        return;
    }
    for target in ["nftables", "iptables"] {
        assert_eq!(
            run(target, true),
            (true, true),
            "{target}: active and passive data connections with the helper"
        );
        assert_eq!(
            run(target, false),
            (false, false),
            "{target}: without the helper the gateway drops both (the control case)"
        );
    }
}
