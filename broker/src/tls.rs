//! TLS listeners of `mqsim broker`: rustls (ring as the crypto provider) through tokio-rustls.
//! mosquitto's keys: `certfile`, `keyfile`, `cafile`, `require_certificate`,
//! `use_identity_as_username` (read by `config.rs`, loaded here at start-up).
//!
//! The handshake runs in a task of its own, spawned by the accept loop, never in the broker task,
//! and is bounded in time ([`TLS_HANDSHAKE_TIMEOUT_MS`]) and in number
//! ([`TLS_HANDSHAKES_PENDING_MAX`]). A stream that completes it goes through the same
//! [`BrokerHandle::serve_as`] as plain TCP; one that does not is logged and closed, alone.

use std::sync::Arc;
use std::time::Duration;

use crate::adapter::BrokerHandle;
use mqsim::broker::Identity;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, FileSetting, TlsSettings};

/// A client must finish the TLS handshake within this many milliseconds of its TCP connection,
/// or it is logged and closed (the broker's CONNECT timeout starts after it).
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// TLS handshakes under way at once on one listener; the accept loop waits for a slot beyond it
/// (further clients wait in the kernel's listen backlog).
pub const TLS_HANDSHAKES_PENDING_MAX: usize = 1_024;

/// One TLS listener, ready to accept.
pub struct TlsListener {
    acceptor: TlsAcceptor,
    use_identity_as_username: bool,
    pending: Arc<Semaphore>,
}

impl TlsListener {
    /// Loads the listener's files. An error names the line of the file setting at fault.
    pub fn load(s: &TlsSettings) -> Result<TlsListener, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = read_certs(&s.certfile).map_err(|e| {
            at(
                &s.certfile,
                format!(
                    "Unable to load server certificate \"{}\". Check certfile: {e}",
                    s.certfile.path
                ),
            )
        })?;
        let key = PrivateKeyDer::from_pem_file(&s.keyfile.path).map_err(|e| {
            at(
                &s.keyfile,
                format!(
                    "Unable to load server key file \"{}\". Check keyfile: {}",
                    s.keyfile.path,
                    pem_error(e)
                ),
            )
        })?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| at(&s.certfile, format!("TLS set-up: {e}")))?;
        // The CAs are read whenever a cafile is named, so that a bad one stops the start-up.
        let roots = match &s.cafile {
            Some(cafile) => {
                let mut roots = RootCertStore::empty();
                read_certs(cafile)
                    .and_then(|cas| {
                        cas.into_iter()
                            .try_for_each(|c| roots.add(c).map_err(|e| e.to_string()))
                    })
                    .map_err(|e| {
                        at(
                            cafile,
                            format!(
                                "Unable to load CA certificates. Check cafile \"{}\": {e}",
                                cafile.path
                            ),
                        )
                    })?;
                Some((roots, cafile))
            }
            None => None,
        };
        let builder = match roots {
            Some((roots, cafile)) if s.require_certificate => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .map_err(|e| at(cafile, format!("cafile \"{}\": {e}", cafile.path)))?;
                builder.with_client_cert_verifier(verifier)
            }
            // Without require_certificate no client certificate is asked for (mosquitto's
            // SSL_VERIFY_NONE).
            _ => builder.with_no_client_auth(),
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            // rustls says "keys may not be consistent: KeyMismatch" for the usual case; the
            // first half of the line already says that.
            let why = match e {
                tokio_rustls::rustls::Error::InconsistentKeys(_) => {
                    String::from("the private key in keyfile is not the certificate's in certfile")
                }
                e => e.to_string(),
            };
            at(
                &s.keyfile,
                format!("Server certificate/key are inconsistent: {why}"),
            )
        })?;
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            use_identity_as_username: s.use_identity_as_username,
            pending: Arc::new(Semaphore::new(TLS_HANDSHAKES_PENDING_MAX)),
        })
    }

    /// A slot for one more handshake; waits while [`TLS_HANDSHAKES_PENDING_MAX`] are under way.
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.pending.clone().acquire_owned().await.ok()
    }

    /// The TLS handshake on `stream`, at most `timeout`; then the user name the broker is to use.
    pub async fn handshake<S>(
        &self,
        stream: S,
        timeout: Duration,
    ) -> Result<(tokio_rustls::server::TlsStream<S>, Identity), String>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let tls = match tokio::time::timeout(timeout, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                return Err(format!(
                    "handshake not finished within {} ms",
                    timeout.as_millis()
                ))
            }
        };
        let identity = if self.use_identity_as_username {
            let cn = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| subject_cn(leaf));
            cn.map_or(Identity::Missing, Identity::Certificate)
        } else {
            Identity::FromConnect
        };
        Ok((tls, identity))
    }

    /// Handshake, then hand the stream to the broker; on failure log it and close this stream.
    /// Runs in its own task: `slot` is released when the handshake is over.
    pub async fn serve<S>(
        self: Arc<Self>,
        stream: S,
        peer: String,
        handle: BrokerHandle,
        verbose: bool,
        slot: OwnedSemaphorePermit,
        log: crate::start::Log,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let timeout = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
        let done = self.handshake(stream, timeout).await;
        drop(slot);
        match done {
            Ok((tls, identity)) => {
                // Refused (max_connections): the stream was dropped, which closes it.
                let _ = handle.serve_as(tls, peer, identity).await;
            }
            Err(reason) => {
                // mosquitto logs the connection, its OpenSSL error, then the disconnection.
                if verbose {
                    log(&format!("New connection from {peer}."));
                }
                log(&format!("TLS Error from {peer}: {reason}."));
                if verbose {
                    log("Client <unknown> disconnected due to protocol error.");
                }
            }
        }
    }
}

fn at(setting: &FileSetting, message: String) -> ConfigError {
    ConfigError {
        line: setting.line,
        message,
    }
}

/// Every certificate of a PEM file; none is an error.
fn read_certs(file: &FileSetting) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(&file.path)
        .map_err(pem_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error)?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
        e => e.to_string(),
    }
}

/// The first common name (CN) of a certificate's subject, as mosquitto takes it; `None` without
/// one, or when it is not text or has a NUL in it (mosquitto refuses those too).
pub fn subject_cn(der: &[u8]) -> Option<String> {
    use x509_cert::der::{Decode, Tag, Tagged};
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let cn = cert
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == x509_cert::der::oid::db::rfc4519::CN)?;
    match cn.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            let text = std::str::from_utf8(cn.value.value()).ok()?;
            (!text.contains('\0')).then(|| text.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
