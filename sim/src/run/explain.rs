//! One message's life (`mqsim sim FILE --seed N --explain DEVICE:SEQ`): the publish call, the
//! link's losses and retransmissions of the segments carrying it (from the link trace, where its
//! bytes can be placed in the stream), the broker's receipt and acknowledgement (its `-v` log),
//! its forwarding to each subscriber, each receipt, or where and why it ended (the ledger's
//! [`Cause`]). Built after the run from what the run kept: the bytes each application received
//! (taps), the lines, the ledger.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;

use mqsim::codec::{FrameBuffer, Packet};
use mqsim::device::parse_tag;
use mqsim::limits;
use mqsim::time::Instant;

use super::output::{Line, Source};
use super::wire::SUBSCRIBER_TAG_BASE;
use crate::check::{Cause, Ledger, Micros, MsgId, SubscriberId};
use crate::net::link::Dir;
use crate::net::stream::{ConnId, Tap};

/// `DEVICE:SEQ` (the device's client id and its publish-call number).
pub fn parse_target(s: &str) -> Result<(String, u64), String> {
    let (d, seq) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("expected DEVICE:SEQ, got {s:?}"))?;
    let seq = seq
        .parse()
        .map_err(|_| format!("expected DEVICE:SEQ, bad SEQ {seq:?}"))?;
    Ok((d.to_string(), seq))
}

/// One PUBLISH of the message on the wire, as the receiving application got it.
struct Copy {
    at: Micros,
    conn: ConnId,
    up: bool,
    /// The receiving (down) or sending (up) client's tag.
    tag: u32,
    pkid: u16,
    dup: bool,
    /// Its bytes' range in the stream (offsets from the first data byte).
    range: (u64, u64),
}

/// Every copy of `id` in `taps`.
fn copies(taps: &[Tap], id: MsgId) -> Vec<Copy> {
    let mut frames: BTreeMap<(ConnId, bool), FrameBuffer> = BTreeMap::new();
    let mut offsets: BTreeMap<(ConnId, bool), u64> = BTreeMap::new();
    let mut out = Vec::new();
    for tap in taps {
        let Some(tag) = tap.tag else { continue };
        let up = tap.dir == Dir::Up;
        let start = *offsets.get(&(tap.conn, up)).unwrap_or(&0);
        offsets.insert((tap.conn, up), start + tap.bytes.len() as u64);
        let fb = frames.entry((tap.conn, up)).or_default();
        let _ = fb.feed::<()>(&tap.bytes, limits::REMAINING_LENGTH_MAX_BYTES, |p| {
            if let Packet::Publish(p) = p {
                let ours = parse_tag(p.payload)
                    .is_some_and(|(_, d, seq)| d == id.device.0 && seq == id.seq);
                if ours {
                    // The payload's end places the packet in the stream when this chunk holds
                    // it; else the chunk's end does.
                    let end = find(&tap.bytes, p.payload)
                        .map_or(start + tap.bytes.len() as u64, |i| {
                            start + (i + p.payload.len()) as u64
                        });
                    let body = 2 + p.topic.len() + p.payload.len() + if p.pkid > 0 { 2 } else { 0 };
                    let len = 1 + varint_len(body) + body;
                    out.push(Copy {
                        at: tap.at.as_micros(),
                        conn: tap.conn,
                        up,
                        tag,
                        pkid: p.pkid,
                        dup: p.dup,
                        range: (end.saturating_sub(len as u64), end),
                    });
                }
            }
            ControlFlow::Continue(())
        });
    }
    out
}

fn varint_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The link's lines about segments overlapping `range` of `conn` in direction `up`: lost,
/// retransmitted (`connN up segment lost seq=S len=L ...`, seq 1 = the first data byte).
fn segment_lines<'a>(lines: &'a [Line], c: &Copy) -> Vec<&'a Line> {
    let conn = format!(" conn{} {} ", c.conn.0, if c.up { "up" } else { "down" });
    lines
        .iter()
        .filter(|l| l.source == Source::Net && l.text.contains(&conn))
        .filter(|l| {
            let field = |k: &str| {
                l.text
                    .split(' ')
                    .find_map(|w| w.strip_prefix(k))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            match (field("seq="), field("len=")) {
                (Some(s), Some(n)) if n > 0 && !l.text.contains(" ack ") => {
                    let (a, b) = (s.saturating_sub(1), s.saturating_sub(1) + n);
                    a < c.range.1 && c.range.0 < b
                }
                _ => false,
            }
        })
        .collect()
}

/// The broker's line about this copy: a `Received PUBLISH from CLIENT (dX, qX, rX, mPKID,`
/// (up: at or after the copy's arrival) or a `Sending PUBLISH to CLIENT (..., mPKID,` (down: the
/// last at or before it), and the acknowledgement that followed.
fn broker_lines<'a>(lines: &'a [Line], c: &Copy, client: &str) -> Vec<&'a Line> {
    let broker = lines.iter().filter(|l| l.source == Source::Broker);
    let mid = format!(", m{}, ", c.pkid);
    let mut out = Vec::new();
    let at = |l: &Line| l.at.as_micros();
    if c.up {
        let head = format!("Received PUBLISH from {client} (");
        let recv = broker
            .clone()
            .find(|l| at(l) >= c.at && l.text.contains(&head) && l.text.contains(&mid));
        if let Some(r) = recv {
            out.push(r);
            if c.pkid > 0 {
                let ack = [
                    format!("Sending PUBACK to {client} (m{},", c.pkid),
                    format!("Sending PUBREC to {client} (m{},", c.pkid),
                    format!("Sending PUBCOMP to {client} (m{},", c.pkid),
                ];
                for a in ack {
                    if let Some(l) = broker
                        .clone()
                        .find(|l| at(l) >= at(r) && l.text.contains(&a))
                    {
                        out.push(l);
                    }
                }
            }
        }
    } else {
        let head = format!("Sending PUBLISH to {client} (");
        let sent = broker
            .clone()
            .rev()
            .find(|l| at(l) <= c.at && l.text.contains(&head) && l.text.contains(&mid));
        if let Some(s) = sent {
            out.push(s);
        }
        if c.pkid > 0 {
            for a in [
                format!("Received PUBACK from {client} (Mid: {},", c.pkid),
                format!("Received PUBREC from {client} (Mid: {},", c.pkid),
                format!("Received PUBCOMP from {client} (Mid: {},", c.pkid),
            ] {
                if let Some(l) = broker
                    .clone()
                    .find(|l| at(l) >= c.at && l.text.contains(&a))
                {
                    out.push(l);
                }
            }
        }
    }
    out
}

fn stamp(us: Micros) -> String {
    format!("{:>5}.{:03}", us / 1_000_000, (us / 1_000) % 1_000)
}

/// One message's life, as text; Err when the run has no such message.
pub fn explain(
    ledger: &Ledger,
    lines: &[Line],
    taps: &[Tap],
    device: &str,
    seq: u64,
) -> Result<String, String> {
    let d = ledger
        .device_id(device)
        .ok_or_else(|| format!("--explain: no device {device:?} in this run"))?;
    let id = MsgId { device: d, seq };
    let records = ledger.records();
    let p = records
        .publishes
        .iter()
        .find(|p| p.device == device && p.seq == seq)
        .ok_or_else(|| format!("--explain: {device} made no publish call {seq}"))?;
    let mut events: Vec<(Micros, usize, String)> = Vec::new();
    let mut ev = |at: Micros, who: &str, text: String| {
        let n = events.len();
        events.push((at, n, format!("{} {who:<14} | {text}", stamp(at))));
    };
    ev(
        p.called_at,
        device,
        format!(
            "publish call {seq}: '{}' at QoS {}{}",
            p.topic,
            p.qos,
            if p.accepted {
                ""
            } else {
                ", refused by the library"
            }
        ),
    );
    let client_of = |tag: u32| -> String {
        if tag >= SUBSCRIBER_TAG_BASE {
            let i = tag - SUBSCRIBER_TAG_BASE;
            ledger.subscriber_name(SubscriberId(i)).to_string()
        } else {
            ledger.device_name(crate::check::DeviceId(tag)).to_string()
        }
    };
    let mut shown: std::collections::BTreeSet<(Instant, String)> = Default::default();
    for c in copies(taps, id) {
        let client = client_of(c.tag);
        for l in segment_lines(lines, &c) {
            if shown.insert((l.at, l.text.clone())) {
                ev(l.at.as_micros(), "net", format!("{} (carrying it)", l.text));
            }
        }
        let what = if c.up {
            format!(
                "the broker received it from {client} (packet id {}{})",
                c.pkid,
                if c.dup { ", DUP" } else { "" }
            )
        } else {
            format!(
                "{client} received a copy (packet id {}{})",
                c.pkid,
                if c.dup { ", DUP" } else { "" }
            )
        };
        ev(c.at, if c.up { "wire" } else { &client }, what);
        for l in broker_lines(lines, &c, &client) {
            if shown.insert((l.at, l.text.clone())) {
                ev(l.at.as_micros(), "broker", l.text.clone());
            }
        }
    }
    if let Some(t) = p.completed_at {
        let how = match p.qos {
            0 => "written to the socket",
            1 => "PUBACK",
            _ => "PUBCOMP",
        };
        ev(t, device, format!("completed at the publisher ({how})"));
    }
    events.sort_by_key(|(at, n, _)| (*at, *n));
    let mut out = format!(
        "the life of {device} seq {seq} ('{}', QoS {}):\n",
        p.topic, p.qos
    );
    for (_, _, text) in &events {
        let _ = writeln!(out, "  {text}");
    }
    for dl in &p.deliveries {
        let _ = writeln!(
            out,
            "  delivered to {} at {} s, {} ms after the call{}",
            dl.subscriber,
            stamp(dl.first_at).trim_start(),
            (dl.first_at - p.called_at) / 1000,
            if dl.duplicates > 0 {
                format!(", {} duplicate(s)", dl.duplicates)
            } else {
                String::new()
            }
        );
    }
    let mut ended: Vec<(String, Cause)> = ledger
        .loss_causes()
        .into_iter()
        .filter(|((m, _), _)| *m == id)
        .map(|((_, s), c)| {
            (
                s.map_or(String::new(), |s| ledger.subscriber_name(s).into()),
                c,
            )
        })
        .collect();
    ended.sort();
    for (sub, cause) in ended {
        if sub.is_empty() {
            let _ = writeln!(out, "  ended at the device: {}", cause.describe());
        } else {
            let _ = writeln!(
                out,
                "  never reached {sub}: {} ({})",
                cause.describe(),
                cause.key()
            );
            if cause == Cause::Dropped {
                // The broker's notice, the first at or after the call.
                let notice = format!("being dropped for client {sub}.");
                if let Some(l) = lines.iter().find(|l| {
                    l.source == Source::Broker
                        && l.at.as_micros() >= p.called_at
                        && l.text.contains(&notice)
                }) {
                    let _ = writeln!(
                        out,
                        "    the broker said at {} s: {}",
                        stamp(l.at.as_micros()).trim_start(),
                        l.text
                    );
                }
            }
        }
    }
    Ok(out)
}
