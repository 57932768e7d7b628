//! CONNECT and CONNACK (MQTT 3.1.1 sections 3.1, 3.2).

use super::frame::{field_len, string_len, Reader, Writer};
use super::{DecodeError, EncodeError, QoS};

/// Protocol name and level of a CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1: name "MQIsdp", level 3.
    V31,
    /// MQTT 3.1.1: name "MQTT", level 4.
    V311,
}

impl Protocol {
    /// The protocol level byte CONNECT carries for this version (3 or 4).
    pub fn level(self) -> u8 {
        match self {
            Protocol::V31 => 3,
            Protocol::V311 => 4,
        }
    }
    fn name(self) -> &'static [u8] {
        match self {
            Protocol::V31 => b"MQIsdp",
            Protocol::V311 => b"MQTT",
        }
    }
}

/// The last will: published by the broker when the client goes away without DISCONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    /// Topic the will is published to; no wildcards (MQTT-3.1.3-11).
    pub topic: &'a str,
    /// Message body, 0 to 65,535 bytes (a length-prefixed field in CONNECT).
    pub payload: &'a [u8],
    /// QoS the broker publishes the will at.
    pub qos: QoS,
    /// Whether the broker retains the will when it publishes it.
    pub retain: bool,
}

/// CONNECT (MQTT 3.1.1 section 3.1), the first packet a client sends; borrows its strings from
/// the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    /// MQTT 3.1 or 3.1.1, from the protocol name and level.
    pub protocol: Protocol,
    /// Start a new session and discard it at disconnect (true), or resume and keep the stored one
    /// (false), MQTT-3.1.2-4..6.
    pub clean_session: bool,
    /// Keep alive in seconds; 0 turns the mechanism off (MQTT-3.1.2-10).
    pub keep_alive_s: u16,
    /// Identifies the session on the broker; 1 to 23 alphanumeric bytes are always accepted, empty
    /// only with `clean_session` (the broker then assigns one), MQTT-3.1.3-5..8.
    pub client_id: &'a str,
    /// The last will, if the client set one.
    pub will: Option<Will<'a>>,
    /// User name, checked by the broker's password file.
    pub username: Option<&'a str>,
    /// Password bytes; only sent with a user name (MQTT-3.1.2-22).
    pub password: Option<&'a [u8]>,
}

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

impl<'a> Connect<'a> {
    pub(super) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let name = r.binary()?;
        let level = r.u8()?;
        let protocol = match (name, level) {
            (b"MQTT", 4) => Protocol::V311,
            (b"MQIsdp", 3) => Protocol::V31,
            (b"MQTT", l) | (b"MQIsdp", l) => return Err(DecodeError::UnsupportedProtocolLevel(l)),
            _ => return Err(DecodeError::InvalidProtocolName),
        };
        let flags = r.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::ConnectReservedFlag);
        }
        let keep_alive_s = r.u16()?;
        let client_id = r.string()?;
        let has_will = flags & FLAG_WILL != 0;
        let will_qos = (flags >> 3) & 0b11;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !has_will && (will_qos != 0 || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        let will = if has_will {
            let qos = QoS::from_u8(will_qos).ok_or(DecodeError::InvalidQoS)?;
            let topic = r.string()?;
            if !crate::topic::valid_topic_name(topic) {
                return Err(DecodeError::InvalidTopicName);
            }
            let payload = r.binary()?;
            Some(Will {
                topic,
                payload,
                qos,
                retain: will_retain,
            })
        } else {
            None
        };
        let has_user = flags & FLAG_USERNAME != 0;
        let has_pass = flags & FLAG_PASSWORD != 0;
        // MQTT-3.1.2-22 applies to 3.1.1; 3.1 clients never set it either.
        if has_pass && !has_user {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let username = if has_user { Some(r.string()?) } else { None };
        let password = if has_pass { Some(r.binary()?) } else { None };
        Ok(Connect {
            protocol,
            clean_session: flags & FLAG_CLEAN != 0,
            keep_alive_s,
            client_id,
            will,
            username,
            password,
        })
    }

    pub(super) fn body_len(&self) -> Result<usize, EncodeError> {
        let mut n = field_len(self.protocol.name())? + 1 + 1 + 2 + string_len(self.client_id)?;
        if let Some(w) = &self.will {
            if !crate::topic::valid_topic_name(w.topic) {
                return Err(EncodeError::InvalidField);
            }
            n += string_len(w.topic)? + field_len(w.payload)?;
        }
        if let Some(u) = self.username {
            n += string_len(u)?;
        }
        if let Some(p) = self.password {
            if self.username.is_none() {
                return Err(EncodeError::InvalidField);
            }
            n += field_len(p)?;
        }
        Ok(n)
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.binary(self.protocol.name());
        w.u8(self.protocol.level());
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | (will.qos.as_u8() << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        w.u8(flags);
        w.u16(self.keep_alive_s);
        w.binary(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            w.binary(will.topic.as_bytes());
            w.binary(will.payload);
        }
        if let Some(u) = self.username {
            w.binary(u.as_bytes());
        }
        if let Some(p) = self.password {
            w.binary(p);
        }
    }
}

/// CONNACK return codes (MQTT 3.2.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectReturnCode {
    /// Connection accepted.
    Accepted = 0,
    /// The broker does not speak the requested protocol level.
    UnacceptableProtocolVersion = 1,
    /// The client id is not allowed (empty without clean session, or refused by configuration).
    IdentifierRejected = 2,
    /// The MQTT service is unavailable.
    ServerUnavailable = 3,
    /// The user name or password is malformed or wrong.
    BadUserNameOrPassword = 4,
    /// The client is not authorised to connect.
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The code for a CONNACK return code byte; `None` for 6..=255, reserved by MQTT 3.1.1.
    pub fn from_u8(v: u8) -> Option<Self> {
        use ConnectReturnCode::*;
        Some(match v {
            0 => Accepted,
            1 => UnacceptableProtocolVersion,
            2 => IdentifierRejected,
            3 => ServerUnavailable,
            4 => BadUserNameOrPassword,
            5 => NotAuthorized,
            _ => return None,
        })
    }
}

/// CONNACK (MQTT 3.1.1 section 3.2): the broker's answer to CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnAck {
    /// The broker resumed a stored session for this client id (MQTT-3.2.2-2); always false with
    /// clean session or a refusal.
    pub session_present: bool,
    /// Accepted, or why the connection is refused (the broker then closes it).
    pub code: ConnectReturnCode,
}

impl ConnAck {
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & !0x01 != 0 {
            return Err(DecodeError::InvalidConnAck);
        }
        let code = ConnectReturnCode::from_u8(r.u8()?).ok_or(DecodeError::InvalidConnAck)?;
        Ok(ConnAck {
            session_present: flags & 0x01 != 0,
            code,
        })
    }

    pub(super) fn write(&self, w: &mut Writer<'_>) {
        w.u8(u8::from(self.session_present));
        w.u8(self.code as u8);
    }
}
