//! How a device or a subscriber reaches the broker: a connection through its own modelled link.

use std::cell::Cell;
use std::rc::Rc;

use crate::device_io::{Connecting, Connector};
use crate::net::link::{LinkConfig, LossModel};
use crate::net::stream::{LinkStream, Net};

use super::{BROKER_HOST, BROKER_PORT};

/// Connects a device or a subscriber to the broker through its modelled link.
#[derive(Clone)]
pub(crate) struct SimConnector {
    pub(crate) net: Net,
    pub(crate) link: LinkConfig,
    pub(crate) tag: u32,
    /// Set at heal time: new connections are lossless too.
    pub(crate) healed: Rc<Cell<bool>>,
    /// The client's TCP send buffer (a device's lwIP stack); `None` = unbounded (a PC).
    pub(crate) send_buffer_bytes: Option<usize>,
}

impl SimConnector {
    pub(crate) fn open(&self) -> Connecting<LinkStream> {
        let net = self.net.clone();
        let mut cfg = self.link.clone();
        if self.healed.get() {
            cfg.loss = LossModel::None;
        }
        let (tag, send_buffer) = (self.tag, self.send_buffer_bytes);
        Box::pin(async move {
            let stream = net
                .connect_tagged((BROKER_HOST, BROKER_PORT), cfg, tag)
                .await?;
            if let Some(bytes) = send_buffer {
                stream.set_send_buffer(bytes);
            }
            Ok(stream)
        })
    }
}

impl Connector for SimConnector {
    type Stream = LinkStream;
    fn connect(&mut self) -> Connecting<LinkStream> {
        self.open()
    }
}
