//! The reference sketch: the seed's ESP32 with a DHT sensor, as an [`App`].
//!
//! ```text
//! setup():  Serial.println("Connecting to WiFi"); WiFi.begin(...);
//!           while (WiFi.status() != WL_CONNECTED) { delay(500); Serial.print("."); }
//!           Serial.println(); Serial.println("Connected to the WiFi network");
//!           connect loop: Serial.println("Connecting to MQTT..."); then "connected", or
//!           "failed with state N" and another try
//! loop():   every `interval_ms` after the first "connected": read the DHT, print
//!           "Publish message:", "Temperature : 26.70°C", "Humidity : 52.00%", and publish the
//!           two values (`26.70`, `52.00`) to ESP32/TEM and ESP32/HUM, connected or not
//!           (the temperature only with `publish_humidity = false`)
//! ```
//! A reading that falls due while a blocking `connect()` runs is taken as soon as it returns
//! (the device holds the application's timers while it is blocked). A lost connection is
//! retried as the library profile says; for PubSubClient that is the sketch's own retry, at once
//! after the loss (`loop()`: `if (!client.connected()) reconnect();`) and 2 s after each failed
//! attempt (`reconnect()`'s `delay(2000)`, sim/sketches/reference/reference.ino): see
//! [`crate::device::ProfileParams::reconnect_after_loss_ms`]. Unlike the sketch, whose
//! `reconnect()` loop takes no readings until it is connected, this loop goes on between
//! attempts (its readings are refused). On every connection it
//! subscribes to its `subscriptions` (none in the seed's sketch).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{App, Ctx, Event, Library, TimerId};
use crate::codec::QoS;
use crate::device::{
    failed_line, humidity_line, payload_value, temperature_line, DeviceError, LINE_MQTT_CONNECTED,
    LINE_MQTT_CONNECTING, LINE_PUBLISH, LINE_SENSOR_FAILED, LINE_WIFI_CONNECTED,
    LINE_WIFI_CONNECTING,
};
use crate::time::Duration;
use crate::topic;

/// The reading timer.
const READING: TimerId = 0;

/// The sketch's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SketchConfig {
    /// Default `ESP32/TEM`.
    pub temperature_topic: String,
    /// Default `ESP32/HUM`.
    pub humidity_topic: String,
    /// QoS of both publishes; at most the library's `max_publish_qos`.
    pub qos: QoS,
    /// Reading period (the sketch's `interval`), default 2000.
    pub interval_ms: u64,
    /// Subscribed after every CONNACK (clean session); none in the reference sketch.
    pub subscriptions: Vec<(String, QoS)>,
    /// Publish the readings retained (the sketch's `publish(topic, payload, true)`).
    pub retain: bool,
    /// Publish the humidity too (the sketch's two publishes per reading; default true). False:
    /// the temperature only, one message per reading, as a bench publisher sending one topic at
    /// a fixed rate does (the serial lines are the same).
    pub publish_humidity: bool,
    /// Stop publishing after this many publish calls (a measurement run); `None` = never.
    pub max_publish_calls: Option<u64>,
    /// The largest tag the device adds to a payload, in bytes (0 without tags), for the
    /// buffer check: a tagged publish must fit the library's buffer too.
    pub tag_bytes: usize,
}

impl Default for SketchConfig {
    fn default() -> Self {
        SketchConfig {
            temperature_topic: "ESP32/TEM".to_string(),
            humidity_topic: "ESP32/HUM".to_string(),
            qos: QoS::AtMostOnce,
            interval_ms: 2_000,
            subscriptions: Vec::new(),
            retain: false,
            publish_humidity: true,
            max_publish_calls: None,
            tag_bytes: 0,
        }
    }
}

/// The longest payload tag a device adds (`U+001F d<u32>.s<u64>`), in bytes.
pub const TAG_MAX_BYTES: usize = 1 + 11 + 2 + 20;

/// The reference sketch. See the module documentation.
#[derive(Clone, Debug)]
pub struct ReferenceSketch {
    config: SketchConfig,
    /// Connected at least once (`loop()` runs).
    running: bool,
}

impl ReferenceSketch {
    /// The sketch with these settings.
    pub fn new(config: SketchConfig) -> Self {
        ReferenceSketch {
            config,
            running: false,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &SketchConfig {
        &self.config
    }
}

impl Default for ReferenceSketch {
    fn default() -> Self {
        ReferenceSketch::new(SketchConfig::default())
    }
}

/// Bytes of a PUBLISH with this topic and payload length.
fn publish_len(topic_len: usize, payload_len: usize, qos: QoS) -> usize {
    let rem = 2 + topic_len + payload_len + if qos == QoS::AtMostOnce { 0 } else { 2 };
    1 + crate::codec::remaining_len_bytes(rem) + rem
}

impl App for ReferenceSketch {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        ctx.println(LINE_WIFI_CONNECTING);
    }

    fn handle(&mut self, ctx: &mut Ctx<'_>, event: Event) {
        match event {
            Event::WifiWait => ctx.print("."),
            Event::WifiConnected => {
                ctx.println("");
                ctx.println(LINE_WIFI_CONNECTED);
            }
            Event::Connecting => ctx.println(LINE_MQTT_CONNECTING),
            Event::ConnectFailed { state } => ctx.println(&failed_line(state)),
            Event::Connected { .. } => {
                ctx.println(LINE_MQTT_CONNECTED);
                if !self.running {
                    self.running = true;
                    ctx.set_timer_after(READING, Duration::from_millis(self.config.interval_ms));
                }
                for (filter, qos) in &self.config.subscriptions {
                    ctx.subscribe(filter, *qos);
                }
            }
            Event::Timer(READING) => {
                if self
                    .config
                    .max_publish_calls
                    .is_some_and(|m| ctx.publish_calls() >= m)
                {
                    return; // a measurement run: done
                }
                ctx.set_timer_after(READING, Duration::from_millis(self.config.interval_ms));
                ctx.read_sensor();
            }
            Event::Reading(r) => {
                if r.temperature_c.is_nan() || r.humidity_pct.is_nan() {
                    ctx.println(LINE_SENSOR_FAILED);
                    return;
                }
                ctx.println(LINE_PUBLISH);
                ctx.println(&temperature_line(r.temperature_c));
                ctx.println(&humidity_line(r.humidity_pct));
                let (qos, retain) = (self.config.qos, self.config.retain);
                let t = payload_value(r.temperature_c);
                let h = payload_value(r.humidity_pct);
                // Refused calls are lost at the device; the sketch ignores publish()'s result.
                let _ = ctx.publish(&self.config.temperature_topic, t.as_bytes(), qos, retain);
                if self.config.publish_humidity {
                    let _ = ctx.publish(&self.config.humidity_topic, h.as_bytes(), qos, retain);
                }
            }
            _ => {}
        }
    }

    fn check(&self, library: Library) -> Result<(), DeviceError> {
        let (c, p) = (&self.config, library.params);
        if c.interval_ms == 0 {
            return Err(DeviceError::IntervalZero);
        }
        if c.qos > p.max_publish_qos {
            return Err(DeviceError::PublishQosUnsupported {
                profile: library.profile,
                qos: c.qos,
            });
        }
        for t in [&c.temperature_topic, &c.humidity_topic] {
            if !topic::valid_topic_name(t) {
                return Err(DeviceError::InvalidTopic(t.clone()));
            }
        }
        for (f, q) in &c.subscriptions {
            if !topic::valid_topic_filter(f) {
                return Err(DeviceError::InvalidFilter(f.clone()));
            }
            if *q > p.max_subscribe_qos {
                return Err(DeviceError::SubscribeQosUnsupported {
                    profile: library.profile,
                    qos: *q,
                });
            }
        }
        if library.profile.drops_oversized_inbound() {
            // The largest publish: the longer topic, a 7-character value (`-100.00`), the
            // longest tag.
            let topic_len = c.temperature_topic.len().max(c.humidity_topic.len());
            let needed = publish_len(topic_len, 7 + c.tag_bytes, c.qos);
            if needed > p.buffer_bytes {
                return Err(DeviceError::BufferTooSmall {
                    buffer_bytes: p.buffer_bytes,
                    needed,
                });
            }
        }
        Ok(())
    }
}
