//! The DNS proxy's limits, on loopback with a fake upstream (no wildcard, so no nft): a
//! large answer is truncated for a client that offered no EDNS and comes whole over TCP;
//! an idle TCP connection is closed after the idle timeout; connections beyond the limit are
//! closed at once.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use portolan_net::dns::{read_framed, write_framed};
use portolan_net::dns_proxy::{serve, Config};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// An upstream that answers every A query with 100 addresses (about 1.6 KB).
async fn big_upstream() -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("tcp");
    let answer = |q: &[u8]| -> Option<Vec<u8>> {
        let q = Message::from_vec(q).ok()?;
        let question = q.queries.first()?.clone();
        let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        m.add_query(question.clone());
        for i in 0..100u32 {
            m.answers.push(Record::from_rdata(
                question.name().clone(),
                60,
                RData::A(A(Ipv4Addr::from(0xc633_6400 + i))),
            ));
        }
        m.to_vec().ok()
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            if let Some(a) = answer(&buf[..n]) {
                let _ = udp.send_to(&a, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            tokio::spawn(async move {
                while let Ok(Some(q)) = read_framed(&mut s).await {
                    if let Some(a) = answer(&q) {
                        let _ = write_framed(&mut s, &a).await;
                    }
                }
            });
        }
    });
    addr
}

fn query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii("big.example.").expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("query")
}

async fn start_proxy(cfg: Config) -> SocketAddr {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let addr = udp.local_addr().expect("addr");
    let tcp = TcpListener::bind(addr).await.expect("tcp");
    tokio::spawn(serve(
        udp,
        tcp,
        cfg,
        vec![],
        Arc::new(|_| {}),
        std::future::pending::<()>(),
    ));
    addr
}

#[tokio::test]
async fn large_answers_are_truncated_over_udp_and_whole_over_tcp() {
    let upstream = big_upstream().await;
    let proxy = start_proxy(Config::new(upstream, Duration::from_secs(2), vec![])).await;
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    c.connect(proxy).await.expect("connect");
    c.send(&query(7)).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), c.recv(&mut buf))
        .await
        .expect("answered")
        .expect("recv");
    assert!(n <= 512, "{n} bytes to a client that offered 512");
    let m = Message::from_vec(&buf[..n]).expect("dns");
    assert!(m.metadata.truncation, "TC must be set");
    assert_eq!(m.metadata.id, 7);

    let mut s = TcpStream::connect(proxy).await.expect("tcp");
    write_framed(&mut s, &query(8)).await.expect("write");
    let body = tokio::time::timeout(Duration::from_secs(3), read_framed(&mut s))
        .await
        .expect("answered")
        .expect("read")
        .expect("a message");
    let m = Message::from_vec(&body).expect("dns");
    assert_eq!(m.answers.len(), 100);
    assert!(!m.metadata.truncation);
}

#[tokio::test]
async fn idle_and_excess_tcp_connections_are_closed() {
    let upstream = big_upstream().await;
    let mut cfg = Config::new(upstream, Duration::from_secs(2), vec![]);
    cfg.tcp_idle = Duration::from_millis(300);
    cfg.max_tcp = 2;
    let proxy = start_proxy(cfg).await;
    // Two idle connections hold both slots; a third is closed at once.
    let mut a = TcpStream::connect(proxy).await.expect("a");
    let _b = TcpStream::connect(proxy).await.expect("b");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut c = TcpStream::connect(proxy).await.expect("c");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_millis(200), c.read(&mut byte))
        .await
        .expect("the third connection must be closed at once");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // An idle connection is closed after the idle timeout.
    let closed = tokio::time::timeout(Duration::from_secs(2), a.read(&mut byte))
        .await
        .expect("an idle connection must be closed after the idle timeout");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
}

/// The upstream sees the proxy's own random ids, never the client's (a client with weak or
/// fixed ids must not weaken the answers that reach allow sets); the client gets its own id
/// back.
#[tokio::test]
async fn the_upstream_sees_random_ids_and_the_client_its_own() {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let upstream = udp.local_addr().expect("addr");
    let _tcp = TcpListener::bind(upstream).await.expect("tcp");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u16>::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            if let Ok(mut s) = record.lock() {
                s.push(q.metadata.id);
            }
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.queries = q.queries.clone();
            let _ = udp.send_to(&m.to_vec().expect("encode"), peer).await;
        }
    });
    let proxy = start_proxy(Config::new(upstream, Duration::from_secs(2), vec![])).await;
    let c = UdpSocket::bind("127.0.0.1:0").await.expect("client");
    c.connect(proxy).await.expect("connect");
    let mut buf = vec![0u8; 4096];
    for _ in 0..3 {
        c.send(&query(0x4242)).await.expect("send");
        let n = tokio::time::timeout(Duration::from_secs(3), c.recv(&mut buf))
            .await
            .expect("answered")
            .expect("recv");
        let m = Message::from_vec(&buf[..n]).expect("dns");
        assert_eq!(m.metadata.id, 0x4242, "the client gets its own id back");
    }
    let ids = seen.lock().expect("ids").clone();
    assert_eq!(ids.len(), 3);
    assert!(
        !ids.contains(&0x4242),
        "the client's id reached the upstream: {ids:?}"
    );
    assert!(
        ids[0] != ids[1] || ids[1] != ids[2],
        "ids are not random: {ids:?}"
    );
}
