//! Byte-vector tests named by specification statement. Property tests live in tests/codec_props.rs.

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

#[test]
fn pingreq_roundtrip() {
    assert_eq!(one(&[0xC0, 0x00]).unwrap(), Packet::PingReq);
    let mut buf = [0u8; 2];
    assert_eq!(encode(&Packet::PingReq, &mut buf).unwrap(), 2);
    assert_eq!(buf, [0xC0, 0x00]);
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
    assert_eq!(encode(&p, &mut small), Err(EncodeError::BufferTooSmall { required: 20 }));
}

#[test]
fn mqtt_3_1_2_3_connect_reserved_flag() {
    let mut c = vec![0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 0];
    assert!(matches!(one(&c).unwrap(), Packet::Connect(_)));
    c[9] = 0x03;
    assert_eq!(one(&c), Err(DecodeError::ConnectReservedFlag));
}
