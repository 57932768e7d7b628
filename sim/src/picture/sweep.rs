//! A sweep's picture: `mqsim sim FILE --seeds A..B --timeline out.svg`. One row per figure of the
//! sweep's table ([`crate::sweep::table::Table`]: per QoS, then the whole run's causes and
//! costs), each on its own scale from 0 to its largest value: a line from min to max, a box from
//! p50 to p99, a tick at p50, the four values written beside it. Deterministic, as the run's
//! picture: the same table gives the same bytes.

use std::fmt::Write as _;

use crate::sweep::table::Table;

const ROW_PX: u32 = 22;
const LABEL_PX: u32 = 200;
const BAR_PX: u32 = 420;
const VALUES_PX: u32 = 300;

/// The table's distributions as SVG, under the line `head` (what was swept).
pub fn sweep_svg(head: &str, table: &Table) -> String {
    let mut rows: Vec<(String, [u64; 4], bool)> = Vec::new();
    for r in &table.rows {
        let ms = r.metric.ends_with("_us");
        let label = format!("qos{} {}", r.qos, r.metric.replace("_us", " ms"));
        rows.push((label, [r.min, r.p50, r.p99, r.max], ms));
    }
    for r in &table.whole {
        rows.push((r.metric.clone(), [r.min, r.p50, r.p99, r.max], false));
    }
    let width = LABEL_PX + BAR_PX + VALUES_PX;
    let height = 60 + ROW_PX * rows.len() as u32 + 20;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r##"<rect width="{width}" height="{height}" fill="#fff"/>"##
    );
    let _ = writeln!(
        s,
        r#"<text x="8" y="18" font-size="13">{}</text>"#,
        escape(head)
    );
    let _ = writeln!(
        s,
        r#"<text x="8" y="36">{} runs, {} failed, broken connection in {}; each row on its own scale from 0: line min-max, box p50-p99, tick p50</text>"#,
        table.runs, table.failed, table.broken
    );
    for (i, (label, [min, p50, p99, max], ms)) in rows.iter().enumerate() {
        let y = 56 + ROW_PX * i as u32;
        let scale = (*max).max(1) as f64;
        let x = |v: u64| LABEL_PX as f64 + BAR_PX as f64 * v as f64 / scale;
        let _ = writeln!(s, r#"<text x="8" y="{}">{}</text>"#, y + 11, escape(label));
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{}" x2="{:.1}" y2="{}" stroke="#888"/>"##,
            x(*min),
            y + 7,
            x(*max),
            y + 7
        );
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{}" width="{:.1}" height="10" fill="#9ecae1" stroke="#3182bd"/>"##,
            x(*p50),
            y + 2,
            (x(*p99) - x(*p50)).max(1.0)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{}" x2="{:.1}" y2="{}" stroke="#08306b" stroke-width="2"/>"##,
            x(*p50),
            y,
            x(*p50),
            y + 14
        );
        let v = |n: u64| {
            if *ms {
                format!("{}.{}", n / 1000, (n % 1000) / 100)
            } else {
                n.to_string()
            }
        };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}">{} / {} / {} / {}</text>"#,
            LABEL_PX + BAR_PX + 10,
            y + 11,
            v(*min),
            v(*p50),
            v(*p99),
            v(*max)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::table::{Row, Table, WholeRow};

    #[test]
    fn a_row_per_figure_scaled_to_its_own_maximum() {
        let table = Table {
            runs: 3,
            failed: 0,
            broken: 1,
            rows: vec![Row {
                qos: 1,
                metric: "p99_us",
                runs: 3,
                min: 1_000,
                p50: 2_000,
                p99: 4_000,
                max: 4_000,
            }],
            whole: vec![WholeRow {
                metric: "battery_days".into(),
                runs: 3,
                min: 10,
                p50: 12,
                p99: 14,
                max: 14,
            }],
            failing: vec![],
        };
        let svg = sweep_svg("x.toml, seeds 1..4", &table);
        assert_eq!(
            svg,
            sweep_svg("x.toml, seeds 1..4", &table),
            "deterministic"
        );
        assert!(svg.contains(">qos1 p99 ms</text>"), "{svg}");
        assert!(svg.contains(">1.0 / 2.0 / 4.0 / 4.0</text>"), "{svg}");
        assert!(svg.contains(">battery_days</text>"), "{svg}");
        assert!(svg.contains(">10 / 12 / 14 / 14</text>"), "{svg}");
        // p50 of 2,000 on a scale to 4,000: half the bar from the labels.
        assert!(svg.contains(r#"<rect x="410.0" y="58""#), "{svg}");
        assert!(
            svg.contains("3 runs, 0 failed, broken connection in 1"),
            "{svg}"
        );
    }
}
