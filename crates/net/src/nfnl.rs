//! Netfilter netlink, spoken directly: the elements of portolan's nftables sets and ipsets.
//!
//! The messages are built here in Rust, byte by byte, on a plain `AF_NETLINK` socket
//! (socket2); no GPL library (libnftnl, libmnl, libnftables, libipset) is linked and no
//! `unsafe` is needed. Only what the set writer needs is covered:
//! - nf_tables (`NFNL_SUBSYS_NFTABLES`): `NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM` with
//!   per-element timeouts, inside one `NFNL_MSG_BATCH_BEGIN` ... `END` transaction, and
//!   `NFT_MSG_GETGEN` (the ruleset generation, which changes with every commit);
//! - ip_set (`NFNL_SUBSYS_IPSET`): `IPSET_CMD_ADD` with a timeout; without `NLM_F_EXCL` an
//!   existing element gets the new timeout (ipset's `-exist`).
//!
//! Every request asks for an acknowledgement; nfnetlink handles a message in the sending
//! system call, so the acknowledgements are waiting when `send` returns, and they are read
//! with a short timeout. A transaction either commits whole or not at all (the kernel's
//! batch), and an error names the message that failed with the kernel's errno.
//!
//! Layout (linux/netlink.h, linux/netfilter/nfnetlink.h, nf_tables.h, ipset/ip_set.h):
//! `nlmsghdr` (len u32, type u16, flags u16, seq u32, pid u32), then `nfgenmsg` (family u8,
//! version u8, res_id be16), then attributes (len u16, type u16, payload, padded to 4).

use std::io::{self, Read};
use std::net::IpAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

const NETLINK_NETFILTER: i32 = 12;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;
const NLMSG_DONE: u16 = 0x3;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_F_NET_BYTEORDER: u16 = 0x4000;

const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_IPSET: u16 = 6;
const NFNL_SUBSYS_NFTABLES: u16 = 10;

const NFPROTO_INET: u8 = 1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_GEN_ID: u16 = 1;

const IPSET_CMD_ADD: u16 = 9;
const IPSET_PROTOCOL: u8 = 7;
const IPSET_ATTR_PROTOCOL: u16 = 1;
const IPSET_ATTR_SETNAME: u16 = 2;
const IPSET_ATTR_DATA: u16 = 7;
const IPSET_ATTR_IP: u16 = 1;
const IPSET_ATTR_TIMEOUT: u16 = 6;
const IPSET_ATTR_IPADDR_IPV4: u16 = 1;
const IPSET_ATTR_IPADDR_IPV6: u16 = 2;
/// ip_set's `IPSET_MAXNAMELEN` (with the terminating NUL).
const IPSET_MAXNAMELEN: usize = 32;

/// Elements per nf_tables message: a nested attribute's length is 16 bits, so one message
/// holds at most ~64 KiB of elements (an IPv6 element with its timeout is 44 bytes).
const ELEMENTS_PER_MESSAGE: usize = 1200;
/// Bytes per transaction: one `send`, which must fit the socket's send buffer. Larger
/// updates are split into several transactions (each element's add, delete and add stay in
/// one).
const MAX_TRANSACTION: usize = 160 * 1024;
/// How long to wait for acknowledgements once a request is sent.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// One netlink message being built.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        buf.push(family);
        buf.push(0); // NFNETLINK_V0
        buf.extend_from_slice(&res_id.to_be_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }
    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }
    fn attr_str(&mut self, ty: u16, s: &str) {
        let mut p = Vec::with_capacity(s.len() + 1);
        p.extend_from_slice(s.as_bytes());
        p.push(0);
        self.attr(ty, &p);
    }
    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    fn begin(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }
    fn end(&mut self) {
        if let Some(at) = self.nests.pop() {
            let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
            self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }
    /// `NFTA_SET_ELEM_KEY` holding an address.
    fn key(&mut self, addr: IpAddr) {
        self.begin(NFTA_SET_ELEM_KEY);
        match addr {
            IpAddr::V4(a) => self.attr(NFTA_DATA_VALUE, &a.octets()),
            IpAddr::V6(a) => self.attr(NFTA_DATA_VALUE, &a.octets()),
        }
        self.end();
    }
    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// A failure, said the way an administrator can act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Netlink cannot be used here (no permission, no nf_tables/ip_set in this kernel, ...):
    /// the caller may fall back to the command-line tools.
    Unavailable(String),
    /// The kernel refused the request: (what, errno text).
    Refused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Error::Unavailable(e) => write!(f, "netfilter netlink unavailable: {e}"),
            Error::Refused(e) => write!(f, "{e}"),
        }
    }
}

/// One element to write: an address into a set, living `timeout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub set: String,
    pub addr: IpAddr,
    pub timeout: Duration,
}

/// Replies to a request: (message type, payload).
type Replies = Vec<(u16, Vec<u8>)>;

/// A netfilter netlink socket.
pub struct Nfnl {
    sock: Socket,
    seq: u32,
}

fn errno_text(errno: i32) -> String {
    let e = io::Error::from_raw_os_error(errno);
    let hint = match errno {
        libc::ENOENT => " (no such table, set or element: is the ruleset loaded?)",
        libc::EPERM => " (needs CAP_NET_ADMIN)",
        libc::EEXIST => " (exists)",
        libc::EINVAL => " (the set's type does not take this address)",
        _ => "",
    };
    // ip_set's own error numbers (ipset/ip_set.h) start at 4096.
    let ipset = match errno {
        4097 => Some("ip_set protocol not supported"),
        4102 => Some("the ipset's type does not take this element"),
        4103 => Some("element exists"),
        4106 => Some("the ipset's family does not match the address"),
        4107 => Some("the ipset was created without `timeout`"),
        4109 | 4110 => Some("invalid address for the ipset"),
        n if n > 4096 => Some("ip_set error"),
        _ => None,
    };
    match ipset {
        Some(t) => format!("{t} (ip_set error {errno})"),
        None => format!("{e}{hint}"),
    }
}

impl Nfnl {
    /// Open a socket to the kernel's netfilter netlink.
    pub fn open() -> Result<Nfnl, Error> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(NETLINK_NETFILTER)),
        )
        .map_err(|e| Error::Unavailable(format!("netlink socket: {e}")))?;
        sock.set_read_timeout(Some(ACK_TIMEOUT))
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        // Room for one transaction, and for the acknowledgements of a large one.
        let _ = sock.set_send_buffer_size(2 * MAX_TRANSACTION);
        let _ = sock.set_recv_buffer_size(1 << 20);
        Ok(Nfnl {
            sock,
            seq: std::process::id().wrapping_mul(7919),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send `bytes` (messages whose sequence numbers are `acks`, each asking for an
    /// acknowledgement) and read every acknowledgement. `names` says what each message does,
    /// by sequence number, for an error.
    fn talk(&mut self, bytes: &[u8], acks: &[u32], names: &[(u32, String)]) -> Result<(), Error> {
        let what = |seq: u32| {
            names
                .iter()
                .find(|(s, _)| *s == seq)
                .map_or_else(|| format!("message {seq}"), |(_, n)| n.clone())
        };
        let sent = self.sock.send(bytes).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                Error::Unavailable(format!("sending to the kernel: {e} (needs CAP_NET_ADMIN)"))
            }
            _ => Error::Refused(format!("sending to the kernel: {e}")),
        })?;
        if sent != bytes.len() {
            return Err(Error::Refused(format!(
                "the kernel took {sent} of {} bytes",
                bytes.len()
            )));
        }
        let mut pending: std::collections::BTreeSet<u32> = acks.iter().copied().collect();
        let mut first_error: Option<Error> = None;
        let mut buf = vec![0u8; 1 << 16];
        while !pending.is_empty() {
            let n = match (&self.sock).read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    return Err(first_error.unwrap_or_else(|| {
                        Error::Refused(format!(
                            "no acknowledgement from the kernel for {} message(s): {e}",
                            pending.len()
                        ))
                    }))
                }
            };
            for (ty, seq, payload) in messages(&buf[..n]) {
                match ty {
                    NLMSG_ERROR => {
                        let errno = errno_of(payload);
                        pending.remove(&seq);
                        if errno != 0 && first_error.is_none() {
                            let text = format!("{}: {}", what(seq), errno_text(-errno));
                            first_error = Some(if -errno == libc::EPERM {
                                Error::Unavailable(text)
                            } else {
                                Error::Refused(text)
                            });
                        }
                        // An error on the batch's begin message ends the batch.
                        if errno != 0 && !acks.contains(&seq) {
                            pending.clear();
                        }
                    }
                    NLMSG_DONE => {}
                    _ => {}
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Write elements into sets of `table` (family `inet`), refreshing the timeout of those
    /// that are there already. With `single_add` false, each element is added, deleted and
    /// added again in the same transaction, which works on every kernel; with it true, one
    /// add per element, which refreshes the timeout only on kernels that update it (see
    /// [`Nfnl::nft_element_timeout`] for how the writer finds out). Transactions hold at most
    /// [`MAX_TRANSACTION`] bytes; a larger update is several. Returns how many transactions
    /// were committed.
    pub fn nft_refresh(
        &mut self,
        table: &str,
        elements: &[Element],
        single_add: bool,
    ) -> Result<u32, Error> {
        let ops: &[(u16, bool)] = if single_add {
            &[(NFT_MSG_NEWSETELEM, true)]
        } else {
            &[
                (NFT_MSG_NEWSETELEM, true),
                (NFT_MSG_DELSETELEM, false),
                (NFT_MSG_NEWSETELEM, true),
            ]
        };
        // Group by set, in order.
        let mut by_set: Vec<(&str, Vec<&Element>)> = Vec::new();
        let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for e in elements {
            match index.get(e.set.as_str()) {
                Some(&i) => by_set[i].1.push(e),
                None => {
                    index.insert(&e.set, by_set.len());
                    by_set.push((&e.set, vec![e]));
                }
            }
        }
        let mut chunks: Vec<(&str, &[&Element])> = Vec::new();
        for (set, elems) in &by_set {
            for c in elems.chunks(ELEMENTS_PER_MESSAGE) {
                chunks.push((set, c));
            }
        }
        // Transactions of whole chunks (add, delete, add of a chunk stay together).
        let mut i = 0;
        let mut committed = 0;
        while i < chunks.len() {
            let mut bytes = Vec::new();
            let mut acks = Vec::new();
            let mut names: Vec<(u32, String)> = Vec::new();
            let begin = self.next_seq();
            bytes.extend(
                Msg::new(
                    NFNL_MSG_BATCH_BEGIN,
                    NLM_F_REQUEST,
                    begin,
                    AF_UNSPEC,
                    NFNL_SUBSYS_NFTABLES,
                )
                .finish(),
            );
            names.push((begin, "the transaction".into()));
            while i < chunks.len() {
                let (set, c) = chunks[i];
                let mut part = Vec::new();
                for &(op, timed) in ops {
                    let seq = self.next_seq();
                    let flags = NLM_F_REQUEST
                        | NLM_F_ACK
                        | if op == NFT_MSG_NEWSETELEM {
                            NLM_F_CREATE
                        } else {
                            0
                        };
                    let mut m = Msg::new(
                        (NFNL_SUBSYS_NFTABLES << 8) | op,
                        flags,
                        seq,
                        NFPROTO_INET,
                        0,
                    );
                    m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
                    m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
                    m.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
                    for e in c {
                        m.begin(NFTA_LIST_ELEM);
                        m.key(e.addr);
                        if timed {
                            let ms = u64::try_from(e.timeout.as_millis())
                                .unwrap_or(u64::MAX)
                                .max(1000);
                            m.attr(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
                        }
                        m.end();
                    }
                    m.end();
                    part.extend(m.finish());
                    acks.push(seq);
                    let verb = if timed { "add to" } else { "refresh in" };
                    names.push((seq, format!("{verb} set {set} ({} element(s))", c.len())));
                }
                if bytes.len() + part.len() > MAX_TRANSACTION && acks.len() > ops.len() {
                    // This chunk goes into the next transaction.
                    for _ in 0..ops.len() {
                        acks.pop();
                    }
                    break;
                }
                bytes.extend(part);
                i += 1;
            }
            let end = self.next_seq();
            bytes.extend(
                Msg::new(
                    NFNL_MSG_BATCH_END,
                    NLM_F_REQUEST,
                    end,
                    AF_UNSPEC,
                    NFNL_SUBSYS_NFTABLES,
                )
                .finish(),
            );
            self.talk(&bytes, &acks, &names)?;
            committed += 1;
        }
        Ok(committed)
    }

    /// The timeout (in milliseconds) of one element as the kernel has it, or `None` when the
    /// element is not there.
    pub fn nft_element_timeout(
        &mut self,
        table: &str,
        set: &str,
        addr: IpAddr,
    ) -> Result<Option<u64>, Error> {
        let seq = self.next_seq();
        let mut m = Msg::new(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            NFPROTO_INET,
            0,
        );
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, table);
        m.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        m.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        m.begin(NFTA_LIST_ELEM);
        m.key(addr);
        m.end();
        m.end();
        let (replies, errno) = self.ask(m.finish(), seq)?;
        match errno {
            0 => {}
            libc::ENOENT => return Ok(None),
            e => return Err(Error::Refused(format!("get element: {}", errno_text(e)))),
        }
        let mut timeout = None;
        for (ty, payload) in replies {
            if ty != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM {
                continue;
            }
            for (aty, elems) in attrs(payload.get(4..).unwrap_or(&[])) {
                if aty != NFTA_SET_ELEM_LIST_ELEMENTS {
                    continue;
                }
                for (_, elem) in attrs(elems) {
                    for (ety, value) in attrs(elem) {
                        if let (NFTA_SET_ELEM_TIMEOUT, Ok(b)) = (ety, <[u8; 8]>::try_from(value)) {
                            timeout = Some(u64::from_be_bytes(b));
                        }
                    }
                }
            }
        }
        Ok(timeout)
    }

    /// Send one request (asking for an acknowledgement) and collect its replies until the
    /// acknowledgement: (replies as (type, payload), the acknowledgement's errno, positive).
    fn ask(&mut self, bytes: Vec<u8>, seq: u32) -> Result<(Replies, i32), Error> {
        self.sock
            .send(&bytes)
            .map_err(|e| Error::Unavailable(format!("sending to the kernel: {e}")))?;
        let mut buf = vec![0u8; 8192];
        let mut replies = Vec::new();
        loop {
            let n = (&self.sock)
                .read(&mut buf)
                .map_err(|e| Error::Refused(format!("no answer from the kernel: {e}")))?;
            for (ty, s, payload) in messages(&buf[..n]) {
                if s != seq {
                    continue;
                }
                if ty == NLMSG_ERROR {
                    return Ok((replies, -errno_of(payload)));
                }
                replies.push((ty, payload.to_vec()));
            }
        }
    }

    /// The ruleset's generation: it changes with every committed nf_tables transaction
    /// (anyone's), so an unchanged generation means nothing was reloaded or removed.
    pub fn nft_generation(&mut self) -> Result<u32, Error> {
        let seq = self.next_seq();
        let m = Msg::new(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            AF_UNSPEC,
            0,
        );
        let (replies, errno) = self.ask(m.finish(), seq)?;
        if errno != 0 {
            return Err(Error::Unavailable(format!(
                "generation: {}",
                errno_text(errno)
            )));
        }
        replies
            .iter()
            .filter(|(ty, _)| *ty == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)
            .flat_map(|(_, payload)| attrs(payload.get(4..).unwrap_or(&[])))
            .find_map(|(aty, value)| {
                let b = <[u8; 4]>::try_from(value).ok()?;
                (aty == NFTA_GEN_ID).then(|| u32::from_be_bytes(b))
            })
            .ok_or_else(|| Error::Refused("generation without an id".into()))
    }

    /// Add addresses to ipsets (created with `timeout`), each with its timeout; an element
    /// already there gets the new timeout. ip_set has no transactions: each element is its
    /// own message, all sent at once.
    pub fn ipset_add(&mut self, elements: &[Element]) -> Result<(), Error> {
        for chunk in elements.chunks(2000) {
            let mut bytes = Vec::new();
            let mut acks = Vec::new();
            let mut names: Vec<(u32, String)> = Vec::new();
            for e in chunk {
                if e.set.len() >= IPSET_MAXNAMELEN {
                    return Err(Error::Refused(format!(
                        "ipset name {} is longer than {} bytes",
                        e.set,
                        IPSET_MAXNAMELEN - 1
                    )));
                }
                let seq = self.next_seq();
                let family = if e.addr.is_ipv4() { AF_INET } else { AF_INET6 };
                let mut m = Msg::new(
                    (NFNL_SUBSYS_IPSET << 8) | IPSET_CMD_ADD,
                    NLM_F_REQUEST | NLM_F_ACK,
                    seq,
                    family,
                    0,
                );
                m.attr(IPSET_ATTR_PROTOCOL, &[IPSET_PROTOCOL]);
                m.attr_str(IPSET_ATTR_SETNAME, &e.set);
                m.begin(IPSET_ATTR_DATA);
                m.begin(IPSET_ATTR_IP);
                match e.addr {
                    IpAddr::V4(a) => {
                        m.attr(IPSET_ATTR_IPADDR_IPV4 | NLA_F_NET_BYTEORDER, &a.octets())
                    }
                    IpAddr::V6(a) => {
                        m.attr(IPSET_ATTR_IPADDR_IPV6 | NLA_F_NET_BYTEORDER, &a.octets())
                    }
                }
                m.end();
                let secs = u32::try_from(e.timeout.as_secs())
                    .unwrap_or(u32::MAX)
                    .max(1);
                m.attr(
                    IPSET_ATTR_TIMEOUT | NLA_F_NET_BYTEORDER,
                    &secs.to_be_bytes(),
                );
                m.end();
                bytes.extend(m.finish());
                acks.push(seq);
                names.push((seq, format!("add {} to ipset {}", e.addr, e.set)));
            }
            self.talk(&bytes, &acks, &names)?;
        }
        Ok(())
    }
}

/// The error number of an `NLMSG_ERROR` payload (0: an acknowledgement).
fn errno_of(payload: &[u8]) -> i32 {
    payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .unwrap_or(0)
}

/// The messages in a datagram: (type, sequence, payload after the header).
fn messages(data: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= data.len() {
        let len = u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        if len < 16 || at + len > data.len() {
            break;
        }
        let ty = u16::from_ne_bytes([data[at + 4], data[at + 5]]);
        let seq = u32::from_ne_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        out.push((ty, seq, &data[at + 16..at + len]));
        at += (len + 3) & !3;
    }
    out
}

/// The attributes in a payload: (type without flags, value).
fn attrs(data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= data.len() {
        let len = u16::from_ne_bytes([data[at], data[at + 1]]) as usize;
        let ty = u16::from_ne_bytes([data[at + 2], data[at + 3]])
            & !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);
        if len < 4 || at + len > data.len() {
            break;
        }
        out.push((ty, &data[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a set element message, checked by hand against nf_tables.h: header,
    /// nfgenmsg, table and set names NUL-terminated and padded, nested elements.
    #[test]
    fn a_set_element_message_has_the_kernel_layout() {
        let mut m = Msg::new(
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM,
            NLM_F_REQUEST,
            7,
            NFPROTO_INET,
            0,
        );
        m.attr_str(NFTA_SET_ELEM_LIST_TABLE, "portolan");
        m.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        m.begin(NFTA_LIST_ELEM);
        m.begin(NFTA_SET_ELEM_KEY);
        m.attr(NFTA_DATA_VALUE, &[192, 0, 2, 1]);
        m.end();
        m.end();
        m.end();
        let b = m.finish();
        assert_eq!(
            u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize,
            b.len()
        );
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0a0c);
        assert_eq!(&b[16..20], &[1, 0, 0, 0]);
        // "portolan\0" is 9 bytes: attribute length 13, padded to 16.
        assert_eq!(u16::from_ne_bytes([b[20], b[21]]), 13);
        assert_eq!(&b[24..33], b"portolan\0");
        let parsed = attrs(&b[20..]);
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1].0, NFTA_SET_ELEM_LIST_ELEMENTS);
        // LIST_ELEM(KEY(DATA_VALUE(4 bytes))) = 4 + 4 + 4 + 4.
        assert_eq!(parsed[1].1.len(), 16);
        assert_eq!(&parsed[1].1[12..16], &[192, 0, 2, 1]);
        assert_eq!(b.len() % 4, 0);
    }

    #[test]
    fn truncated_or_lying_replies_are_read_safely() {
        assert!(messages(&[1, 2, 3]).is_empty());
        let mut lie = vec![0u8; 20];
        lie[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(messages(&lie).is_empty());
        assert!(attrs(&[255, 255, 1, 0]).is_empty());
    }
}
