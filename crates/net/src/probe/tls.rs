//! TLS handshakes that tell interception apart from failure.
//!
//! The verifier records the presented chain and the result of normal verification (webpki
//! against the expected roots), but lets the handshake complete either way, so we can say
//! *what* was presented: a chain from an unknown issuer (an inspecting proxy: the detail names
//! the issuer), a trusted chain for another name, or a good chain. No application data is
//! sent by this module.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error, RootCertStore, SignatureScheme,
};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::Verdict;

/// What verification said about the presented chain.
#[derive(Debug, Clone, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    verdict: Option<Result<(), Error>>,
}

#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let r = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            .map(|_| ());
        if let Ok(mut s) = self.seen.lock() {
            s.chain = std::iter::once(end_entity)
                .chain(intermediates)
                .map(|c| c.clone().into_owned())
                .collect();
            s.verdict = Some(r);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Trusted roots: the given CA certificates, or the webpki (Mozilla) roots.
pub fn roots(ca: &[CertificateDer<'static>]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    if ca.is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        for c in ca {
            let _ = store.add(c.clone());
        }
    }
    store
}

/// Handshake over `tcp` with SNI `name`; the verdict and, on success, the stream.
pub async fn handshake(
    tcp: TcpStream,
    name: ServerName<'static>,
    ca: &[CertificateDer<'static>],
    timeout: Duration,
) -> (Verdict, String, Option<TlsStream<TcpStream>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)), provider.clone())
            .build()
        {
            Ok(v) => v,
            Err(e) => {
                return (
                    Verdict::Error,
                    format!("no usable trusted roots: {e}"),
                    None,
                )
            }
        };
    let rec = Arc::new(Recording {
        inner,
        seen: Mutex::new(Seen::default()),
    });
    let config =
        match ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
            Ok(b) => b
                .dangerous()
                .with_custom_certificate_verifier(rec.clone())
                .with_no_client_auth(),
            Err(e) => return (Verdict::Error, e.to_string(), None),
        };
    let connector = TlsConnector::from(Arc::new(config));
    let shown = name.to_str().to_string();
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let seen = rec.seen.lock().map(|s| s.clone()).unwrap_or_default();
    let stream = match result {
        Err(_) => {
            return (
                Verdict::NoAnswer,
                "TCP open, but no answer to the TLS ClientHello within the timeout".into(),
                None,
            )
        }
        Ok(Err(e)) => {
            return (
                Verdict::ProtocolMismatch,
                format!("TCP open, but no TLS handshake: {e}"),
                None,
            )
        }
        Ok(Ok(s)) => s,
    };
    let issuer = seen
        .chain
        .first()
        .and_then(|c| issuer_of(c))
        .unwrap_or_else(|| "an unreadable issuer".into());
    match seen.verdict {
        Some(Ok(())) => (
            Verdict::Open,
            format!("TLS ok for {shown}, chain of {} issued by {issuer}", seen.chain.len()),
            Some(stream),
        ),
        Some(Err(Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ))) => (
            Verdict::TlsNameMismatch,
            format!("trusted certificate, but not for {shown} (issued by {issuer})"),
            Some(stream),
        ),
        Some(Err(Error::InvalidCertificate(
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature,
        ))) => (
            Verdict::TlsIntercepted,
            format!("the chain does not lead to a trusted root: presented issuer {issuer} (TLS inspection?)"),
            Some(stream),
        ),
        Some(Err(Error::InvalidCertificate(
            CertificateError::ExpiredContext { time, not_after },
        ))) => (
            Verdict::TlsExpired,
            format!(
                "the certificate for {shown} expired on {} (checked {}; issued by {issuer})",
                date(not_after.as_secs()),
                date(time.as_secs())
            ),
            Some(stream),
        ),
        Some(Err(Error::InvalidCertificate(
            CertificateError::NotValidYetContext { time, not_before },
        ))) => (
            Verdict::TlsExpired,
            format!(
                "the certificate for {shown} is not valid before {} (checked {}; issued by {issuer}): is this host's clock right?",
                date(not_before.as_secs()),
                date(time.as_secs())
            ),
            Some(stream),
        ),
        Some(Err(Error::InvalidCertificate(CertificateError::Expired | CertificateError::NotValidYet))) => (
            Verdict::TlsExpired,
            format!("the certificate for {shown} is outside its validity period (issued by {issuer})"),
            Some(stream),
        ),
        Some(Err(e)) => (Verdict::Error, format!("certificate problem: {e} (issuer {issuer})"), Some(stream)),
        None => (Verdict::Error, "the handshake completed without a certificate".into(), Some(stream)),
    }
}

/// A UNIX time as `2026-12-06 11:00 UTC`.
fn date(secs: u64) -> String {
    let f =
        time::format_description::parse_borrowed::<2>("[year]-[month]-[day] [hour]:[minute] UTC");
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .zip(f.ok())
        .and_then(|(t, f)| t.format(&f).ok())
        .unwrap_or_else(|| format!("{secs} (UNIX time)"))
}

/// The issuer of a DER certificate as `CN=..., O=...` (a minimal DER walk; no parsing crate
/// needed for this one field).
pub fn issuer_of(cert: &[u8]) -> Option<String> {
    let (_, cert_body, _) = der(cert)?; // Certificate SEQUENCE
    let (_, tbs, _) = der(cert_body)?; // tbsCertificate SEQUENCE
    let mut rest = tbs;
    let (tag, _, r) = der(rest)?;
    rest = if tag == 0xa0 { r } else { rest }; // [0] version
    let (_, _, r) = der(rest)?; // serialNumber
    let (_, _, r) = der(r)?; // signature AlgorithmIdentifier
    let (_, issuer, _) = der(r)?; // issuer Name
    Some(name_text(issuer))
}

fn name_text(mut name: &[u8]) -> String {
    let mut parts = Vec::new();
    while let Some((_, rdn, rest)) = der(name) {
        name = rest;
        let mut set = rdn;
        while let Some((_, atv, r)) = der(set) {
            set = r;
            let Some((_, oid, r2)) = der(atv) else {
                continue;
            };
            let Some((_, value, _)) = der(r2) else {
                continue;
            };
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x06] => "C",
                _ => continue,
            };
            let text: String = String::from_utf8_lossy(value)
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            parts.push(format!("{key}={text}"));
        }
    }
    if parts.is_empty() {
        "an unnamed issuer".into()
    } else {
        parts.join(", ")
    }
}

/// One DER TLV: (tag, content, rest).
fn der(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *buf.first()?;
    let first = *buf.get(1)?;
    let (len, hdr) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*buf.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    let content = buf.get(hdr..end)?;
    Some((tag, content, &buf[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_never_panics_on_garbage() {
        for data in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff, 0xff, 0],
        ] {
            let _ = issuer_of(data);
        }
    }
}
