//! TLS listeners through the real `mqsim broker` binary: mosquitto.conf with `listener 0` and
//! the TLS keys, a throw-away PKI made with rcgen, the mosquitto command-line clients with
//! `--cafile` (skipped with a note where they are missing, unless `MQSIM_REQUIRE_INTEROP=1`) and
//! a tokio-rustls client with and without a client certificate.

mod common;
#[path = "../../broker/tests/support/pki.rs"]
mod pki;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{broker_refuses, have_mosquitto_clients, BrokerProc};
use pki::{Pki, CLIENT_CN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;

/// Every listening port the broker logged, in the order of its listeners.
fn ports(b: &BrokerProc) -> Vec<u16> {
    b.log()
        .iter()
        .filter_map(|l| l.strip_prefix("Opening ipv4 listen socket on port "))
        .map(|p| p.trim_end_matches('.').parse().unwrap())
        .collect()
}

/// Starts the broker on `conf` (written to the PKI's directory) with `-v`.
fn start(pki: &Pki, conf: &str) -> BrokerProc {
    let path = pki.path("mosquitto.conf");
    std::fs::write(&path, conf).unwrap();
    BrokerProc::start(&["-c", &path, "-v"])
}

/// The TLS keys of a listener on `pki`'s files.
fn tls_keys(pki: &Pki) -> String {
    format!(
        "certfile {}\nkeyfile {}\ncafile {}\n",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem")
    )
}

/// `mosquitto_sub` or `mosquitto_pub` with `args`, over TLS when `cafile` is given.
fn mosquitto(program: &str, port: u16, cafile: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(["-p", &port.to_string(), "-h", "localhost"]);
    if let Some(ca) = cafile {
        c.args(["--cafile", ca]);
    }
    c.args(args);
    c
}

#[test]
fn mosquitto_clients_over_tls_beside_a_plain_listener() {
    if !have_mosquitto_clients() {
        return;
    }
    let pki = Pki::new("cli-both");
    let conf = format!(
        "allow_anonymous true\nlistener 0 127.0.0.1\nlistener 0 127.0.0.1\n{}",
        tls_keys(&pki)
    );
    let b = start(&pki, &conf);
    let [plain, tls] = ports(&b)[..] else {
        panic!("two listeners: {:#?}", b.log());
    };
    let ca = pki.path("ca.pem");

    // A client that connects to the TLS port and never says anything: its handshake waits in a
    // task of its own, and everyone else goes on.
    let silent = std::net::TcpStream::connect(("127.0.0.1", tls)).unwrap();

    // TLS subscriber, plain publisher; then plain subscriber, TLS publisher.
    for (sub_port, sub_ca, pub_port, pub_ca, msg) in [
        (tls, Some(ca.as_str()), plain, None, "over TLS"),
        (plain, None, tls, Some(ca.as_str()), "from TLS"),
    ] {
        let sub = mosquitto(
            "mosquitto_sub",
            sub_port,
            sub_ca,
            &["-t", "t", "-C", "1", "-W", "10"],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        b.wait_for("Sending SUBACK");
        let st = mosquitto("mosquitto_pub", pub_port, pub_ca, &["-t", "t", "-m", msg])
            .status()
            .unwrap();
        assert!(st.success());
        let out = sub.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{msg}\n"));
    }
    // The TLS connections are labelled like the plain ones: the peer and the listener's port.
    let log = b.log();
    assert!(
        log.iter()
            .any(|l| l.starts_with("New connection from 127.0.0.1:")
                && l.ends_with(&format!(" on port {tls}."))),
        "{log:#?}"
    );
    // Plain MQTT on the TLS port is not MQTT to it: a handshake error, that connection only.
    let st = mosquitto("mosquitto_pub", tls, None, &["-t", "t", "-m", "x"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success());
    let line = b.wait_for("TLS Error from 127.0.0.1:");
    assert!(line.contains(&format!(" on port {tls}: ")), "{line}");
    drop(silent);
    assert!(b.interrupt().success());
}

/// CONNECT (3.1.1, clean session, keep alive 60 s, client id "dev", user name "claimed" and
/// password "pw"), written from the specification.
const CONNECT_DEV_CLAIMED: &[u8] = &[
    0x10, 28, // CONNECT, remaining length
    0, 4, b'M', b'Q', b'T', b'T', 4, // protocol name and level 4
    0xC2, 0, 60, // flags: user name, password, clean session; keep alive
    0, 3, b'd', b'e', b'v', // client id
    0, 7, b'c', b'l', b'a', b'i', b'm', b'e', b'd', // user name
    0, 2, b'p', b'w', // password
];

/// A TLS connection to `port` presenting `client`'s certificate (or none), CONNECT, and the
/// CONNACK's return code; `Err` when the connection fails before a CONNACK arrives.
fn connect_over_tls(pki: &Pki, port: u16, client: Option<&str>) -> Result<u8, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = pki
            .connector(client)
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(CONNECT_DEV_CLAIMED)
            .await
            .map_err(|e| e.to_string())?;
        let mut connack = [0u8; 4];
        let read = tls.read_exact(&mut connack);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .map_err(|_| "no CONNACK within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        assert_eq!(connack[..3], [0x20, 2, 0], "CONNACK");
        Ok(connack[3])
    })
}

#[test]
fn require_certificate_and_use_identity_as_username() {
    let pki = Pki::new("cli-identity");
    // No allow_anonymous: only clients known by their certificate get in.
    let conf = format!(
        "listener 0 127.0.0.1\n{}require_certificate true\nuse_identity_as_username true\n",
        tls_keys(&pki)
    );
    let b = start(&pki, &conf);
    let port = b.port;

    assert_eq!(connect_over_tls(&pki, port, Some("client")), Ok(0));
    let line = b.wait_for("New client connected");
    assert!(
        line.ends_with(&format!("as dev (p2, c1, k60, u'{CLIENT_CN}').")),
        "the certificate's CN, not CONNECT's user name: {line}"
    );

    // No certificate, or one from another CA: refused at the handshake.
    assert!(connect_over_tls(&pki, port, None).is_err());
    let line = b.wait_for("TLS Error from");
    assert!(line.ends_with("peer sent no certificates."), "{line}");
    assert!(connect_over_tls(&pki, port, Some("rogue")).is_err());
    let line = b.wait_for("TLS Error from");
    assert!(line.contains(": invalid peer certificate"), "{line}");

    // A certificate without a CN has no user name to give: CONNACK 4, as mosquitto answers.
    assert_eq!(connect_over_tls(&pki, port, Some("client-no-cn")), Ok(4));

    if have_mosquitto_clients() {
        let cert = [
            "--cert",
            &pki.path("client.pem"),
            "--key",
            &pki.path("client.key"),
        ];
        let ca = pki.path("ca.pem");
        let sub = mosquitto(
            "mosquitto_sub",
            port,
            Some(&ca),
            &["-t", "t", "-C", "1", "-W", "10"],
        )
        .args(cert)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
        b.wait_for("Sending SUBACK");
        let st = mosquitto(
            "mosquitto_pub",
            port,
            Some(&ca),
            &["-t", "t", "-m", "signed"],
        )
        .args(cert)
        .status()
        .unwrap();
        assert!(st.success());
        let out = sub.wait_with_output().unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "signed\n");
        // Without its certificate mosquitto_pub is turned away.
        let st = mosquitto("mosquitto_pub", port, Some(&ca), &["-t", "t", "-m", "x"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(!st.success());
    }
    assert!(b.interrupt().success());
}

#[test]
fn a_bad_tls_file_stops_the_broker_at_its_line() {
    let pki = Pki::new("cli-bad");
    let conf_path = pki.path("mosquitto.conf");
    let missing = pki.path("missing.pem");
    std::fs::write(
        &conf_path,
        format!(
            "listener 0 127.0.0.1\ncertfile {missing}\nkeyfile {}\n",
            pki.path("server.key")
        ),
    )
    .unwrap();
    let err = broker_refuses(std::path::Path::new(&conf_path));
    assert!(
        err.contains(&format!(
            "Error in config file {conf_path}: line 2: Unable to load server certificate \"{missing}\". Check certfile: No such file"
        )),
        "{err}"
    );
    assert!(!err.contains("running"), "{err}");

    // A key that is not the certificate's.
    std::fs::write(
        &conf_path,
        format!(
            "listener 0 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            pki.path("server.pem"),
            pki.path("client.key")
        ),
    )
    .unwrap();
    let err = broker_refuses(std::path::Path::new(&conf_path));
    assert!(
        err.contains("line 3: Server certificate/key are inconsistent"),
        "{err}"
    );
}

/// A raw TCP client that sends garbage instead of a TLS ClientHello is closed, and the broker
/// serves the next one.
#[test]
fn garbage_on_a_tls_listener_closes_that_connection_only() {
    let pki = Pki::new("cli-garbage");
    let conf = format!(
        "allow_anonymous true\nlistener 0 127.0.0.1\n{}",
        tls_keys(&pki)
    );
    let b = start(&pki, &conf);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0])
        .unwrap();
    // The broker answers with a TLS alert at most, then closes.
    let mut rest = Vec::new();
    let _ = tcp.read_to_end(&mut rest);
    assert!(rest.len() < 16, "{rest:?}");
    b.wait_for("TLS Error from");
    b.wait_for("Client <unknown> disconnected due to protocol error.");
    assert_eq!(connect_over_tls(&pki, b.port, None), Ok(0));
    assert!(b.interrupt().success());
}

/// MQTT's remaining-length encoding.
fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

/// A message larger than the socket buffers reaches a TLS subscriber that starts reading only
/// after the broker has written all it could: the TLS layer's buffered tail is flushed, not left
/// behind until some later write.
#[test]
fn a_large_message_reaches_a_slow_tls_subscriber_whole() {
    // More than the broker's socket can hold (Linux lets a send buffer grow to 4 MiB) with the
    // subscriber's receive buffer kept small.
    const PAYLOAD_BYTES: usize = 8_000_000;
    let pki = Pki::new("cli-large");
    let conf = format!(
        "allow_anonymous true\nmax_packet_size 9000000\n\
         listener 0 127.0.0.1\nlistener 0 127.0.0.1\n{}",
        tls_keys(&pki)
    );
    let b = start(&pki, &conf);
    let [plain, tls_port] = ports(&b)[..] else {
        panic!("two listeners: {:#?}", b.log());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut sub = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket
            .connect(([127, 0, 0, 1], tls_port).into())
            .await
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = pki.connector(None).connect(name, tcp).await.unwrap();
        tls.write_all(CONNECT_DEV_CLAIMED).await.unwrap();
        // SUBSCRIBE packet id 1, "big" at QoS 0.
        tls.write_all(&[0x82, 8, 0, 1, 0, 3, b'b', b'i', b'g', 0])
            .await
            .unwrap();
        let mut acks = [0u8; 4 + 5];
        tls.read_exact(&mut acks).await.unwrap();
        assert_eq!(acks, [0x20, 2, 0, 0, 0x90, 3, 0, 1, 0], "CONNACK, SUBACK");
        tls
    });
    b.wait_for("Sending SUBACK");

    let mut publish = vec![0x30];
    remaining_length(2 + 3 + PAYLOAD_BYTES, &mut publish);
    publish.extend_from_slice(&[0, 3, b'b', b'i', b'g']);
    publish.extend((0..PAYLOAD_BYTES).map(|i| (i % 251) as u8));
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", plain)).unwrap();
    tcp.write_all(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0])
        .unwrap();
    tcp.write_all(&publish).unwrap();
    b.wait_for("Sending PUBLISH to dev");
    // Let the broker write until the socket is full, before the subscriber reads anything.
    std::thread::sleep(Duration::from_millis(500));

    let got = rt.block_on(async {
        let mut got = vec![0u8; publish.len()];
        tokio::time::timeout(Duration::from_secs(10), sub.read_exact(&mut got))
            .await
            .expect("the whole PUBLISH within 10 s")
            .unwrap();
        got
    });
    assert!(got == publish, "the PUBLISH arrives as sent");
    assert!(b.interrupt().success());
}

/// A failed handshake is an error line: `log_type error` (no notices) still shows it.
#[test]
fn a_tls_error_is_logged_under_log_type_error() {
    use std::io::BufRead;
    let pki = Pki::new("log-type-error");
    let conf = format!(
        "log_type error\nallow_anonymous true\nlistener 0 127.0.0.1\n{}",
        tls_keys(&pki)
    );
    let path = pki.path("mosquitto.conf");
    std::fs::write(&path, conf).unwrap();
    // A free port for -p: nothing says which port 0 picked under `log_type error`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .args(["broker", "-c", &path, "-p", &port.to_string()])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut s = (0..500)
        .find_map(|_| {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map_err(|_| std::thread::sleep(Duration::from_millis(20)))
                .ok()
        })
        .expect("the broker listens");
    // Not TLS: a plain CONNECT is a handshake error.
    s.write_all(CONNECT_DEV_CLAIMED).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let tls_error = line.contains("TLS Error from 127.0.0.1:");
        seen.push(line);
        if tls_error {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let last = seen.last().cloned().unwrap_or_default();
    assert!(
        last.contains("TLS Error from 127.0.0.1:") && last.contains(&format!(" on port {port}: ")),
        "{seen:#?}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("Opening ")),
        "notices are not logged: {seen:#?}"
    );
}
