//! Application protocols: after the transport says "open", check that the expected protocol
//! answers. Each check reads a greeting or sends one identifying request; nothing more.

use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::transport::{self, UdpOutcome};
use super::{tls, App, Options, Target, Verdict};

/// Longest greeting line read.
const MAX_LINE: usize = 512;

/// Probe `t` at `sa` according to its application protocol.
pub async fn probe(t: &Target, sa: SocketAddr, opts: &Options) -> (Verdict, String) {
    let timeout = opts.timeout;
    match t.app {
        App::Udp | App::Syslog | App::Snmp | App::Ntp | App::Dns
            if t.protocol == portolan_core::model::Protocol::Udp =>
        {
            udp(t, sa, timeout).await
        }
        _ => {
            let tcp = match transport::connect_adaptive(sa, timeout, Some(&opts.rtt)).await {
                Ok(s) => s,
                Err((v, d)) => return (v, d),
            };
            match t.app {
                App::Tcp | App::Udp | App::Syslog | App::Snmp | App::Ntp | App::Icmp => {
                    (Verdict::Open, "TCP handshake completed".into())
                }
                App::Tls | App::Ldaps => {
                    let name = server_name(t, sa);
                    let (v, d, stream) = tls::handshake(tcp, name, &opts.ca, timeout).await;
                    // KSN and similar: not TLS on 443 is the expected case, interception is not.
                    if v == Verdict::ProtocolMismatch && t.no_tls_interception {
                        return (Verdict::Open, "TCP open; the service does not speak standard TLS, so no TLS inspection sits in the path".into());
                    }
                    match (t.app, stream) {
                        (App::Ldaps, Some(mut s)) if v == Verdict::Open => {
                            let (lv, ld) = ldap_rootdse(&mut s, timeout).await;
                            (lv, format!("{d}; {ld}"))
                        }
                        _ => (v, d),
                    }
                }
                App::Http => http(tcp, t, sa, timeout).await,
                App::Smtp => smtp(tcp, timeout).await,
                App::Ssh => {
                    greeting(tcp, timeout, "SSH", |l| {
                        l.starts_with("SSH-2.0-") || l.starts_with("SSH-1.99-")
                    })
                    .await
                }
                App::Ftp => greeting(tcp, timeout, "FTP", |l| l.starts_with("220")).await,
                App::Pop3 => greeting(tcp, timeout, "POP3", |l| l.starts_with("+OK")).await,
                App::Imap => {
                    greeting(tcp, timeout, "IMAP", |l| {
                        l.starts_with("* OK") || l.starts_with("* PREAUTH")
                    })
                    .await
                }
                App::Razor => {
                    greeting(tcp, timeout, "Razor", |l| {
                        l.contains("sn=") || l.contains("srl=")
                    })
                    .await
                }
                App::Ldap => {
                    let mut tcp = tcp;
                    ldap_rootdse(&mut tcp, timeout).await
                }
                App::Dns => dns_tcp(tcp, timeout).await,
            }
        }
    }
}

fn server_name(t: &Target, sa: SocketAddr) -> ServerName<'static> {
    t.host
        .as_ref()
        .filter(|h| !h.starts_with('*'))
        .and_then(|h| ServerName::try_from(h.clone()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(sa.ip().into()))
}

async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    timeout: Duration,
) -> Result<String, (Verdict, String)> {
    let mut line = String::new();
    let mut limited = AsyncReadExt::take(r, MAX_LINE as u64);
    match tokio::time::timeout(timeout, limited.read_line(&mut line)).await {
        Err(_) => Err((
            Verdict::NoAnswer,
            "TCP open, but no greeting within the timeout".into(),
        )),
        Ok(Err(e)) => Err((
            Verdict::ProtocolMismatch,
            format!("TCP open, but reading failed: {e}"),
        )),
        Ok(Ok(0)) => Err((
            Verdict::ProtocolMismatch,
            "TCP open, but the peer closed without a greeting".into(),
        )),
        Ok(Ok(_)) => Ok(line
            .trim_end()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()),
    }
}

async fn greeting<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    timeout: Duration,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> (Verdict, String) {
    let mut r = BufReader::new(s);
    match read_line(&mut r, timeout).await {
        Ok(l) if ok(&l) => (Verdict::Open, format!("{what} greeting: {}", clip(&l))),
        Ok(l) => (
            Verdict::ProtocolMismatch,
            format!("TCP open, but not a {what} greeting: {}", clip(&l)),
        ),
        Err(e) => e,
    }
}

/// `NNN-` (three digits and a dash): a multi-line SMTP reply continues.
fn is_continuation(l: &str) -> bool {
    let b = l.as_bytes();
    b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b'-'
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

async fn smtp<S: AsyncRead + AsyncWrite + Unpin>(s: S, timeout: Duration) -> (Verdict, String) {
    let mut r = BufReader::new(s);
    // Greeting, possibly multi-line ("220-...").
    let mut banner;
    loop {
        banner = match read_line(&mut r, timeout).await {
            Ok(l) => l,
            Err(e) => return e,
        };
        // A continuation is a reply code and a dash (`220-`); anything else ends the
        // greeting (an SSH banner `SSH-2.0-...` on an SMTP port is a mismatch at once).
        if !is_continuation(&banner) {
            break;
        }
    }
    if !banner.starts_with("220") {
        let looks_smtp = banner.len() >= 3 && banner[..3].chars().all(|c| c.is_ascii_digit());
        return if looks_smtp {
            (
                Verdict::ProtocolMismatch,
                format!("SMTP server refuses: {}", clip(&banner)),
            )
        } else {
            (
                Verdict::ProtocolMismatch,
                format!("TCP open, but not an SMTP greeting: {}", clip(&banner)),
            )
        };
    }
    if r.get_mut()
        .write_all(b"EHLO portolan-probe.invalid\r\n")
        .await
        .is_err()
    {
        return (
            Verdict::Open,
            format!(
                "SMTP 220 banner ({}); EHLO could not be sent",
                clip(&banner)
            ),
        );
    }
    let mut starttls = false;
    loop {
        let l = match read_line(&mut r, timeout).await {
            Ok(l) => l,
            Err(_) => {
                return (
                    Verdict::Open,
                    format!("SMTP 220 banner ({}); no EHLO answer", clip(&banner)),
                )
            }
        };
        if l.to_ascii_uppercase().contains("STARTTLS") {
            starttls = true;
        }
        if !l.starts_with("250") {
            return (
                Verdict::Open,
                format!("SMTP 220 banner; EHLO refused: {}", clip(&l)),
            );
        }
        if !is_continuation(&l) {
            break;
        }
    }
    let _ = r.get_mut().write_all(b"QUIT\r\n").await;
    (
        Verdict::Open,
        format!(
            "SMTP 220 banner ({}), EHLO ok, STARTTLS {}",
            clip(&banner),
            if starttls { "offered" } else { "not offered" }
        ),
    )
}

async fn http<S: AsyncRead + AsyncWrite + Unpin>(
    s: S,
    t: &Target,
    sa: SocketAddr,
    timeout: Duration,
) -> (Verdict, String) {
    let host = t
        .host
        .clone()
        .filter(|h| !h.starts_with('*'))
        .unwrap_or_else(|| sa.ip().to_string());
    let mut r = BufReader::new(s);
    let req = format!("HEAD / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: portolan-probe\r\n\r\n");
    if let Err(e) = r.get_mut().write_all(req.as_bytes()).await {
        return (
            Verdict::ProtocolMismatch,
            format!("TCP open, but sending failed: {e}"),
        );
    }
    match read_line(&mut r, timeout).await {
        Ok(l) if l.starts_with("HTTP/") => (Verdict::Open, format!("HTTP status: {}", clip(&l))),
        Ok(l) => (
            Verdict::ProtocolMismatch,
            format!("TCP open, but not HTTP: {}", clip(&l)),
        ),
        Err(e) => e,
    }
}

/// BER TLV.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = content.len();
    if n < 0x80 {
        v.push(n as u8);
    } else if n < 0x100 {
        v.extend_from_slice(&[0x81, n as u8]);
    } else {
        v.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]);
    }
    v.extend_from_slice(content);
    v
}

/// LDAP SearchRequest for the RootDSE: base "", scope base, filter (objectClass=*).
pub fn ldap_rootdse_request() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(tlv(0x04, b"")); // baseObject
    body.extend(tlv(0x0a, &[0])); // scope baseObject
    body.extend(tlv(0x0a, &[0])); // derefAliases never
    body.extend(tlv(0x02, &[0])); // sizeLimit
    body.extend(tlv(0x02, &[0])); // timeLimit
    body.extend(tlv(0x01, &[0])); // typesOnly false
    body.extend(tlv(0x87, b"objectClass")); // present filter
    body.extend(tlv(0x30, &[])); // attributes
    let mut msg = tlv(0x02, &[1]); // messageID 1
    msg.extend(tlv(0x63, &body)); // [APPLICATION 3] SearchRequest
    tlv(0x30, &msg)
}

async fn ldap_rootdse<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> (Verdict, String) {
    if let Err(e) = s.write_all(&ldap_rootdse_request()).await {
        return (
            Verdict::ProtocolMismatch,
            format!("sending the LDAP query failed: {e}"),
        );
    }
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(timeout, s.read(&mut buf)).await {
        Ok(Ok(n))
            if n > 8 && buf[0] == 0x30 && buf[..n].iter().any(|b| *b == 0x64 || *b == 0x65) =>
        {
            (
                Verdict::Open,
                "LDAP answered an anonymous RootDSE read".into(),
            )
        }
        Ok(Ok(_)) => (
            Verdict::ProtocolMismatch,
            "open, but the answer is not LDAP".into(),
        ),
        Ok(Err(e)) => (
            Verdict::ProtocolMismatch,
            format!("open, but reading failed: {e}"),
        ),
        Err(_) => (
            Verdict::NoAnswer,
            "TCP open, but no LDAP answer within the timeout".into(),
        ),
    }
}

/// SNMPv3 discovery: a GetRequest with no user and the reportable flag; any v3 agent answers
/// with a Report carrying its engine id. Needs no credentials.
pub fn snmpv3_discovery() -> Vec<u8> {
    let global = [
        tlv(0x02, &[0x50, 0x54]),       // msgID
        tlv(0x02, &[0x00, 0xff, 0xe3]), // msgMaxSize 65507
        tlv(0x04, &[0x04]),             // msgFlags: reportable
        tlv(0x02, &[3]),                // msgSecurityModel USM
    ]
    .concat();
    let usm = tlv(
        0x30,
        &[
            tlv(0x04, b""),
            tlv(0x02, &[0]),
            tlv(0x02, &[0]),
            tlv(0x04, b""),
            tlv(0x04, b""),
            tlv(0x04, b""),
        ]
        .concat(),
    );
    let pdu = tlv(
        0xa0,
        &[
            tlv(0x02, &[0x50, 0x54]),
            tlv(0x02, &[0]),
            tlv(0x02, &[0]),
            tlv(0x30, &[]),
        ]
        .concat(),
    );
    let scoped = tlv(0x30, &[tlv(0x04, b""), tlv(0x04, b""), pdu].concat());
    tlv(
        0x30,
        &[tlv(0x02, &[3]), tlv(0x30, &global), tlv(0x04, &usm), scoped].concat(),
    )
}

/// NTP client request: LI 0, version 4, mode 3.
pub fn ntp_request() -> [u8; 48] {
    let mut p = [0u8; 48];
    p[0] = 0x23;
    p
}

fn ntp_reply_ok(r: &[u8]) -> Result<String, String> {
    if r.len() < 48 {
        return Err(format!("{} bytes, not an NTP packet", r.len()));
    }
    let mode = r[0] & 7;
    let stratum = r[1];
    if mode != 4 {
        return Err(format!("NTP mode {mode}, expected a server reply (4)"));
    }
    if stratum == 0 || stratum > 15 {
        return Err(format!("NTP server not synchronised (stratum {stratum})"));
    }
    if r[40..48].iter().all(|b| *b == 0) {
        return Err("NTP reply without a transmit time".into());
    }
    Ok(format!("NTP reply, stratum {stratum}"))
}

async fn udp(t: &Target, sa: SocketAddr, timeout: Duration) -> (Verdict, String) {
    let dns_id = crate::dns::random_id();
    let payload: Vec<u8> = match t.app {
        App::Ntp => ntp_request().to_vec(),
        App::Dns => crate::dns::root_ns_query(dns_id),
        App::Snmp => snmpv3_discovery(),
        App::Syslog => b"<14>1 - - portolan - - - portolan connectivity probe".to_vec(),
        _ => b"portolan-probe".to_vec(),
    };
    match transport::exchange(sa, &payload, timeout).await {
        UdpOutcome::Failed(v, d) => (v, d),
        UdpOutcome::Silence => match t.app {
            App::Ntp => (Verdict::Filtered, "no NTP reply within the timeout".into()),
            App::Dns => (Verdict::Filtered, "no DNS reply within the timeout".into()),
            App::Syslog => (
                Verdict::OpenOrFiltered,
                "sent; syslog never answers, and no ICMP error came back".into(),
            ),
            App::Snmp => (
                Verdict::OpenOrFiltered,
                "no answer to SNMPv3 discovery (an agent without v3 stays silent)".into(),
            ),
            _ => (Verdict::OpenOrFiltered, "no reply and no ICMP error".into()),
        },
        UdpOutcome::Reply(r) => match t.app {
            App::Ntp => match ntp_reply_ok(&r) {
                Ok(d) => (Verdict::Open, d),
                Err(d) => (Verdict::ProtocolMismatch, d),
            },
            App::Dns => match crate::dns::check_response(&r, dns_id) {
                Ok(d) => (Verdict::Open, d),
                Err(d) => (Verdict::ProtocolMismatch, d),
            },
            App::Snmp if r.first() == Some(&0x30) => {
                (Verdict::Open, "SNMP agent answered (v3 report)".into())
            }
            App::Snmp => (
                Verdict::ProtocolMismatch,
                "UDP reply that is not SNMP".into(),
            ),
            _ => (Verdict::Open, format!("UDP reply of {} bytes", r.len())),
        },
    }
}

async fn dns_tcp<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    timeout: Duration,
) -> (Verdict, String) {
    let id = crate::dns::random_id();
    let q = crate::dns::root_ns_query(id);
    if let Err(e) = crate::dns::write_framed(&mut s, &q).await {
        return (
            Verdict::ProtocolMismatch,
            format!("sending the DNS query failed: {e}"),
        );
    }
    match tokio::time::timeout(timeout, crate::dns::read_framed(&mut s)).await {
        Ok(Ok(Some(body))) => match crate::dns::check_response(&body, id) {
            Ok(d) => (Verdict::Open, format!("{d} (over TCP)")),
            Err(d) => (Verdict::ProtocolMismatch, d),
        },
        Ok(Ok(None)) => (
            Verdict::ProtocolMismatch,
            "TCP open, but the server closed without a DNS answer".into(),
        ),
        Ok(Err(e)) => (
            Verdict::ProtocolMismatch,
            format!("TCP open, but no DNS answer: {e}"),
        ),
        Err(_) => (
            Verdict::NoAnswer,
            "TCP open, but no DNS answer within the timeout".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_reply_code_and_a_dash_continue_a_reply() {
        assert!(is_continuation("220-mx.example ESMTP"));
        assert!(is_continuation("250-SIZE 1000"));
        assert!(!is_continuation("220 mx.example ESMTP"));
        assert!(!is_continuation("SSH-2.0-OpenSSH_9.2"));
        assert!(!is_continuation("22-"));
    }
}
