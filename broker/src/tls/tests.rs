//! TLS listener set-up and handshakes over in-memory streams (`tokio::io::duplex`): no sockets,
//! the same code the accept loop runs.

use super::*;
use crate::config::{FileSetting, TlsSettings};

#[path = "../../tests/support/pki.rs"]
mod pki;
use pki::{Pki, CLIENT_CN};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;

fn settings(pki: &Pki, require_certificate: bool, identity: bool) -> TlsSettings {
    let file = |name: &str, line| FileSetting {
        path: pki.path(name),
        line,
    };
    TlsSettings {
        certfile: file("server.pem", 3),
        keyfile: file("server.key", 4),
        cafile: Some(file("ca.pem", 5)),
        require_certificate,
        use_identity_as_username: identity,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The server's handshake against a tokio-rustls client presenting `client` (or nothing); on
/// success one byte goes each way through the TLS streams.
fn handshake(pki: &Pki, listener: &TlsListener, client: Option<&str>) -> Result<Identity, String> {
    rt().block_on(async {
        let (server_end, client_end) = tokio::io::duplex(64 * 1024);
        let connector = pki.connector(client);
        let name = ServerName::try_from("localhost").unwrap();
        let client = tokio::spawn(async move {
            let mut tls = connector.connect(name, client_end).await.ok()?;
            tls.write_all(b"c").await.ok()?;
            tls.flush().await.ok()?;
            let mut b = [0u8; 1];
            tls.read_exact(&mut b).await.ok()?;
            Some(b[0])
        });
        let timeout = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
        let (mut tls, identity) = match listener.handshake(server_end, timeout).await {
            Ok(ok) => ok,
            Err(e) => {
                // The client learns it too: its handshake fails rather than hangs.
                assert_eq!(client.await.unwrap(), None);
                return Err(e);
            }
        };
        let mut b = [0u8; 1];
        tls.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"c");
        tls.write_all(b"s").await.unwrap();
        tls.flush().await.unwrap();
        assert_eq!(client.await.unwrap(), Some(b's'));
        Ok(identity)
    })
}

#[test]
fn server_certificate_only_accepts_any_client_and_keeps_connect_user_names() {
    let pki = Pki::new("unit-plain");
    let l = TlsListener::load(&settings(&pki, false, false)).unwrap();
    assert_eq!(handshake(&pki, &l, None), Ok(Identity::FromConnect));
    // No certificate is asked for, so one from another CA does not matter.
    assert_eq!(
        handshake(&pki, &l, Some("rogue")),
        Ok(Identity::FromConnect)
    );
}

#[test]
fn require_certificate_refuses_clients_without_one_signed_by_cafile() {
    let pki = Pki::new("unit-require");
    let l = TlsListener::load(&settings(&pki, true, false)).unwrap();
    assert_eq!(
        handshake(&pki, &l, Some("client")),
        Ok(Identity::FromConnect)
    );
    let e = handshake(&pki, &l, None).unwrap_err();
    assert_eq!(e, "peer sent no certificates");
    let e = handshake(&pki, &l, Some("rogue")).unwrap_err();
    assert!(e.starts_with("invalid peer certificate"), "{e}");
}

#[test]
fn use_identity_as_username_takes_the_subject_cn() {
    let pki = Pki::new("unit-identity");
    let l = TlsListener::load(&settings(&pki, true, true)).unwrap();
    assert_eq!(
        handshake(&pki, &l, Some("client")),
        Ok(Identity::Certificate(CLIENT_CN.into()))
    );
    // A certificate without a CN gets through the handshake; the broker refuses its CONNECT.
    assert_eq!(
        handshake(&pki, &l, Some("client-no-cn")),
        Ok(Identity::Missing)
    );
}

#[test]
fn a_client_that_never_finishes_the_handshake_is_dropped_at_the_limit() {
    let pki = Pki::new("unit-timeout");
    let l = TlsListener::load(&settings(&pki, false, false)).unwrap();
    rt().block_on(async {
        // The client end stays open and silent.
        let (server_end, _client_end) = tokio::io::duplex(1024);
        let started = std::time::Instant::now();
        let e = l
            .handshake(server_end, Duration::from_millis(50))
            .await
            .err()
            .unwrap();
        assert_eq!(e, "handshake not finished within 50 ms");
        assert!(started.elapsed() >= Duration::from_millis(50));
    });
}

#[test]
fn subject_cn_of_certificates() {
    let pki = Pki::new("unit-cn");
    let der = |name: &str| CertificateDer::from_pem_file(pki.path(name)).unwrap();
    assert_eq!(subject_cn(&der("client.pem")).as_deref(), Some(CLIENT_CN));
    assert_eq!(subject_cn(&der("server.pem")).as_deref(), Some("localhost"));
    assert_eq!(subject_cn(&der("client-no-cn.pem")), None);
    assert_eq!(subject_cn(b"not a certificate"), None);
}

#[test]
fn bad_files_stop_the_start_up_at_their_line() {
    let pki = Pki::new("unit-files");
    let err = |s: &TlsSettings| TlsListener::load(s).err().unwrap();

    let mut s = settings(&pki, true, false);
    s.certfile.path = pki.path("missing.pem");
    let e = err(&s);
    assert_eq!(e.line, 3);
    assert!(
        e.message.starts_with(&format!(
            "Unable to load server certificate \"{}\". Check certfile: No such file",
            s.certfile.path
        )),
        "{}",
        e.message
    );

    // A key file without a key in it (the certificate file instead).
    let mut s = settings(&pki, true, false);
    s.keyfile.path = pki.path("server.pem");
    let e = err(&s);
    assert_eq!(
        (e.line, e.message),
        (
            4,
            format!(
                "Unable to load server key file \"{}\". Check keyfile: no PEM private key in it",
                s.keyfile.path
            )
        )
    );

    // Another certificate's key.
    let mut s = settings(&pki, true, false);
    s.keyfile.path = pki.path("client.key");
    let e = err(&s);
    assert_eq!(e.line, 4);
    assert!(
        e.message
            .starts_with("Server certificate/key are inconsistent"),
        "{}",
        e.message
    );

    // A CA file with no certificate in it.
    let mut s = settings(&pki, true, false);
    s.cafile.as_mut().unwrap().path = pki.path("server.key");
    let e = err(&s);
    assert_eq!(e.line, 5);
    assert!(
        e.message.ends_with("\": no PEM certificate in it"),
        "{}",
        e.message
    );
}
