//! `$SYS/broker/...`: the broker's counters, published as retained messages every
//! `sys_interval` (only those that changed), under the names mosquitto uses.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;

use super::{Broker, Message, Retained};
use crate::codec::QoS;

impl Broker {
    pub(super) fn publish_sys(&mut self) {
        let uptime_s = self.now.saturating_since(self.started_at).as_micros() / 1_000_000;
        let st = self.stats.clone();
        let entries: [(&str, String); 14] = [
            (
                "$SYS/broker/version",
                format!("mqsim version {}", env!("CARGO_PKG_VERSION")),
            ),
            ("$SYS/broker/uptime", format!("{uptime_s} seconds")),
            (
                "$SYS/broker/clients/connected",
                st.clients_connected.to_string(),
            ),
            (
                "$SYS/broker/clients/maximum",
                st.clients_maximum.to_string(),
            ),
            (
                "$SYS/broker/clients/total",
                (self.sessions.len() as u64).to_string(),
            ),
            (
                "$SYS/broker/messages/received",
                st.messages_received.to_string(),
            ),
            ("$SYS/broker/messages/sent", st.messages_sent.to_string()),
            (
                "$SYS/broker/messages/dropped",
                st.messages_dropped.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/received",
                st.publish_received.to_string(),
            ),
            (
                "$SYS/broker/publish/messages/sent",
                st.publish_sent.to_string(),
            ),
            (
                "$SYS/broker/load/bytes/received",
                st.bytes_received.to_string(),
            ),
            ("$SYS/broker/load/bytes/sent", st.bytes_sent.to_string()),
            (
                "$SYS/broker/subscriptions/count",
                (self.tree.len() as u64).to_string(),
            ),
            (
                "$SYS/broker/retained messages/count",
                (self.retained.len() as u64).to_string(),
            ),
        ];
        for (topic, value) in entries {
            let unchanged = self
                .retained
                .get(topic)
                .is_some_and(|r| r.msg.payload == value.as_bytes());
            if unchanged {
                continue;
            }
            let msg = Arc::new(Message {
                topic: topic.to_string(),
                payload: value.into_bytes(),
                forward_after: 0,
            });
            self.retained.insert(
                msg.topic.clone(),
                Retained {
                    qos: QoS::AtMostOnce,
                    msg: msg.clone(),
                },
            );
            self.route(&msg, QoS::AtMostOnce);
        }
    }
}
