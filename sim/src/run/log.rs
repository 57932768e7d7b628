//! `tracing` events of a run's applications, captured into the run's lines: stamped with
//! simulated time, under the name of the device whose code logged them, kept when the run's
//! directive lets them through. Events logged outside a device's code (turmoil's, tokio's) are
//! not the application's and are left out.
//!
//! The directive is env-filter style, as `RUST_LOG`: `info`, `door_alarm=debug`,
//! `warn,door_alarm=trace` (targets and levels; no span or field filters). It comes from
//! [`super::RunOptions::log`] or else the `MQSIM_LOG` environment variable; by default `info`.
//! A line reads `  12.345 door-3         | INFO door_alarm: alarm queued seq=4`.
//!
//! The capture is the run thread's own default subscriber while the run runs: runs on other
//! threads (a sweep) capture their own.

use std::fmt::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::subscriber::Interest;
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::{Lines, Source};
use crate::net::stream::sim_now;

/// The span a device's code runs in; its `name` field names the lines.
pub const DEVICE_SPAN: &str = "device";

/// The directive when neither the run nor `MQSIM_LOG` gives one.
pub const LOG_DEFAULT_DIRECTIVE: &str = "info";

/// The filter of `directive`, or why it is not one.
pub fn targets(directive: Option<&str>) -> Result<Targets, String> {
    let env = std::env::var("MQSIM_LOG").ok();
    let text = directive
        .or(env.as_deref())
        .unwrap_or(LOG_DEFAULT_DIRECTIVE);
    text.parse::<Targets>()
        .map_err(|e| format!("log directive `{text}`: {e}"))
}

/// Captures events into `lines` on this thread until the guard is dropped.
pub(crate) fn capture(lines: Lines, filter: Targets) -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::registry().with(Capture { lines, filter });
    tracing::subscriber::set_default(subscriber)
}

struct Capture {
    lines: Lines,
    filter: Targets,
}

/// A device span's name, kept in the span's extensions.
struct DeviceName(String);

impl<S> Layer<S> for Capture
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    /// Spans always (a device's span names its lines whatever the directive); events the
    /// directive lets through are asked about each time (they count only inside a device).
    fn register_callsite(&self, meta: &'static tracing::Metadata<'static>) -> Interest {
        if meta.is_span() {
            Interest::always()
        } else if self.filter.would_enable(meta.target(), meta.level()) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    /// An event is built only inside a device's code, when the directive lets it through;
    /// the simulator's and its libraries' own events (turmoil's, tokio's) are not the
    /// application's and stay out of the trace.
    fn enabled(&self, meta: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        meta.is_span()
            || (self.filter.would_enable(meta.target(), meta.level())
                && ctx.lookup_current().is_some())
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != DEVICE_SPAN {
            return;
        }
        let mut v = Fields::default();
        attrs.record(&mut v);
        if let (Some(span), Some(name)) = (ctx.span(id), v.name) {
            span.extensions_mut().insert(DeviceName(name));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let device = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|s| s.extensions().get::<DeviceName>().map(|d| d.0.clone()))
        });
        let mut v = Fields::default();
        event.record(&mut v);
        let meta = event.metadata();
        let mut text = format!("{} {}: {}", meta.level(), meta.target(), v.message);
        text.push_str(&v.rest);
        if let Some(d) = device {
            self.lines.push(sim_now(), Source::Device(d), text);
        }
    }
}

/// An event's message and its other fields (`k=v`, in order), or a span's `name`.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    name: Option<String>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "name" if self.name.is_none() => self.name = Some(value.to_string()),
            "message" => self.message.push_str(value),
            f => {
                let _ = write!(self.rest, " {f}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "name" if self.name.is_none() => self.name = Some(format!("{value:?}")),
            f => {
                let _ = write!(self.rest, " {f}={value:?}");
            }
        }
    }
}
