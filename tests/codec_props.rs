//! Property tests for the codec and the topic rules.
//!
//! * every packet type: arbitrary valid packets encode, decode back equal, and `encoded_len` agrees;
//! * arbitrary and mutated bytes never panic the decoder, and whatever it accepts re-encodes to a
//!   packet it accepts again, equal; prefixes and the size limit behave consistently;
//! * a valid stream cut into arbitrary chunks decodes to the same packets;
//! * `topic::matches`, `SubscriptionTree` and `valid_topic_filter` agree with small reference models.
#![cfg(feature = "alloc")]

use std::collections::{BTreeMap, BTreeSet};

use mqsim::codec::{
    decode, encode, encode_to_vec, parse_fixed_header, ConnAck, Connect, ConnectReturnCode,
    DecodeError, Decoded, EncodeError, Packet, Protocol, Publish, QoS, SubAck, Subscribe,
    SubscribeFilters, UnsubAck, Unsubscribe, UnsubscribeTopics, Will, SUBACK_FAILURE,
};
use mqsim::limits::TOPIC_LEVELS_MAX;
use mqsim::topic::{matches, valid_topic_filter, valid_topic_name, SubscriptionTree};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

// =============================================================================================
// Owned packets: the codec borrows, so strategies produce owned data and lend it out.

#[derive(Clone, Debug)]
struct OwnedWill {
    topic: String,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
}

#[derive(Clone, Debug)]
enum Owned {
    Connect {
        protocol: Protocol,
        clean_session: bool,
        keep_alive_s: u16,
        client_id: String,
        will: Option<OwnedWill>,
        username: Option<String>,
        password: Option<Vec<u8>>,
    },
    ConnAck(ConnAck),
    Publish {
        dup: bool,
        qos: QoS,
        retain: bool,
        topic: String,
        pkid: u16,
        payload: Vec<u8>,
    },
    PubAck(u16),
    PubRec(u16),
    PubRel(u16),
    PubComp(u16),
    Subscribe {
        pkid: u16,
        filters: Vec<(String, QoS)>,
    },
    SubAck {
        pkid: u16,
        codes: Vec<u8>,
    },
    Unsubscribe {
        pkid: u16,
        topics: Vec<String>,
    },
    UnsubAck(u16),
    PingReq,
    PingResp,
    Disconnect,
}

impl Owned {
    /// Calls `f` with the borrowed packet (list-backed SUBSCRIBE/UNSUBSCRIBE need a local slice).
    fn with<R>(&self, f: impl FnOnce(&Packet<'_>) -> R) -> R {
        match self {
            Owned::Connect {
                protocol,
                clean_session,
                keep_alive_s,
                client_id,
                will,
                username,
                password,
            } => f(&Packet::Connect(Connect {
                protocol: *protocol,
                clean_session: *clean_session,
                keep_alive_s: *keep_alive_s,
                client_id,
                will: will.as_ref().map(|w| Will {
                    topic: &w.topic,
                    payload: &w.payload,
                    qos: w.qos,
                    retain: w.retain,
                }),
                username: username.as_deref(),
                password: password.as_deref(),
            })),
            Owned::ConnAck(c) => f(&Packet::ConnAck(*c)),
            Owned::Publish {
                dup,
                qos,
                retain,
                topic,
                pkid,
                payload,
            } => f(&Packet::Publish(Publish {
                dup: *dup,
                qos: *qos,
                retain: *retain,
                topic,
                pkid: *pkid,
                payload,
            })),
            Owned::PubAck(id) => f(&Packet::PubAck(*id)),
            Owned::PubRec(id) => f(&Packet::PubRec(*id)),
            Owned::PubRel(id) => f(&Packet::PubRel(*id)),
            Owned::PubComp(id) => f(&Packet::PubComp(*id)),
            Owned::Subscribe { pkid, filters } => {
                let list: Vec<(&str, QoS)> =
                    filters.iter().map(|(s, q)| (s.as_str(), *q)).collect();
                f(&Packet::Subscribe(Subscribe {
                    pkid: *pkid,
                    filters: SubscribeFilters::List(&list),
                }))
            }
            Owned::SubAck { pkid, codes } => f(&Packet::SubAck(SubAck { pkid: *pkid, codes })),
            Owned::Unsubscribe { pkid, topics } => {
                let list: Vec<&str> = topics.iter().map(String::as_str).collect();
                f(&Packet::Unsubscribe(Unsubscribe {
                    pkid: *pkid,
                    topics: UnsubscribeTopics::List(&list),
                }))
            }
            Owned::UnsubAck(id) => f(&Packet::UnsubAck(UnsubAck { pkid: *id })),
            Owned::PingReq => f(&Packet::PingReq),
            Owned::PingResp => f(&Packet::PingResp),
            Owned::Disconnect => f(&Packet::Disconnect),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.with(|p| {
            let mut v = Vec::new();
            let n = encode_to_vec(p, &mut v)
                .unwrap_or_else(|e| panic!("valid {p:?} failed to encode: {e}"));
            assert_eq!(n, v.len());
            v
        })
    }
}

// =============================================================================================
// Strategies for valid packets.

const MAX: usize = usize::MAX;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn pkid() -> impl Strategy<Value = u16> {
    prop_oneof![Just(1u16), Just(u16::MAX), 1..=u16::MAX]
}

/// Any UTF-8 string without U+0000 (MQTT-1.5.3-2), including multi-byte characters.
fn utf8() -> impl Strategy<Value = String> {
    prop_oneof!["[^\\x00]{0,12}", "[a-zA-Z0-9/ $+#_-]{0,12}", "\\PC{0,6}"]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    // Mostly short; sometimes long enough for a two-byte remaining length.
    prop_oneof![4 => vec(any::<u8>(), 0..24), 1 => vec(any::<u8>(), 120..300)]
}

/// A valid topic name: non-empty, no wildcards, no U+0000.
fn topic_name() -> impl Strategy<Value = String> {
    let structured = vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just(""),
            Just("$SYS"),
            Just("ESP32"),
            Just("TEM"),
            Just("é€")
        ],
        1..5,
    )
    .prop_map(|levels| levels.join("/"))
    .prop_filter("non-empty", |s| !s.is_empty());
    prop_oneof![structured, "[^\\x00+#]{1,16}"]
}

/// A syntactically valid topic filter.
fn topic_filter() -> impl Strategy<Value = String> {
    (
        vec(
            prop_oneof![
                Just("a"),
                Just("b"),
                Just(""),
                Just("$SYS"),
                Just("ESP32"),
                Just("+"),
                Just("ü")
            ],
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#");
            }
            levels.join("/")
        })
        .prop_filter("non-empty", |f| !f.is_empty())
}

fn connect() -> impl Strategy<Value = Owned> {
    let will = proptest::option::of((topic_name(), bytes(), qos(), any::<bool>())).prop_map(|w| {
        w.map(|(topic, payload, qos, retain)| OwnedWill {
            topic,
            payload,
            qos,
            retain,
        })
    });
    // 3.1.1 forbids a password without a user name (MQTT-3.1.2-22).
    let credentials = prop_oneof![
        Just((None, None)),
        utf8().prop_map(|u| (Some(u), None)),
        (utf8(), bytes()).prop_map(|(u, p)| (Some(u), Some(p))),
    ];
    (
        prop_oneof![Just(Protocol::V311), Just(Protocol::V31)],
        any::<bool>(),
        any::<u16>(),
        utf8(),
        will,
        credentials,
    )
        .prop_map(
            |(protocol, clean_session, keep_alive_s, client_id, will, (username, password))| {
                Owned::Connect {
                    protocol,
                    clean_session,
                    keep_alive_s,
                    client_id,
                    will,
                    username,
                    password,
                }
            },
        )
}

fn connack() -> impl Strategy<Value = Owned> {
    (any::<bool>(), 0u8..=5).prop_map(|(session_present, code)| {
        Owned::ConnAck(ConnAck {
            session_present,
            code: ConnectReturnCode::from_u8(code).unwrap(),
        })
    })
}

fn publish() -> impl Strategy<Value = Owned> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        pkid(),
        bytes(),
    )
        .prop_map(|(dup, qos, retain, topic, pkid, payload)| {
            let at_most_once = qos == QoS::AtMostOnce;
            Owned::Publish {
                // DUP only with QoS > 0 (MQTT-3.3.1-2); no packet id at QoS 0.
                dup: dup && !at_most_once,
                qos,
                retain,
                topic,
                pkid: if at_most_once { 0 } else { pkid },
                payload,
            }
        })
}

fn subscribe() -> impl Strategy<Value = Owned> {
    // The codec carries filters as strings; validating them is the broker's job (SUBACK 0x80).
    let filter = prop_oneof![3 => topic_filter(), 1 => utf8()];
    (pkid(), vec((filter, qos()), 1..6))
        .prop_map(|(pkid, filters)| Owned::Subscribe { pkid, filters })
}

fn suback() -> impl Strategy<Value = Owned> {
    let code = prop_oneof![Just(0u8), Just(1), Just(2), Just(SUBACK_FAILURE)];
    (pkid(), vec(code, 1..8)).prop_map(|(pkid, codes)| Owned::SubAck { pkid, codes })
}

fn unsubscribe() -> impl Strategy<Value = Owned> {
    let filter = prop_oneof![3 => topic_filter(), 1 => utf8()];
    (pkid(), vec(filter, 1..6)).prop_map(|(pkid, topics)| Owned::Unsubscribe { pkid, topics })
}

fn any_packet() -> impl Strategy<Value = Owned> {
    prop_oneof![
        connect(),
        connack(),
        publish(),
        pkid().prop_map(Owned::PubAck),
        pkid().prop_map(Owned::PubRec),
        pkid().prop_map(Owned::PubRel),
        pkid().prop_map(Owned::PubComp),
        subscribe(),
        suback(),
        unsubscribe(),
        pkid().prop_map(Owned::UnsubAck),
        Just(Owned::PingReq),
        Just(Owned::PingResp),
        Just(Owned::Disconnect),
    ]
}

// =============================================================================================
// (a) Round trips.

/// Encodes `o` every way the codec offers and checks the bytes decode back to the same packet.
fn check_roundtrip(o: &Owned) -> Result<(), TestCaseError> {
    let bytes = o.to_bytes();
    o.with(|p| {
        prop_assert_eq!(p.encoded_len(), Ok(bytes.len()));
        // encode into an exact buffer writes the same bytes; one byte less reports the size.
        let mut exact = vec![0u8; bytes.len()];
        prop_assert_eq!(encode(p, &mut exact), Ok(bytes.len()));
        prop_assert_eq!(&exact, &bytes);
        let mut short = vec![0u8; bytes.len() - 1];
        prop_assert_eq!(
            encode(p, &mut short),
            Err(EncodeError::BufferTooSmall {
                required: bytes.len()
            })
        );
        // encode_to_vec appends.
        let mut appended = vec![0xAA, 0xBB];
        prop_assert_eq!(encode_to_vec(p, &mut appended), Ok(bytes.len()));
        prop_assert_eq!(&appended[..2], &[0xAA, 0xBB]);
        prop_assert_eq!(&appended[2..], &bytes[..]);
        // Fixed-header type nibble matches the packet.
        let expected_type = match p {
            Packet::Connect(_) => 1,
            Packet::ConnAck(_) => 2,
            Packet::Publish(_) => 3,
            Packet::PubAck(_) => 4,
            Packet::PubRec(_) => 5,
            Packet::PubRel(_) => 6,
            Packet::PubComp(_) => 7,
            Packet::Subscribe(_) => 8,
            Packet::SubAck(_) => 9,
            Packet::Unsubscribe(_) => 10,
            Packet::UnsubAck(_) => 11,
            Packet::PingReq => 12,
            Packet::PingResp => 13,
            Packet::Disconnect => 14,
        };
        prop_assert_eq!(bytes[0] >> 4, expected_type);
        // Decode: the same packet, all bytes consumed.
        match decode(&bytes, MAX) {
            Ok(Decoded::Packet(d, n)) => {
                prop_assert_eq!(&d, p);
                prop_assert_eq!(n, bytes.len());
            }
            other => prop_assert!(
                false,
                "{:?} encoded as {:02x?} decoded as {:?}",
                p,
                bytes,
                other
            ),
        }
        // The size limit admits exactly the frame.
        prop_assert!(matches!(
            decode(&bytes, bytes.len()),
            Ok(Decoded::Packet(_, _))
        ));
        prop_assert_eq!(
            decode(&bytes, bytes.len() - 1),
            Err(DecodeError::PacketTooLarge {
                size: bytes.len(),
                max: bytes.len() - 1
            })
        );
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn roundtrip_any_packet(o in any_packet()) {
        check_roundtrip(&o)?;
    }
}

proptest! {
    #[test]
    fn roundtrip_connect(o in connect()) {
        check_roundtrip(&o)?;
    }

    #[test]
    fn roundtrip_publish(o in publish()) {
        check_roundtrip(&o)?;
    }

    #[test]
    fn roundtrip_subscribe(o in subscribe()) {
        check_roundtrip(&o)?;
        // The decoded form lists the filters in order, with their QoS.
        let Owned::Subscribe { filters, .. } = &o else { unreachable!() };
        let bytes = o.to_bytes();
        let Ok(Decoded::Packet(Packet::Subscribe(s), _)) = decode(&bytes, MAX) else { panic!("not a SUBSCRIBE") };
        let got: Vec<(String, QoS)> = s.filters.iter().map(|(f, q)| (f.to_owned(), q)).collect();
        prop_assert_eq!(&got, filters);
        prop_assert_eq!(s.filters.len(), filters.len());
    }

    #[test]
    fn roundtrip_unsubscribe(o in unsubscribe()) {
        check_roundtrip(&o)?;
        let Owned::Unsubscribe { topics, .. } = &o else { unreachable!() };
        let bytes = o.to_bytes();
        let Ok(Decoded::Packet(Packet::Unsubscribe(u), _)) = decode(&bytes, MAX) else { panic!("not an UNSUBSCRIBE") };
        let got: Vec<&str> = u.topics.iter().collect();
        prop_assert_eq!(got, topics.iter().map(String::as_str).collect::<Vec<_>>());
    }

    #[test]
    fn roundtrip_suback(o in suback()) {
        check_roundtrip(&o)?;
    }
}

// =============================================================================================
// (b) Arbitrary and mutated input.

/// What must hold for any input: no panic; an accepted packet lies within the input, re-encodes,
/// and decodes again to itself; prefixes and size limits are consistent with the whole.
fn check_decode_sane(buf: &[u8], max: usize) -> Result<(), TestCaseError> {
    let whole = decode(buf, MAX);
    match &whole {
        Ok(Decoded::Packet(p, n)) => {
            let n = *n;
            prop_assert!(n <= buf.len() && n >= 2, "consumed {} of {}", n, buf.len());
            let mut v = Vec::new();
            let len = encode_to_vec(p, &mut v);
            prop_assert!(
                len.is_ok(),
                "decoded {:?} from {:02x?} but cannot re-encode: {:?}",
                p,
                buf,
                len
            );
            prop_assert_eq!(p.encoded_len(), Ok(v.len()));
            // Re-encoding uses the minimal remaining length, so it is never longer than the input.
            prop_assert!(v.len() <= n);
            prop_assert_eq!(decode(&v, MAX), Ok(Decoded::Packet(p.clone(), v.len())));
            // Nothing is lost or normalised: apart from a non-minimal remaining length, the
            // re-encoding is the accepted input byte for byte.
            let h_in = parse_fixed_header(buf).unwrap().unwrap();
            let h_out = parse_fixed_header(&v).unwrap().unwrap();
            prop_assert_eq!(h_out.byte1, h_in.byte1);
            prop_assert_eq!(h_out.remaining_len, h_in.remaining_len);
            prop_assert_eq!(&v[h_out.header_len..], &buf[h_in.header_len..n]);
            // Bytes after the frame don't matter.
            prop_assert_eq!(decode(&buf[..n], MAX), Ok(Decoded::Packet(p.clone(), n)));
            // The limit admits the frame or rejects it by its whole size.
            if max >= n {
                prop_assert_eq!(decode(buf, max), Ok(Decoded::Packet(p.clone(), n)));
            } else {
                prop_assert_eq!(
                    decode(buf, max),
                    Err(DecodeError::PacketTooLarge { size: n, max })
                );
            }
        }
        Ok(Decoded::NeedMore(k)) => {
            prop_assert!(*k >= 1);
            if buf.len() < 2 {
                // Type byte and first length byte.
                prop_assert_eq!(*k, 2 - buf.len());
            }
        }
        Err(_) => {}
    }
    // Each prefix either needs more, or already gives the whole input's answer; and a NeedMore(k)
    // promise holds: fewer than k further bytes don't change the answer.
    let mut promised_until = 0;
    for end in 0..buf.len() {
        let r = decode(&buf[..end], MAX);
        match r {
            Ok(Decoded::NeedMore(k)) => {
                prop_assert!(k >= 1);
                promised_until = promised_until.max(end + k);
            }
            ref other => {
                prop_assert!(
                    end >= promised_until,
                    "prefix {} broke a NeedMore promise up to {}",
                    end,
                    promised_until
                );
                prop_assert_eq!(other, &whole, "prefix {} of {:02x?}", end, buf);
            }
        }
    }
    if !matches!(whole, Ok(Decoded::NeedMore(_))) {
        prop_assert!(
            buf.len() >= promised_until,
            "whole input broke a NeedMore promise up to {}",
            promised_until
        );
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, u8),
    Delete(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, bit)| Mutation::Flip(i, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

impl Mutation {
    fn apply(&self, b: &mut Vec<u8>) {
        match self {
            Mutation::Insert(i, v) => b.insert(i.index(b.len() + 1), *v),
            _ if b.is_empty() => {}
            Mutation::Flip(i, bit) => {
                let i = i.index(b.len());
                b[i] ^= 1 << bit;
            }
            Mutation::Set(i, v) => {
                let i = i.index(b.len());
                b[i] = *v;
            }
            Mutation::Delete(i) => {
                b.remove(i.index(b.len()));
            }
            Mutation::Truncate(i) => b.truncate(i.index(b.len())),
        }
    }
}

fn mutated_packet() -> impl Strategy<Value = Vec<u8>> {
    (any_packet(), vec(mutation(), 1..4)).prop_map(|(o, muts)| {
        let mut b = o.to_bytes();
        for m in &muts {
            m.apply(&mut b);
        }
        b
    })
}

/// A well-formed fixed header (any first byte, correct length) around a random body: gets past
/// framing into the body parsers far more often than fully random bytes.
fn framed_random_body() -> impl Strategy<Value = Vec<u8>> {
    (any::<u8>(), vec(any::<u8>(), 0..64)).prop_map(|(byte1, body)| {
        let mut v = vec![byte1];
        let mut x = body.len();
        loop {
            let mut b = (x % 128) as u8;
            x /= 128;
            if x > 0 {
                b |= 0x80;
            }
            v.push(b);
            if x == 0 {
                break;
            }
        }
        v.extend_from_slice(&body);
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(buf in vec(any::<u8>(), 0..300), max in prop_oneof![Just(MAX), 0usize..400]) {
        check_decode_sane(&buf, max)?;
    }

    #[test]
    fn framed_random_bodies_never_panic(buf in framed_random_body(), max in prop_oneof![Just(MAX), 0usize..100]) {
        check_decode_sane(&buf, max)?;
    }

    #[test]
    fn mutated_packets_never_panic(buf in mutated_packet(), max in prop_oneof![Just(MAX), 0usize..400]) {
        check_decode_sane(&buf, max)?;
    }

    #[test]
    fn valid_packets_pass_sanity(o in any_packet()) {
        let mut bytes = o.to_bytes();
        check_decode_sane(&bytes, MAX)?;
        bytes.extend_from_slice(&[0x30, 0x05]);
        check_decode_sane(&bytes, MAX)?;
    }
}

// =============================================================================================
// (c) A stream in arbitrary chunks.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn chunked_stream_yields_same_packets(
        packets in vec(any_packet(), 1..8),
        chunks in vec(1usize..40, 1..64),
    ) {
        let frames: Vec<Vec<u8>> = packets.iter().map(Owned::to_bytes).collect();
        let stream: Vec<u8> = frames.concat();
        let mut buffered: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut next = 0; // index of the next expected packet
        let mut chunk_sizes = chunks.iter().copied().cycle();
        while fed < stream.len() {
            let take = chunk_sizes.next().unwrap().min(stream.len() - fed);
            buffered.extend_from_slice(&stream[fed..fed + take]);
            fed += take;
            while !buffered.is_empty() {
                match decode(&buffered, MAX) {
                    Ok(Decoded::Packet(p, n)) => {
                        prop_assert!(next < packets.len(), "more packets than sent");
                        packets[next].with(|e| {
                            prop_assert_eq!(&p, e);
                            prop_assert_eq!(n, frames[next].len());
                            Ok(())
                        })?;
                        buffered.drain(..n);
                        next += 1;
                    }
                    Ok(Decoded::NeedMore(k)) => {
                        // Never asks for bytes past the end of the current frame.
                        prop_assert!(k >= 1);
                        prop_assert!(next < packets.len());
                        prop_assert!(buffered.len() + k <= frames[next].len(),
                            "buffered {} + need {} > frame {}", buffered.len(), k, frames[next].len());
                        break;
                    }
                    Err(e) => prop_assert!(false, "valid stream rejected: {:?}", e),
                }
            }
        }
        prop_assert_eq!(next, packets.len());
        prop_assert!(buffered.is_empty());
    }
}

// =============================================================================================
// (d) Topic rules against reference models.

/// Reference matcher, written from MQTT 3.1.1 section 4.7 level by level.
fn ref_matches(filter: &str, name: &str) -> bool {
    fn rec(f: &[&str], n: &[&str]) -> bool {
        match (f, n) {
            ([], []) => true,
            // "#" is last and matches the parent level and any number of child levels.
            (["#"], _) => true,
            (["+", f_rest @ ..], [_, n_rest @ ..]) => rec(f_rest, n_rest),
            ([fl, f_rest @ ..], [nl, n_rest @ ..]) => fl == nl && rec(f_rest, n_rest),
            _ => false,
        }
    }
    let f: Vec<&str> = filter.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    // MQTT-4.7.2-1: a filter starting with a wildcard never matches a name starting with '$'.
    if name.starts_with('$') && (f[0] == "+" || f[0] == "#") {
        return false;
    }
    rec(&f, &n)
}

/// Reference filter validator: non-empty, no U+0000, `+` and `#` only as whole levels, `#` last,
/// and at most TOPIC_LEVELS_MAX levels (the crate's documented routing bound).
fn ref_valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    if levels.len() > TOPIC_LEVELS_MAX {
        return false;
    }
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

fn ref_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', '#', '\0'])
}

const LEVELS: [&str; 8] = ["a", "b", "$SYS", "", "ESP32", "$", "TEM", "a b"];

fn name_level() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(&LEVELS[..])
}

fn small_name() -> impl Strategy<Value = String> {
    vec(name_level(), 1..5)
        .prop_map(|l| l.join("/"))
        .prop_filter("valid name", |s| !s.is_empty())
}

fn small_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![4 => name_level(), 2 => Just("+")];
    (vec(level, 0..5), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#");
            }
            levels.join("/")
        })
        .prop_filter("valid filter", |f| !f.is_empty())
}

/// Filters that may be invalid: misplaced or partial wildcards, empty, NUL, or too deep.
fn maybe_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        4 => name_level(),
        2 => Just("+"),
        2 => Just("#"),
        1 => Just("a+"),
        1 => Just("#b"),
        1 => Just("+#"),
        1 => Just("\0"),
    ];
    prop_oneof![
        8 => vec(level, 0..6).prop_map(|l| l.join("/")),
        1 => (TOPIC_LEVELS_MAX - 2..TOPIC_LEVELS_MAX + 3, prop_oneof![Just("a"), Just("+"), Just("#")])
            .prop_map(|(n, last)| {
                let mut l = vec!["a"; n - 1];
                l.push(last);
                l.join("/")
            }),
        1 => "[^/]{0,3}(/[^/]{0,3}){0,3}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_agrees_with_reference(filter in small_filter(), name in small_name()) {
        prop_assert!(valid_topic_filter(&filter), "{}", filter);
        prop_assert!(valid_topic_name(&name), "{}", name);
        prop_assert_eq!(matches(&filter, &name), ref_matches(&filter, &name), "filter {:?} name {:?}", filter, name);
    }

    #[test]
    fn exact_filter_matches_its_name(name in small_name()) {
        // A name used as a filter matches itself; "#" matches it unless it starts with '$'.
        prop_assert!(matches(&name, &name));
        prop_assert_eq!(matches("#", &name), !name.starts_with('$'));
    }

    #[test]
    fn filter_validity_agrees_with_reference(filter in maybe_filter()) {
        prop_assert_eq!(valid_topic_filter(&filter), ref_valid_filter(&filter), "{:?}", filter);
    }

    #[test]
    fn name_validity_agrees_with_reference(name in prop_oneof![maybe_filter(), small_name(), "\\PC{0,8}"]) {
        prop_assert_eq!(valid_topic_name(&name), ref_valid_name(&name), "{:?}", name);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tree_agrees_with_reference(
        subs in vec((small_filter(), 0u32..6, qos()), 0..16),
        names in vec(small_name(), 1..8),
        removals in vec((any::<Index>(), any::<bool>()), 0..10),
    ) {
        let mut tree = SubscriptionTree::new();
        // Model: (filter, key) -> granted QoS; a repeated pair replaces the QoS.
        let mut model: BTreeMap<(String, u32), QoS> = BTreeMap::new();
        for (filter, key, q) in &subs {
            let new = tree.insert(filter, *key, *q);
            prop_assert_eq!(new, model.insert((filter.clone(), *key), *q).is_none());
        }
        prop_assert_eq!(tree.len(), model.len());
        prop_assert_eq!(tree.is_empty(), model.is_empty());

        let check = |tree: &SubscriptionTree<u32>, model: &BTreeMap<(String, u32), QoS>| -> Result<(), TestCaseError> {
            for name in &names {
                let mut got = Vec::new();
                tree.matches(name, &mut got);
                got.sort();
                let mut want: Vec<(u32, QoS)> = model
                    .iter()
                    .filter(|((f, _), _)| ref_matches(f, name))
                    .map(|((_, k), q)| (*k, *q))
                    .collect();
                want.sort();
                prop_assert_eq!(&got, &want, "name {:?} subs {:?}", name, model);
                // The tree and the plain matcher agree too.
                let plain: BTreeSet<(String, u32)> =
                    model.keys().filter(|(f, _)| matches(f, name)).cloned().collect();
                let from_tree: BTreeSet<u32> = got.iter().map(|(k, _)| *k).collect();
                prop_assert_eq!(from_tree, plain.iter().map(|(_, k)| *k).collect::<BTreeSet<u32>>());
            }
            Ok(())
        };
        check(&tree, &model)?;

        // Remove some existing subscriptions and some that were never there.
        for (i, existing) in &removals {
            if *existing && !model.is_empty() {
                let (f, k) = model.keys().nth(i.index(model.len())).unwrap().clone();
                prop_assert!(tree.remove(&f, k));
                model.remove(&(f, k));
            } else {
                let (f, k) = (subs.get(i.index(subs.len().max(1))).map_or("x/y", |s| s.0.as_str()), 99);
                prop_assert!(!tree.remove(f, k));
            }
            prop_assert_eq!(tree.len(), model.len());
        }
        check(&tree, &model)?;

        // Removing everything empties the tree.
        for (f, k) in model.keys() {
            prop_assert!(tree.remove(f, *k));
        }
        prop_assert!(tree.is_empty());
        for name in &names {
            let mut got = Vec::new();
            tree.matches(name, &mut got);
            prop_assert!(got.is_empty());
        }
    }
}

// =============================================================================================
// Remaining-length encoding at its byte-count boundaries.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn remaining_length_encoding(body_len in prop_oneof![
        proptest::sample::select(vec![
            3usize, 126, 127, 128, 129, 16_382, 16_383, 16_384, 16_385, 2_097_151, 2_097_152,
        ]),
        3usize..20_000,
    ]) {
        // PUBLISH QoS 0 to "t": the body is the 3-byte topic field plus the payload.
        let payload = vec![0x5A; body_len - 3];
        let p = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            pkid: 0,
            payload: &payload,
        });
        let length_bytes = match body_len {
            0..=127 => 1,
            128..=16_383 => 2,
            16_384..=2_097_151 => 3,
            _ => 4,
        };
        let mut v = Vec::new();
        prop_assert_eq!(encode_to_vec(&p, &mut v), Ok(1 + length_bytes + body_len));
        prop_assert_eq!(p.encoded_len(), Ok(v.len()));
        // Decode the length field independently: 7 bits per byte, least significant first, the
        // top bit set on every byte but the last.
        let field = &v[1..1 + length_bytes];
        let mut value = 0usize;
        for (i, b) in field.iter().enumerate() {
            prop_assert_eq!(b & 0x80 != 0, i + 1 < length_bytes);
            value |= usize::from(b & 0x7F) << (7 * i);
        }
        prop_assert_eq!(value, body_len);
        prop_assert_eq!(decode(&v, MAX), Ok(Decoded::Packet(p, v.len())));
    }
}

// =============================================================================================
// Encoder error paths that need an allocator.

#[test]
fn encode_to_vec_leaves_vec_unchanged_on_error() {
    let mut v = vec![1u8, 2, 3];
    assert_eq!(
        encode_to_vec(&Packet::PubAck(0), &mut v),
        Err(EncodeError::ZeroPacketId)
    );
    assert_eq!(v, [1, 2, 3]);
    let wildcard = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "a/#",
        pkid: 0,
        payload: b"",
    });
    assert_eq!(
        encode_to_vec(&wildcard, &mut v),
        Err(EncodeError::InvalidField)
    );
    assert_eq!(v, [1, 2, 3]);
}

#[test]
fn encode_rejects_remaining_length_beyond_four_bytes() {
    // A zeroed allocation is not touched by encoded_len, so this stays cheap.
    let max = mqsim::limits::REMAINING_LENGTH_MAX_BYTES;
    let payload = vec![0u8; max - 3 + 1];
    let publish = |payload| {
        Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            pkid: 0,
            payload,
        })
    };
    assert_eq!(
        publish(&payload[..]).encoded_len(),
        Err(EncodeError::PacketTooLarge(max + 1))
    );
    let mut v = Vec::new();
    assert_eq!(
        encode_to_vec(&publish(&payload[..]), &mut v),
        Err(EncodeError::PacketTooLarge(max + 1))
    );
    assert!(v.is_empty());
    let mut small = [0u8; 16];
    assert_eq!(
        encode(&publish(&payload[..]), &mut small),
        Err(EncodeError::PacketTooLarge(max + 1))
    );
    // The largest encodable packet: four length bytes.
    assert_eq!(publish(&payload[..max - 3]).encoded_len(), Ok(1 + 4 + max));
}
