//! Byte-vector tests named by specification statement. Property tests live in tests/codec_props.rs.
//!
//! Every test works without an allocator (the codec is `no_std`), so vectors are arrays and
//! encoding goes into stack buffers.

use super::*;

const MAX: usize = 1 << 20;

fn one(bytes: &[u8]) -> Result<Packet<'_>, DecodeError> {
    match decode(bytes, MAX)? {
        Decoded::Packet(p, n) => {
            assert_eq!(n, bytes.len());
            Ok(p)
        }
        Decoded::NeedMore(n) => panic!("need {n} more"),
    }
}

/// Decodes `bytes` as exactly `expected`, then checks that encoding it gives `bytes` back.
fn roundtrip(bytes: &[u8], expected: &Packet<'_>) {
    assert_eq!(one(bytes).as_ref(), Ok(expected));
    assert_eq!(expected.encoded_len(), Ok(bytes.len()));
    let mut buf = [0u8; 256];
    let n = encode(expected, &mut buf).unwrap();
    assert_eq!(&buf[..n], bytes);
}

fn encode_err(p: &Packet<'_>) -> EncodeError {
    let mut buf = [0u8; 256];
    encode(p, &mut buf).unwrap_err()
}

// ---------------------------------------------------------------------------------------------
// One known-good vector per packet type, decoded and re-encoded byte-identically.

/// CONNECT with every optional part: will (QoS 1, retain), user name, password, clean session.
const CONNECT_FULL: [u8; 32] = [
    0x10, 30, // fixed header
    0, 4, b'M', b'Q', b'T', b'T', 4,    // protocol name and level
    0xEE, // user, password, will retain, will QoS 1, will, clean session
    0, 60, // keep alive
    0, 3, b'e', b's', b'p', // client id
    0, 3, b'a', b'/', b'b', // will topic
    0, 1, b'x', // will payload
    0, 1, b'u', // user name
    0, 2, b'p', b'w', // password
];
const CONNACK: [u8; 4] = [0x20, 2, 0x01, 0x00];
const PUBLISH_QOS1: [u8; 11] = [0x3B, 9, 0, 3, b'a', b'/', b'b', 0x00, 0x0A, b'h', b'i'];
const PUBACK: [u8; 4] = [0x40, 2, 0x12, 0x34];
const PUBREC: [u8; 4] = [0x50, 2, 0x12, 0x35];
const PUBREL: [u8; 4] = [0x62, 2, 0x12, 0x36];
const PUBCOMP: [u8; 4] = [0x70, 2, 0x12, 0x37];
const SUBSCRIBE: [u8; 14] = [
    0x82, 12, 0x00, 0x0A, 0, 3, b'a', b'/', b'+', 0x01, 0, 1, b'#', 0x02,
];
const SUBACK: [u8; 7] = [0x90, 5, 0x00, 0x0A, 0x00, 0x02, 0x80];
const UNSUBSCRIBE: [u8; 12] = [0xA2, 10, 0x00, 0x0B, 0, 3, b'a', b'/', b'+', 0, 1, b'#'];
const UNSUBACK: [u8; 4] = [0xB0, 2, 0x00, 0x0B];
const PINGREQ: [u8; 2] = [0xC0, 0];
const PINGRESP: [u8; 2] = [0xD0, 0];
const DISCONNECT: [u8; 2] = [0xE0, 0];

/// All 14 known-good vectors, for the tests that loop over them.
const ALL_GOOD: [&[u8]; 14] = [
    &CONNECT_FULL,
    &CONNACK,
    &PUBLISH_QOS1,
    &PUBACK,
    &PUBREC,
    &PUBREL,
    &PUBCOMP,
    &SUBSCRIBE,
    &SUBACK,
    &UNSUBSCRIBE,
    &UNSUBACK,
    &PINGREQ,
    &PINGRESP,
    &DISCONNECT,
];

#[test]
fn known_good_connect() {
    let expected = Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 60,
        client_id: "esp",
        will: Some(Will {
            topic: "a/b",
            payload: b"x",
            qos: QoS::AtLeastOnce,
            retain: true,
        }),
        username: Some("u"),
        password: Some(b"pw"),
    });
    roundtrip(&CONNECT_FULL, &expected);
}

#[test]
fn known_good_connect_minimal() {
    // Empty client id, no flags but clean session, keep alive 0: the codec accepts it (the broker
    // decides about empty ids, MQTT-3.1.3-7).
    let bytes = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 0, 0, 0];
    let expected = Packet::Connect(Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "",
        will: None,
        username: None,
        password: None,
    });
    roundtrip(&bytes, &expected);
}

#[test]
fn known_good_connack() {
    roundtrip(
        &CONNACK,
        &Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::Accepted,
        }),
    );
    roundtrip(
        &[0x20, 2, 0x00, 0x05],
        &Packet::ConnAck(ConnAck {
            session_present: false,
            code: ConnectReturnCode::NotAuthorized,
        }),
    );
}

#[test]
fn known_good_publish() {
    let expected = Packet::Publish(Publish {
        dup: true,
        qos: QoS::AtLeastOnce,
        retain: true,
        topic: "a/b",
        pkid: 10,
        payload: b"hi",
    });
    roundtrip(&PUBLISH_QOS1, &expected);
}

#[test]
fn known_good_publish_qos0_and_qos2() {
    // QoS 0: no packet identifier on the wire (MQTT-2.3.1-5), empty payload allowed.
    roundtrip(
        &[0x30, 5, 0, 3, b'a', b'/', b'b'],
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "a/b",
            pkid: 0,
            payload: b"",
        }),
    );
    roundtrip(
        &[0x34, 8, 0, 1, b't', 0xFF, 0xFF, 1, 2, 3],
        &Packet::Publish(Publish {
            dup: false,
            qos: QoS::ExactlyOnce,
            retain: false,
            topic: "t",
            pkid: 0xFFFF,
            payload: &[1, 2, 3],
        }),
    );
}

#[test]
fn known_good_acks() {
    roundtrip(&PUBACK, &Packet::PubAck(0x1234));
    roundtrip(&PUBREC, &Packet::PubRec(0x1235));
    roundtrip(&PUBREL, &Packet::PubRel(0x1236));
    roundtrip(&PUBCOMP, &Packet::PubComp(0x1237));
    roundtrip(&UNSUBACK, &Packet::UnsubAck(UnsubAck { pkid: 11 }));
}

#[test]
fn known_good_subscribe() {
    let list = [("a/+", QoS::AtLeastOnce), ("#", QoS::ExactlyOnce)];
    let expected = Packet::Subscribe(Subscribe {
        pkid: 10,
        filters: SubscribeFilters::List(&list),
    });
    roundtrip(&SUBSCRIBE, &expected);
    // The decoded (wire) form iterates the same filters.
    let Ok(Packet::Subscribe(s)) = one(&SUBSCRIBE) else {
        panic!("not a SUBSCRIBE")
    };
    assert!(matches!(s.filters, SubscribeFilters::Wire(_)));
    assert_eq!(s.filters.len(), 2);
    let mut it = s.filters.iter();
    assert_eq!(it.next(), Some(("a/+", QoS::AtLeastOnce)));
    assert_eq!(it.next(), Some(("#", QoS::ExactlyOnce)));
    assert_eq!(it.next(), None);
}

#[test]
fn known_good_suback() {
    let expected = Packet::SubAck(SubAck {
        pkid: 10,
        codes: &[0x00, 0x02, SUBACK_FAILURE],
    });
    roundtrip(&SUBACK, &expected);
    let Ok(Packet::SubAck(s)) = one(&SUBACK) else {
        panic!("not a SUBACK")
    };
    let mut g = s.granted();
    assert_eq!(g.next(), Some(Some(QoS::AtMostOnce)));
    assert_eq!(g.next(), Some(Some(QoS::ExactlyOnce)));
    assert_eq!(g.next(), Some(None));
    assert_eq!(g.next(), None);
}

#[test]
fn known_good_unsubscribe() {
    let list = ["a/+", "#"];
    let expected = Packet::Unsubscribe(Unsubscribe {
        pkid: 11,
        topics: UnsubscribeTopics::List(&list),
    });
    roundtrip(&UNSUBSCRIBE, &expected);
    let Ok(Packet::Unsubscribe(u)) = one(&UNSUBSCRIBE) else {
        panic!("not an UNSUBSCRIBE")
    };
    assert!(matches!(u.topics, UnsubscribeTopics::Wire(_)));
    let mut it = u.topics.iter();
    assert_eq!(it.next(), Some("a/+"));
    assert_eq!(it.next(), Some("#"));
    assert_eq!(it.next(), None);
}

#[test]
fn known_good_empty_packets() {
    roundtrip(&PINGREQ, &Packet::PingReq);
    roundtrip(&PINGRESP, &Packet::PingResp);
    roundtrip(&DISCONNECT, &Packet::Disconnect);
}

#[test]
fn pingreq_roundtrip() {
    assert_eq!(one(&[0xC0, 0x00]).unwrap(), Packet::PingReq);
    let mut buf = [0u8; 2];
    assert_eq!(encode(&Packet::PingReq, &mut buf).unwrap(), 2);
    assert_eq!(buf, [0xC0, 0x00]);
}

#[test]
fn all_fourteen_types_covered() {
    let mut seen = [false; 16];
    for v in ALL_GOOD {
        let p = one(v).unwrap();
        seen[usize::from(v[0] >> 4)] = true;
        let mut buf = [0u8; 64];
        let n = encode(&p, &mut buf).unwrap();
        assert_eq!(&buf[..n], v, "{}", p.name());
    }
    assert_eq!(
        seen,
        [
            false, true, true, true, true, true, true, true, true, true, true, true, true, true,
            true, false
        ]
    );
}

#[test]
fn buffer_too_small_reports_required() {
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "ESP32/TEM",
        pkid: 7,
        payload: b"26.70",
    });
    let mut small = [0u8; 4];
    assert_eq!(
        encode(&p, &mut small),
        Err(EncodeError::BufferTooSmall { required: 20 })
    );
    let mut exact = [0u8; 20];
    assert_eq!(encode(&p, &mut exact), Ok(20));
    let mut one_short = [0u8; 19];
    assert_eq!(
        encode(&p, &mut one_short),
        Err(EncodeError::BufferTooSmall { required: 20 })
    );
}

#[test]
fn two_byte_remaining_length_roundtrip() {
    // 200-byte payload: remaining length 205 = 0xCD 0x01.
    let payload = [0x5Au8; 200];
    let p = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "abc",
        pkid: 0,
        payload: &payload,
    });
    let mut buf = [0u8; 256];
    let n = encode(&p, &mut buf).unwrap();
    assert_eq!(n, 208);
    assert_eq!(&buf[..8], &[0x30, 0xCD, 0x01, 0, 3, b'a', b'b', b'c']);
    assert_eq!(decode(&buf[..n], MAX), Ok(Decoded::Packet(p, 208)));
}

// ---------------------------------------------------------------------------------------------
// Framing: remaining length, size limit, partial input.

static ZEROS: [u8; 2_097_152] = [0; 2_097_152];

fn publish_with_remaining_len(remaining: usize) -> Packet<'static> {
    // QoS 0 to "t": the body is the 3-byte topic field plus the payload.
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: &ZEROS[..remaining - 3],
    })
}

#[test]
fn mqtt_2_2_3_remaining_length_boundaries() {
    for (remaining, header) in [
        (127usize, 2usize),
        (128, 3),
        (16_383, 3),
        (16_384, 4),
        (2_097_151, 4),
        (2_097_152, 5),
    ] {
        let p = publish_with_remaining_len(remaining);
        assert_eq!(
            p.encoded_len(),
            Ok(header + remaining),
            "remaining {remaining}"
        );
    }
    // Exact length bytes at the 1/2 and 2/3 byte boundaries, and back.
    let mut buf = [0u8; 16_388];
    for (remaining, len_bytes) in [
        (127usize, &[0x7F][..]),
        (128, &[0x80, 0x01]),
        (16_383, &[0xFF, 0x7F]),
        (16_384, &[0x80, 0x80, 0x01]),
    ] {
        let p = publish_with_remaining_len(remaining);
        let n = encode(&p, &mut buf).unwrap();
        assert_eq!(n, 1 + len_bytes.len() + remaining);
        assert_eq!(buf[0], 0x30);
        assert_eq!(
            &buf[1..1 + len_bytes.len()],
            len_bytes,
            "remaining {remaining}"
        );
        assert_eq!(decode(&buf[..n], MAX), Ok(Decoded::Packet(p, n)));
    }
    // The 3/4 byte boundary, decoder side.
    assert_eq!(
        parse_fixed_header(&[0x30, 0xFF, 0xFF, 0x7F]),
        Ok(Some(FixedHeader {
            byte1: 0x30,
            remaining_len: 2_097_151,
            header_len: 4
        }))
    );
}

#[test]
fn mqtt_2_2_3_five_byte_remaining_length_rejected() {
    // A continuation bit on the fourth length byte announces a fifth: malformed.
    assert_eq!(
        decode(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MAX),
        Err(DecodeError::MalformedRemainingLength)
    );
    assert_eq!(
        decode(&[0x30, 0x80, 0x80, 0x80, 0x80], MAX),
        Err(DecodeError::MalformedRemainingLength)
    );
    // ... checked before the flags, and without the fifth byte present.
    assert_eq!(
        decode(&[0xC1, 0x80, 0x80, 0x80, 0x80], MAX),
        Err(DecodeError::MalformedRemainingLength)
    );
    assert_eq!(
        parse_fixed_header(&[0x30, 0x80, 0x80, 0x80, 0x80]),
        Err(DecodeError::MalformedRemainingLength)
    );
}

#[test]
fn mqtt_2_2_3_four_byte_remaining_length_maximum() {
    assert_eq!(
        parse_fixed_header(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]),
        Ok(Some(FixedHeader {
            byte1: 0x30,
            remaining_len: 268_435_455,
            header_len: 5
        }))
    );
    assert_eq!(
        parse_fixed_header(&[0x30, 0x80, 0x80, 0x80, 0x01]),
        Ok(Some(FixedHeader {
            byte1: 0x30,
            remaining_len: 2_097_152,
            header_len: 5
        }))
    );
    assert_eq!(parse_fixed_header(&[0x30, 0x80, 0x80, 0x80]), Ok(None));
    assert_eq!(parse_fixed_header(&[0x30]), Ok(None));
    assert_eq!(parse_fixed_header(&[]), Ok(None));
}

#[test]
fn non_minimal_remaining_length_accepted() {
    // 3.1.1 does not forbid it; the codec documents that it accepts it.
    assert_eq!(
        decode(&[0xC0, 0x80, 0x00], MAX),
        Ok(Decoded::Packet(Packet::PingReq, 3))
    );
}

#[test]
fn packet_too_large_from_fixed_header_alone() {
    // Only the five header bytes are present: the limit is enforced before any body is buffered.
    assert_eq!(
        decode(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], MAX),
        Err(DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: MAX
        })
    );
    // A two-byte header announcing 200 bytes, limit 100.
    assert_eq!(
        decode(&[0x30, 0xC8, 0x01], 100),
        Err(DecodeError::PacketTooLarge {
            size: 203,
            max: 100
        })
    );
    // Same header under a limit that admits it: wait for the body.
    assert_eq!(decode(&[0x30, 0xC8, 0x01], 203), Ok(Decoded::NeedMore(200)));
}

#[test]
fn packet_size_limit_counts_the_whole_frame() {
    // PINGREQ is 2 bytes on the wire.
    assert_eq!(decode(&PINGREQ, 2), Ok(Decoded::Packet(Packet::PingReq, 2)));
    assert_eq!(
        decode(&PINGREQ, 1),
        Err(DecodeError::PacketTooLarge { size: 2, max: 1 })
    );
    assert_eq!(
        decode(&PUBLISH_QOS1, 11),
        Ok(Decoded::Packet(one(&PUBLISH_QOS1).unwrap(), 11))
    );
    assert_eq!(
        decode(&PUBLISH_QOS1, 10),
        Err(DecodeError::PacketTooLarge { size: 11, max: 10 })
    );
}

#[test]
fn need_more_on_every_strict_prefix() {
    for v in ALL_GOOD {
        for k in 0..v.len() {
            let Ok(Decoded::NeedMore(n)) = decode(&v[..k], MAX) else {
                panic!("prefix {k} of {v:02x?}: {:?}", decode(&v[..k], MAX));
            };
            assert!(n >= 1, "prefix {k} of {v:02x?}");
            assert!(
                k + n <= v.len(),
                "prefix {k} of {v:02x?} asks for {n}, overshooting"
            );
            let header_len = parse_fixed_header(v).unwrap().unwrap().header_len;
            if k >= header_len {
                assert_eq!(n, v.len() - k, "prefix {k} of {v:02x?}");
            }
        }
    }
    assert_eq!(decode(&[], MAX), Ok(Decoded::NeedMore(2)));
    assert_eq!(decode(&[0x30], MAX), Ok(Decoded::NeedMore(1)));
    assert_eq!(decode(&[0x30, 0x80], MAX), Ok(Decoded::NeedMore(1)));
}

#[test]
fn decode_consumes_only_the_first_packet() {
    let mut buf = [0u8; 15];
    buf[..4].copy_from_slice(&PUBACK);
    buf[4..].copy_from_slice(&PUBLISH_QOS1);
    assert_eq!(
        decode(&buf, MAX),
        Ok(Decoded::Packet(Packet::PubAck(0x1234), 4))
    );
    assert_eq!(
        decode(&buf[4..], MAX),
        Ok(Decoded::Packet(one(&PUBLISH_QOS1).unwrap(), 11))
    );
    // A complete packet followed by a partial one still yields the complete one.
    assert_eq!(
        decode(&buf[..6], MAX),
        Ok(Decoded::Packet(Packet::PubAck(0x1234), 4))
    );
}

#[test]
fn remaining_length_shorter_than_content_is_truncated() {
    // PUBACK with one id byte.
    assert_eq!(one(&[0x40, 1, 0x00]), Err(DecodeError::Truncated));
    assert_eq!(one(&[0x40, 0]), Err(DecodeError::Truncated));
    // CONNACK with one byte.
    assert_eq!(one(&[0x20, 1, 0x00]), Err(DecodeError::Truncated));
    // PUBLISH whose topic length (3) runs past the remaining length (2).
    assert_eq!(one(&[0x30, 2, 0, 3]), Err(DecodeError::Truncated));
    // PUBLISH QoS 1 without room for the packet id.
    assert_eq!(
        one(&[0x32, 4, 0, 2, b'a', b'b']),
        Err(DecodeError::Truncated)
    );
    // CONNECT cut inside the client id.
    assert_eq!(
        one(&[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'x']),
        Err(DecodeError::Truncated)
    );
    // CONNECT announcing a user name that isn't there.
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60, 0, 0]),
        Err(DecodeError::Truncated)
    );
    // SUBSCRIBE filter without its requested-QoS byte.
    assert_eq!(
        one(&[0x82, 5, 0, 1, 0, 1, b'a']),
        Err(DecodeError::Truncated)
    );
    // UNSUBSCRIBE filter length past the end.
    assert_eq!(
        one(&[0xA2, 5, 0, 1, 0, 2, b'a']),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn remaining_length_longer_than_content_is_trailing_bytes() {
    assert_eq!(
        one(&[0x40, 3, 0x00, 0x01, 0xAA]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        one(&[0x50, 4, 0x00, 0x01, 0xAA, 0xBB]),
        Err(DecodeError::TrailingBytes(2))
    );
    assert_eq!(
        one(&[0x20, 3, 0x00, 0x00, 0x00]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        one(&[0xB0, 3, 0x00, 0x01, 0x00]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(one(&[0xC0, 1, 0x00]), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(
        one(&[0xD0, 2, 0x00, 0x00]),
        Err(DecodeError::TrailingBytes(2))
    );
    assert_eq!(one(&[0xE0, 1, 0x00]), Err(DecodeError::TrailingBytes(1)));
    // CONNECT with a byte after the last announced field.
    assert_eq!(
        one(&[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0, 0xFF]),
        Err(DecodeError::TrailingBytes(1))
    );
}

// ---------------------------------------------------------------------------------------------
// Fixed-header flags and packet types (MQTT 2.2).

#[test]
fn mqtt_2_2_reserved_packet_types() {
    assert_eq!(one(&[0x00, 0]), Err(DecodeError::ReservedPacketType(0)));
    assert_eq!(one(&[0xF0, 0]), Err(DecodeError::ReservedPacketType(15)));
    // Rejected from the header, before the body arrives.
    assert_eq!(
        decode(&[0xF0, 10], MAX),
        Err(DecodeError::ReservedPacketType(15))
    );
}

#[test]
fn mqtt_2_2_2_1_reserved_flags_pubrel() {
    assert_eq!(
        one(&[0x60, 2, 0, 1]),
        Err(DecodeError::InvalidFlags {
            packet_type: 6,
            flags: 0
        })
    );
    assert_eq!(
        one(&[0x63, 2, 0, 1]),
        Err(DecodeError::InvalidFlags {
            packet_type: 6,
            flags: 3
        })
    );
    assert_eq!(
        one(&[0x6A, 2, 0, 1]),
        Err(DecodeError::InvalidFlags {
            packet_type: 6,
            flags: 0xA
        })
    );
    assert_eq!(one(&[0x62, 2, 0, 1]), Ok(Packet::PubRel(1)));
}

#[test]
fn mqtt_2_2_2_1_reserved_flags_subscribe() {
    let mut v = SUBSCRIBE;
    v[0] = 0x80;
    assert_eq!(
        one(&v),
        Err(DecodeError::InvalidFlags {
            packet_type: 8,
            flags: 0
        })
    );
    v[0] = 0x8A;
    assert_eq!(
        one(&v),
        Err(DecodeError::InvalidFlags {
            packet_type: 8,
            flags: 0xA
        })
    );
    // Checked from the fixed header alone.
    assert_eq!(
        decode(&[0x80, 12], MAX),
        Err(DecodeError::InvalidFlags {
            packet_type: 8,
            flags: 0
        })
    );
}

#[test]
fn mqtt_2_2_2_1_reserved_flags_unsubscribe() {
    let mut v = UNSUBSCRIBE;
    v[0] = 0xA0;
    assert_eq!(
        one(&v),
        Err(DecodeError::InvalidFlags {
            packet_type: 10,
            flags: 0
        })
    );
    v[0] = 0xA3;
    assert_eq!(
        one(&v),
        Err(DecodeError::InvalidFlags {
            packet_type: 10,
            flags: 3
        })
    );
    assert_eq!(
        decode(&[0xA0, 10], MAX),
        Err(DecodeError::InvalidFlags {
            packet_type: 10,
            flags: 0
        })
    );
}

#[test]
fn mqtt_2_2_2_2_reserved_flags_other_types() {
    for (v, t) in [
        (&CONNECT_FULL[..], 1u8),
        (&CONNACK[..], 2),
        (&PUBACK[..], 4),
        (&PUBREC[..], 5),
        (&PUBCOMP[..], 7),
        (&SUBACK[..], 9),
        (&UNSUBACK[..], 11),
        (&PINGREQ[..], 12),
        (&PINGRESP[..], 13),
        (&DISCONNECT[..], 14),
    ] {
        for flags in [0x1u8, 0x2, 0x4, 0x8, 0xF] {
            let mut bad = [0u8; 64];
            bad[..v.len()].copy_from_slice(v);
            bad[0] = (t << 4) | flags;
            assert_eq!(
                decode(&bad[..v.len()], MAX),
                Err(DecodeError::InvalidFlags {
                    packet_type: t,
                    flags
                }),
                "type {t} flags {flags:#x}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Packet identifiers (MQTT 2.3.1).

#[test]
fn mqtt_2_3_1_1_zero_packet_id() {
    assert_eq!(one(&[0x40, 2, 0, 0]), Err(DecodeError::ZeroPacketId));
    assert_eq!(one(&[0x50, 2, 0, 0]), Err(DecodeError::ZeroPacketId));
    assert_eq!(one(&[0x62, 2, 0, 0]), Err(DecodeError::ZeroPacketId));
    assert_eq!(one(&[0x70, 2, 0, 0]), Err(DecodeError::ZeroPacketId));
    assert_eq!(one(&[0xB0, 2, 0, 0]), Err(DecodeError::ZeroPacketId));
    assert_eq!(one(&[0x90, 3, 0, 0, 0x00]), Err(DecodeError::ZeroPacketId));
    assert_eq!(
        one(&[0x82, 6, 0, 0, 0, 1, b'a', 0]),
        Err(DecodeError::ZeroPacketId)
    );
    assert_eq!(
        one(&[0xA2, 5, 0, 0, 0, 1, b'a']),
        Err(DecodeError::ZeroPacketId)
    );
    // PUBLISH at QoS 1 and 2.
    assert_eq!(
        one(&[0x32, 5, 0, 1, b't', 0, 0]),
        Err(DecodeError::ZeroPacketId)
    );
    assert_eq!(
        one(&[0x34, 5, 0, 1, b't', 0, 0]),
        Err(DecodeError::ZeroPacketId)
    );
}

#[test]
fn mqtt_2_3_1_1_zero_packet_id_not_encoded() {
    assert_eq!(encode_err(&Packet::PubAck(0)), EncodeError::ZeroPacketId);
    assert_eq!(encode_err(&Packet::PubRec(0)), EncodeError::ZeroPacketId);
    assert_eq!(encode_err(&Packet::PubRel(0)), EncodeError::ZeroPacketId);
    assert_eq!(encode_err(&Packet::PubComp(0)), EncodeError::ZeroPacketId);
    assert_eq!(
        encode_err(&Packet::UnsubAck(UnsubAck { pkid: 0 })),
        EncodeError::ZeroPacketId
    );
    assert_eq!(
        encode_err(&Packet::SubAck(SubAck {
            pkid: 0,
            codes: &[0]
        })),
        EncodeError::ZeroPacketId
    );
    let list = [("a", QoS::AtMostOnce)];
    assert_eq!(
        encode_err(&Packet::Subscribe(Subscribe {
            pkid: 0,
            filters: SubscribeFilters::List(&list)
        })),
        EncodeError::ZeroPacketId
    );
    let topics = ["a"];
    assert_eq!(
        encode_err(&Packet::Unsubscribe(Unsubscribe {
            pkid: 0,
            topics: UnsubscribeTopics::List(&topics)
        })),
        EncodeError::ZeroPacketId
    );
    let p = Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: b"",
    };
    assert_eq!(encode_err(&Packet::Publish(p)), EncodeError::ZeroPacketId);
    assert_eq!(
        Packet::Publish(p).encoded_len(),
        Err(EncodeError::ZeroPacketId)
    );
}

#[test]
fn mqtt_2_3_1_5_qos0_publish_has_no_packet_id() {
    // At QoS 0 the two bytes after the topic are payload, even when they are zero.
    assert_eq!(
        one(&[0x30, 5, 0, 1, b't', 0, 0]),
        Ok(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            pkid: 0,
            payload: &[0, 0],
        }))
    );
}

// ---------------------------------------------------------------------------------------------
// PUBLISH (MQTT 3.3).

#[test]
fn mqtt_3_3_1_4_qos3_rejected() {
    assert_eq!(
        one(&[0x36, 5, 0, 1, b't', 0, 1]),
        Err(DecodeError::InvalidQoS)
    );
    assert_eq!(
        one(&[0x37, 5, 0, 1, b't', 0, 1]),
        Err(DecodeError::InvalidQoS)
    );
    // From the header alone.
    assert_eq!(decode(&[0x36, 100], MAX), Err(DecodeError::InvalidQoS));
}

#[test]
fn mqtt_3_3_1_2_dup_on_qos0_rejected() {
    assert_eq!(one(&[0x38, 3, 0, 1, b't']), Err(DecodeError::DupOnQoS0));
    assert_eq!(one(&[0x39, 3, 0, 1, b't']), Err(DecodeError::DupOnQoS0));
    assert_eq!(decode(&[0x38, 100], MAX), Err(DecodeError::DupOnQoS0));
    // DUP with QoS 1 is fine.
    assert!(matches!(
        one(&[0x3A, 5, 0, 1, b't', 0, 1]),
        Ok(Packet::Publish(Publish { dup: true, .. }))
    ));
    // And we never send what we'd reject.
    let p = Publish {
        dup: true,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: b"",
    };
    assert_eq!(encode_err(&Packet::Publish(p)), EncodeError::InvalidField);
}

#[test]
fn mqtt_3_3_2_2_publish_wildcard_topic_rejected() {
    assert_eq!(
        one(&[0x30, 5, 0, 3, b'a', b'/', b'+']),
        Err(DecodeError::InvalidTopicName)
    );
    assert_eq!(
        one(&[0x30, 5, 0, 3, b'a', b'/', b'#']),
        Err(DecodeError::InvalidTopicName)
    );
    assert_eq!(
        one(&[0x30, 3, 0, 1, b'#']),
        Err(DecodeError::InvalidTopicName)
    );
    assert_eq!(
        one(&[0x30, 4, 0, 2, b'a', b'+']),
        Err(DecodeError::InvalidTopicName)
    );
    for topic in ["a/+", "#", "a#"] {
        let p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            pkid: 0,
            payload: b"",
        };
        assert_eq!(
            encode_err(&Packet::Publish(p)),
            EncodeError::InvalidField,
            "{topic}"
        );
    }
}

#[test]
fn mqtt_4_7_3_1_publish_empty_topic_rejected() {
    assert_eq!(one(&[0x30, 2, 0, 0]), Err(DecodeError::InvalidTopicName));
    assert_eq!(
        one(&[0x30, 4, 0, 0, b'h', b'i']),
        Err(DecodeError::InvalidTopicName)
    );
    let p = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: "",
        pkid: 0,
        payload: b"",
    };
    assert_eq!(encode_err(&Packet::Publish(p)), EncodeError::InvalidField);
}

// ---------------------------------------------------------------------------------------------
// UTF-8 strings (MQTT 1.5.3).

#[test]
fn mqtt_1_5_3_1_invalid_utf8() {
    // Lone continuation byte in a PUBLISH topic.
    assert_eq!(
        one(&[0x30, 4, 0, 2, b'a', 0x80]),
        Err(DecodeError::InvalidUtf8)
    );
    // Truncated two-byte sequence.
    assert_eq!(
        one(&[0x30, 4, 0, 2, 0xC3, 0x28]),
        Err(DecodeError::InvalidUtf8)
    );
    // UTF-16 surrogate U+D800 encoded in UTF-8 (MQTT-1.5.3-1 names these explicitly).
    assert_eq!(
        one(&[0x30, 5, 0, 3, 0xED, 0xA0, 0x80]),
        Err(DecodeError::InvalidUtf8)
    );
    // Overlong encoding of U+0000 ("modified UTF-8").
    assert_eq!(
        one(&[0x30, 4, 0, 2, 0xC0, 0x80]),
        Err(DecodeError::InvalidUtf8)
    );
    // In a CONNECT client id.
    assert_eq!(
        one(&[0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, 0xFF]),
        Err(DecodeError::InvalidUtf8)
    );
    // In a SUBSCRIBE filter and an UNSUBSCRIBE filter.
    assert_eq!(
        one(&[0x82, 6, 0, 1, 0, 1, 0xFE, 0]),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(
        one(&[0xA2, 5, 0, 1, 0, 1, 0xFE]),
        Err(DecodeError::InvalidUtf8)
    );
    // Valid multi-byte UTF-8 is fine: "é/€".
    assert_eq!(
        one(&[0x30, 8, 0, 6, 0xC3, 0xA9, b'/', 0xE2, 0x82, 0xAC]),
        Ok(Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "é/€",
            pkid: 0,
            payload: b"",
        }))
    );
}

#[test]
fn mqtt_1_5_3_2_null_character() {
    // PUBLISH topic.
    assert_eq!(
        one(&[0x30, 5, 0, 3, b'a', 0, b'b']),
        Err(DecodeError::NullCharacter)
    );
    // CONNECT client id.
    assert_eq!(
        one(&[0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'x', 0]),
        Err(DecodeError::NullCharacter)
    );
    // CONNECT user name.
    assert_eq!(
        one(&[0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60, 0, 0, 0, 2, 0, b'u']),
        Err(DecodeError::NullCharacter)
    );
    // SUBSCRIBE and UNSUBSCRIBE filters.
    assert_eq!(
        one(&[0x82, 6, 0, 1, 0, 1, 0, 0]),
        Err(DecodeError::NullCharacter)
    );
    assert_eq!(
        one(&[0xA2, 5, 0, 1, 0, 1, 0]),
        Err(DecodeError::NullCharacter)
    );
    // The encoder refuses to send U+0000 in a string.
    let c = Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "a\0b",
        will: None,
        username: None,
        password: None,
    };
    assert_eq!(encode_err(&Packet::Connect(c)), EncodeError::NullCharacter);
    let c = Connect {
        client_id: "a",
        username: Some("\0"),
        ..c
    };
    assert_eq!(encode_err(&Packet::Connect(c)), EncodeError::NullCharacter);
    let list = [("a/\0", QoS::AtMostOnce)];
    assert_eq!(
        encode_err(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: SubscribeFilters::List(&list)
        })),
        EncodeError::NullCharacter
    );
    let topics = ["\0"];
    assert_eq!(
        encode_err(&Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            topics: UnsubscribeTopics::List(&topics)
        })),
        EncodeError::NullCharacter
    );
    // Binary fields (payload, password) may contain zero bytes.
    assert_eq!(
        one(&[0x10, 18, 0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60, 0, 0, 0, 1, b'u', 0, 1, 0]),
        Ok(Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 60,
            client_id: "",
            will: None,
            username: Some("u"),
            password: Some(&[0]),
        }))
    );
}

#[test]
fn mqtt_1_5_3_string_length_limit_on_encode() {
    let long = [b'a'; 65_536];
    let long = core::str::from_utf8(&long).unwrap();
    let c = Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: long,
        will: None,
        username: None,
        password: None,
    };
    assert_eq!(
        Packet::Connect(c).encoded_len(),
        Err(EncodeError::FieldTooLong(65_536))
    );
    let c = Connect {
        client_id: &long[..65_535],
        ..c
    };
    assert_eq!(
        Packet::Connect(c).encoded_len(),
        Ok(1 + 3 + 10 + 2 + 65_535)
    );
}

// ---------------------------------------------------------------------------------------------
// CONNECT (MQTT 3.1).

#[test]
fn mqtt_3_1_2_1_invalid_protocol_name() {
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'X', 4, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::InvalidProtocolName)
    );
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'm', b'q', b't', b't', 4, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::InvalidProtocolName)
    );
    assert_eq!(
        one(&[0x10, 8, 0, 0, 4, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::InvalidProtocolName)
    );
}

#[test]
fn mqtt_3_1_2_2_unsupported_level() {
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::UnsupportedProtocolLevel(5))
    );
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 3, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::UnsupportedProtocolLevel(3))
    );
    assert_eq!(
        one(&[0x10, 14, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 4, 0x02, 0, 60, 0, 0]),
        Err(DecodeError::UnsupportedProtocolLevel(4))
    );
}

#[test]
fn mqisdp_level_3_accepted() {
    let bytes = [
        0x10, 17, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 30, 0, 3, b'c', b'i', b'd',
    ];
    let expected = Packet::Connect(Connect {
        protocol: Protocol::V31,
        clean_session: true,
        keep_alive_s: 30,
        client_id: "cid",
        will: None,
        username: None,
        password: None,
    });
    roundtrip(&bytes, &expected);
}

#[test]
fn mqtt_3_1_2_3_connect_reserved_flag() {
    let mut c = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    assert!(matches!(one(&c).unwrap(), Packet::Connect(_)));
    c[9] = 0x03;
    assert_eq!(one(&c), Err(DecodeError::ConnectReservedFlag));
    c[9] = 0x01;
    assert_eq!(one(&c), Err(DecodeError::ConnectReservedFlag));
}

#[test]
fn mqtt_3_1_2_11_will_flags_without_will() {
    let mut c = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    // Will QoS 1 (MQTT-3.1.2-13).
    c[9] = 0x02 | 0x08;
    assert_eq!(one(&c), Err(DecodeError::WillFlagsWithoutWill));
    // Will QoS 2.
    c[9] = 0x02 | 0x10;
    assert_eq!(one(&c), Err(DecodeError::WillFlagsWithoutWill));
    // Will retain (MQTT-3.1.2-15).
    c[9] = 0x02 | 0x20;
    assert_eq!(one(&c), Err(DecodeError::WillFlagsWithoutWill));
}

#[test]
fn mqtt_3_1_2_14_will_qos3_rejected() {
    let mut c = CONNECT_FULL;
    c[9] = 0xE6 | 0x18; // will flag with QoS bits 11
    assert_eq!(one(&c), Err(DecodeError::InvalidQoS));
}

#[test]
fn mqtt_3_1_2_9_will_fields_present() {
    // Will flag set, but the body ends after the client id: the will topic is missing.
    assert_eq!(
        one(&[0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 0]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn will_topic_must_be_a_valid_topic_name() {
    // Will topic "a/#".
    let mut c = CONNECT_FULL;
    c[21] = b'#';
    assert_eq!(one(&c), Err(DecodeError::InvalidTopicName));
    // Empty will topic.
    let bytes = [
        0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 60, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(one(&bytes), Err(DecodeError::InvalidTopicName));
    let c = Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "c",
        will: Some(Will {
            topic: "a/+",
            payload: b"",
            qos: QoS::AtMostOnce,
            retain: false,
        }),
        username: None,
        password: None,
    };
    assert_eq!(encode_err(&Packet::Connect(c)), EncodeError::InvalidField);
}

#[test]
fn mqtt_3_1_2_22_password_without_username() {
    let mut c = [
        0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 60, 0, 0, 0, 0,
    ];
    assert_eq!(one(&c), Err(DecodeError::PasswordWithoutUsername));
    // With the user name flag as well, the same bytes read as an empty user name.
    c[1] = 16;
    let mut d = [0u8; 18];
    d[..16].copy_from_slice(&c);
    d[9] = 0xC2;
    assert_eq!(
        one(&d),
        Ok(Packet::Connect(Connect {
            protocol: Protocol::V311,
            clean_session: true,
            keep_alive_s: 60,
            client_id: "",
            will: None,
            username: Some(""),
            password: Some(b""),
        }))
    );
    let bad = Connect {
        protocol: Protocol::V311,
        clean_session: true,
        keep_alive_s: 0,
        client_id: "c",
        will: None,
        username: None,
        password: Some(b"pw"),
    };
    assert_eq!(encode_err(&Packet::Connect(bad)), EncodeError::InvalidField);
}

// ---------------------------------------------------------------------------------------------
// CONNACK (MQTT 3.2).

#[test]
fn mqtt_3_2_2_1_connack_reserved_flags() {
    assert_eq!(
        one(&[0x20, 2, 0x02, 0x00]),
        Err(DecodeError::InvalidConnAck)
    );
    assert_eq!(
        one(&[0x20, 2, 0x80, 0x00]),
        Err(DecodeError::InvalidConnAck)
    );
    assert_eq!(
        one(&[0x20, 2, 0xFF, 0x00]),
        Err(DecodeError::InvalidConnAck)
    );
}

#[test]
fn mqtt_3_2_2_3_connack_unknown_return_code() {
    assert_eq!(
        one(&[0x20, 2, 0x00, 0x06]),
        Err(DecodeError::InvalidConnAck)
    );
    assert_eq!(
        one(&[0x20, 2, 0x00, 0xFF]),
        Err(DecodeError::InvalidConnAck)
    );
    for code in 0..=5u8 {
        let Ok(Packet::ConnAck(c)) = one(&[0x20, 2, 0x00, code]) else {
            panic!("code {code}")
        };
        assert_eq!(c.code as u8, code);
        assert!(!c.session_present);
    }
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE, SUBACK, UNSUBSCRIBE (MQTT 3.8 to 3.11).

#[test]
fn mqtt_3_8_3_3_empty_subscribe() {
    assert_eq!(one(&[0x82, 2, 0, 1]), Err(DecodeError::NoTopicFilters));
    let list: [(&str, QoS); 0] = [];
    assert_eq!(
        encode_err(&Packet::Subscribe(Subscribe {
            pkid: 1,
            filters: SubscribeFilters::List(&list)
        })),
        EncodeError::NoTopicFilters
    );
}

#[test]
fn mqtt_3_8_3_4_subscribe_requested_qos() {
    // Requested QoS 3.
    assert_eq!(
        one(&[0x82, 6, 0, 1, 0, 1, b'a', 0x03]),
        Err(DecodeError::InvalidQoS)
    );
    // Reserved upper bits.
    assert_eq!(
        one(&[0x82, 6, 0, 1, 0, 1, b'a', 0x04]),
        Err(DecodeError::InvalidSubscribeOptions)
    );
    assert_eq!(
        one(&[0x82, 6, 0, 1, 0, 1, b'a', 0x81]),
        Err(DecodeError::InvalidSubscribeOptions)
    );
    // The bad one may come after a good one.
    assert_eq!(
        one(&[0x82, 10, 0, 1, 0, 1, b'a', 0x02, 0, 1, b'b', 0x03]),
        Err(DecodeError::InvalidQoS)
    );
}

#[test]
fn mqtt_3_9_3_2_suback_invalid_code() {
    assert_eq!(
        one(&[0x90, 3, 0, 1, 0x03]),
        Err(DecodeError::InvalidSubAckCode(0x03))
    );
    assert_eq!(
        one(&[0x90, 4, 0, 1, 0x00, 0x81]),
        Err(DecodeError::InvalidSubAckCode(0x81))
    );
    assert_eq!(
        one(&[0x90, 3, 0, 1, 0xFF]),
        Err(DecodeError::InvalidSubAckCode(0xFF))
    );
    assert_eq!(
        encode_err(&Packet::SubAck(SubAck {
            pkid: 1,
            codes: &[0, 3]
        })),
        EncodeError::InvalidField
    );
}

#[test]
fn mqtt_3_10_3_2_empty_unsubscribe() {
    assert_eq!(one(&[0xA2, 2, 0, 1]), Err(DecodeError::NoTopicFilters));
    let topics: [&str; 0] = [];
    assert_eq!(
        encode_err(&Packet::Unsubscribe(Unsubscribe {
            pkid: 1,
            topics: UnsubscribeTopics::List(&topics)
        })),
        EncodeError::NoTopicFilters
    );
}

#[test]
fn subscribe_wire_equals_list() {
    let Ok(Packet::Subscribe(s)) = one(&SUBSCRIBE) else {
        panic!()
    };
    let same = [("a/+", QoS::AtLeastOnce), ("#", QoS::ExactlyOnce)];
    let other_qos = [("a/+", QoS::AtLeastOnce), ("#", QoS::AtLeastOnce)];
    let fewer = [("a/+", QoS::AtLeastOnce)];
    assert_eq!(s.filters, SubscribeFilters::List(&same));
    assert_ne!(s.filters, SubscribeFilters::List(&other_qos));
    assert_ne!(s.filters, SubscribeFilters::List(&fewer));
    let Ok(Packet::Unsubscribe(u)) = one(&UNSUBSCRIBE) else {
        panic!()
    };
    assert_eq!(u.topics, UnsubscribeTopics::List(&["a/+", "#"]));
    assert_ne!(u.topics, UnsubscribeTopics::List(&["a/+"]));
}
