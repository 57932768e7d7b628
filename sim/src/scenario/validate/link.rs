//! `[link.NAME]` tables, checked: the path a device's or subscriber's connection takes
//! ([`LinkSpec`]), and the `link` each client names.

use std::collections::BTreeMap;

use super::super::model::{LinkSpec, Loss, IDEAL_LINK};
use super::super::raw::{RawLink, Sp};
use super::Checker;
use crate::net::link::LATENCY_US_MAX;

impl Checker<'_> {
    /// A link's milliseconds (`latency_ms`, `jitter_ms`: finite, >= 0, at most
    /// [`LATENCY_US_MAX`], a fraction allowed) to microseconds, the model's resolution. A value
    /// finer than 1 µs (`0.0005`) is refused rather than rounded, so that the file says what
    /// runs; the float noise of a decimal fraction (`0.05 * 1000` = 50.000000000000007) is not
    /// "finer".
    fn millis_us(&mut self, key: &str, value: &Sp<f64>) -> u64 {
        let ms = *value.get_ref();
        let max_ms = LATENCY_US_MAX / 1_000;
        if !ms.is_finite() || ms < 0.0 || ms > max_ms as f64 {
            self.at(
                value,
                format!("{key} = {ms} is not a time in ms in 0..={max_ms}"),
            );
            return 0;
        }
        let us = ms * 1_000.0;
        let whole = us.round();
        // 1e-3 µs: far above the error of `ms * 1000` for any ms up to the maximum (about
        // 5e-7 µs at 3.6e9 µs), far below the 1 µs resolution.
        if (us - whole).abs() > 1e-3 {
            self.at(
                value,
                format!("{key} = {ms}: the resolution is 1 µs (0.001 ms)"),
            );
        }
        whole as u64
    }
}

/// `[link.NAME]`: either `loss` or `gilbert_elliott` (probabilities), `wifi_join_ms = [min, max]`
/// with min <= max. The ideal link is always defined.
pub(super) fn validate_links(
    c: &mut Checker<'_>,
    raw: &BTreeMap<Sp<String>, RawLink>,
) -> BTreeMap<String, LinkSpec> {
    let mut links = BTreeMap::new();
    links.insert(IDEAL_LINK.to_string(), LinkSpec::ideal());
    for (name, l) in raw {
        let loss = match (&l.loss, &l.gilbert_elliott) {
            (Some(p), Some(_)) => {
                c.at(
                    p,
                    format!(
                        "link `{}`: give either loss or gilbert_elliott, not both",
                        name.get_ref()
                    ),
                );
                Loss::None
            }
            (Some(p), None) => {
                let p = c.probability("loss", p);
                if p == 0.0 {
                    Loss::None
                } else {
                    Loss::Independent(p)
                }
            }
            (None, Some(ge)) => Loss::GilbertElliott {
                p_good_to_bad: c.probability("p_good_to_bad", &ge.p_good_to_bad),
                p_bad_to_good: c.probability("p_bad_to_good", &ge.p_bad_to_good),
                loss_good: c.probability("loss_good", &ge.loss_good),
                loss_bad: c.probability("loss_bad", &ge.loss_bad),
            },
            (None, None) => Loss::None,
        };
        let wifi_join_ms = match &l.wifi_join_ms {
            Some(r) => {
                let [lo, hi] = *r.get_ref();
                if lo > hi {
                    c.at(r, format!("wifi_join_ms = [{lo}, {hi}]: min > max"));
                }
                (lo, hi)
            }
            None => (1000, 4000),
        };
        links.insert(
            name.get_ref().clone(),
            LinkSpec {
                latency_us: l
                    .latency_ms
                    .as_ref()
                    .map_or(5_000, |v| c.millis_us("latency_ms", v)),
                jitter_us: l
                    .jitter_ms
                    .as_ref()
                    .map_or(0, |v| c.millis_us("jitter_ms", v)),
                loss,
                wifi_join_ms,
                loss_at_sender: l.loss_at_sender.unwrap_or(false),
            },
        );
    }
    links
}

/// A device's or subscriber's `link`: defined in `[link.*]`, the ideal link where absent.
pub(super) fn validate_link_ref(
    c: &mut Checker<'_>,
    links: &BTreeMap<String, LinkSpec>,
    link: &Option<Sp<String>>,
) -> String {
    match link {
        Some(l) if !links.contains_key(l.get_ref()) => {
            c.at(l, format!("link `{}` is not defined", l.get_ref()));
            IDEAL_LINK.to_string()
        }
        Some(l) => l.get_ref().clone(),
        None => IDEAL_LINK.to_string(),
    }
}
