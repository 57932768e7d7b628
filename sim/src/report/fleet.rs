//! A large group's worst devices, under the report's table: the group's row sums its devices, and
//! these lines name the ones to look at first (most lost, most refused, highest p99), within 80
//! columns.

use std::fmt::Write as _;

use crate::check::Records;
use crate::picture::fleet::{device_stats, worst, DeviceStats};
use crate::scenario::Scenario;

/// A group of at least this many devices gets its worst devices named.
pub const GROUP_WORST_FROM: u32 = 10;
/// How many are named.
pub const WORST_NAMED: usize = 3;

/// One large group's worst devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupWorst {
    pub group: String,
    pub size: u32,
    /// Worst first.
    pub worst: Vec<DeviceStats>,
}

/// The worst devices of every group of `sc` with at least [`GROUP_WORST_FROM`] devices.
pub fn find(sc: &Scenario, records: &Records) -> Vec<GroupWorst> {
    let groups: Vec<_> = sc
        .devices
        .iter()
        .filter(|g| g.count >= GROUP_WORST_FROM)
        .collect();
    if groups.is_empty() {
        return Vec::new();
    }
    let stats = device_stats(records);
    groups
        .into_iter()
        .map(|g| GroupWorst {
            group: g.name.clone(),
            size: g.count,
            worst: worst(&stats, &g.client_ids(), WORST_NAMED)
                .into_iter()
                .cloned()
                .collect(),
        })
        .collect()
}

/// The lines: a heading with the columns, then a line per device.
pub(super) fn render(out: &mut String, groups: &[GroupWorst]) {
    for g in groups {
        let head = format!("worst of {} ({} devices)", g.group, g.size);
        let _ = writeln!(
            out,
            "{head:<34} {:>6} {:>6} {:>6} {:>10} {:>6}",
            "pub", "lost", "refus", "p99 ms", "reconn"
        );
        for d in &g.worst {
            let p99 = d.p99_us().map_or("-".to_string(), |us| {
                format!("{}.{}", us / 1000, (us % 1000) / 100)
            });
            let _ = writeln!(
                out,
                "  {:<32} {:>6} {:>6} {:>6} {:>10} {:>6}",
                d.name, d.published, d.lost, d.refused, p99, d.reconnects
            );
        }
    }
}
