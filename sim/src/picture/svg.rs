//! The picture as SVG text, and the HTML report around it. Coordinates are integer tenths of a
//! pixel printed as `N.D`, so the output never depends on float formatting.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{lanes, state_at, Lane, Mark};
use crate::check::{ConnState, Micros};
use crate::run::RunOutcome;
use crate::scenario::{Direction, FaultKind};

/// The picture's width, px (a laptop screen's).
const WIDTH: i64 = 1200;
/// Where the plot starts (the lanes' labels on its left), px.
const PLOT_X: i64 = 180;
/// The plot's width, px.
const PLOT_W: i64 = 1000;
/// One client's lane, px: ticks above a connection band.
const LANE_H: i64 = 24;
/// An aggregate lane, px: a histogram above a band of the share connected.
const AGG_H: i64 = 60;
/// Tick height in a client's lane, px.
const TICK_H: i64 = 12;
/// Connection band height in a client's lane, px.
const BAND_H: i64 = 6;
/// Histogram height and share band height of an aggregate lane, px.
const HIST_H: i64 = 40;
const SHARE_H: i64 = 10;
/// Time bins of an aggregate lane (5 px each).
const BINS: i64 = 200;
/// Legend swatch and text.
const LEGEND_ROW_H: i64 = 16;
/// Approximate width of one character of 11 px monospace, tenths of px.
const CHAR_W10: i64 = 67;
/// Lines of trace in a failing run's page, as many as `mqsim sim` prints.
const FAILURE_TAIL_LINES: usize = 30;
/// Lane labels are cut to this many characters.
const LABEL_CHARS: usize = 24;

fn conn_colour(s: ConnState) -> &'static str {
    match s {
        ConnState::Connected => "#b7e4c7",
        ConnState::Connecting => "#ffe08a",
        ConnState::Down => "#f4b6b6",
    }
}

fn conn_label(s: ConnState) -> &'static str {
    match s {
        ConnState::Connected => "connected",
        ConnState::Connecting => "connecting",
        ConnState::Down => "down",
    }
}

/// Tenths of a pixel as `N.D`.
fn px(v10: i64) -> String {
    let sign = if v10 < 0 { "-" } else { "" };
    let a = v10.abs();
    format!("{sign}{}.{}", a / 10, a % 10)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Simulated time to x, tenths of px.
struct Scale {
    end: Micros,
}

impl Scale {
    fn x10(&self, t: Micros) -> i64 {
        let t = t.min(self.end) as i128;
        (PLOT_X * 10) + (t * i128::from(PLOT_W * 10) / i128::from(self.end.max(1))) as i64
    }
}

fn fault_name(k: FaultKind) -> &'static str {
    match k {
        FaultKind::Partition => "partition",
        FaultKind::HalfOpen(Direction::Up) => "half-open up",
        FaultKind::HalfOpen(Direction::Down) => "half-open down",
        FaultKind::Reset => "reset",
        FaultKind::WifiDrop => "wifi-drop",
        FaultKind::BrokerPowerCut => "broker power cut",
        FaultKind::BrokerRestart => "broker restart",
    }
}

/// The run's picture as a standalone SVG document.
pub fn svg(out: &RunOutcome) -> String {
    let sc = &out.scenario;
    let lanes = lanes(out);
    let scale = Scale {
        end: out.simulated_ms.max(1) * 1_000,
    };
    let mut body = String::new();

    // Title and summary.
    let all = &out.report.summary.all;
    let _ = writeln!(
        body,
        r#"<text x="8" y="18" font-size="13" font-weight="bold">{} — {}</text>"#,
        esc(&sc.file),
        esc(&sc.description)
    );
    let _ = writeln!(
        body,
        r#"<text x="8" y="34" font-size="11">seed {} · tick {} ms · {} devices · published {} · refused {} · delivered {} · lost {} · duplicated {} · reconnects {} · violations {}</text>"#,
        sc.seed,
        sc.tick_ms,
        sc.devices.iter().map(|d| u64::from(d.count)).sum::<u64>(),
        all.published,
        all.refused,
        all.delivered,
        all.lost,
        all.duplicated,
        all.reconnects,
        out.violations.len()
    );

    // Legend, wrapped.
    let mut items: Vec<(String, String)> = Mark::ALL
        .iter()
        .map(|m| {
            (
                format!(r#"<rect width="3" height="10" fill="{}"/>"#, m.colour()),
                m.label().to_string(),
            )
        })
        .collect();
    for s in [ConnState::Connecting, ConnState::Connected, ConnState::Down] {
        items.push((
            format!(
                r#"<rect width="10" height="10" fill="{}"/>"#,
                conn_colour(s)
            ),
            conn_label(s).to_string(),
        ));
    }
    items.push((
        r##"<rect width="10" height="10" fill="#000" fill-opacity="0.12"/>"##.to_string(),
        "fault".to_string(),
    ));
    items.push((
        r##"<path d="M2 2h6l-3 6z" fill="#000"/>"##.to_string(),
        "reconnect".to_string(),
    ));
    items.push((
        r##"<path d="M5 0v10" stroke="#555" stroke-dasharray="2,2"/>"##.to_string(),
        "heal".to_string(),
    ));
    let (mut lx10, mut ly) = (80, 44);
    for (swatch, label) in &items {
        let w10 = 220 + label.len() as i64 * CHAR_W10;
        if lx10 + w10 > (WIDTH - 8) * 10 {
            lx10 = 80;
            ly += LEGEND_ROW_H;
        }
        let _ = writeln!(
            body,
            r#"<g transform="translate({},{})">{swatch}<text x="14" y="9" font-size="11">{}</text></g>"#,
            px(lx10),
            ly,
            esc(label)
        );
        lx10 += w10;
    }

    // Lanes.
    let top = ly + LEGEND_ROW_H + 22;
    let mut y = top;
    let mut lane_y: Vec<(i64, i64)> = Vec::new();
    for (i, lane) in lanes.iter().enumerate() {
        let h = if lane.aggregate { AGG_H } else { LANE_H };
        if i % 2 == 1 {
            let _ = writeln!(
                body,
                r##"<rect x="0" y="{y}" width="{WIDTH}" height="{h}" fill="#f6f6f6"/>"##
            );
        }
        lane_y.push((y, h));
        y += h;
    }
    let bottom = y;
    // Faults under everything else of the lanes.
    for f in &sc.faults {
        let (x0, x1) = (
            scale.x10(f.at_ms * 1_000),
            scale.x10((f.at_ms + f.duration_ms) * 1_000),
        );
        let w10 = (x1 - x0).max(15);
        let hit = |l: &Lane| match &f.target {
            Some(t) if !f.kind.targets_broker() => l.targets.iter().any(|n| n == t),
            _ => true,
        };
        for (lane, (ly, h)) in lanes.iter().zip(&lane_y) {
            if hit(lane) {
                let _ = writeln!(
                    body,
                    r##"<rect x="{}" y="{ly}" width="{}" height="{h}" fill="#000" fill-opacity="0.12"/>"##,
                    px(x0),
                    px(w10)
                );
            }
        }
        let what = match &f.target {
            Some(t) if !f.kind.targets_broker() => format!("{} {t}", fault_name(f.kind)),
            _ => fault_name(f.kind).to_string(),
        };
        let _ = writeln!(
            body,
            r#"<text x="{}" y="{}" font-size="10">{}</text>"#,
            px(x0),
            top - 4,
            esc(&what)
        );
    }
    for (lane, (ly, _)) in lanes.iter().zip(&lane_y) {
        if lane.aggregate {
            aggregate_lane(&mut body, lane, *ly, &scale);
        } else {
            client_lane(&mut body, lane, *ly, &scale);
        }
    }
    // The heal.
    let hx = px(scale.x10(sc.duration_ms * 1_000));
    let _ = writeln!(
        body,
        r##"<path d="M{hx} {} V{bottom}" stroke="#555" stroke-dasharray="4,3"/><text x="{hx}" y="{}" font-size="10" text-anchor="end">heal </text>"##,
        top - 14,
        top - 14
    );

    // Time axis.
    let end_s = scale.end / 1_000_000;
    let step = [
        1u64, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
    ]
    .into_iter()
    .find(|s| end_s / s <= 12)
    .unwrap_or(end_s.max(1));
    let ay = bottom + 6;
    let _ = writeln!(
        body,
        r##"<path d="M{PLOT_X} {ay}h{PLOT_W}" stroke="#333"/>"##
    );
    let mut t = 0;
    while t <= end_s {
        let x = px(scale.x10(t * 1_000_000));
        let _ = writeln!(
            body,
            r##"<path d="M{x} {ay}v5" stroke="#333"/><text x="{x}" y="{}" font-size="10" text-anchor="middle">{t}</text>"##,
            ay + 16
        );
        t += step;
    }
    let _ = writeln!(
        body,
        r#"<text x="{}" y="{}" font-size="10" text-anchor="end">simulated s</text>"#,
        PLOT_X + PLOT_W,
        ay + 30
    );
    let height = ay + 40;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"monospace\">\n<rect width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/>\n{body}</svg>\n"
    )
}

fn label(body: &mut String, lane: &Lane, y: i64) {
    let text: String = lane.label.chars().take(LABEL_CHARS).collect();
    let weight = if lane.aggregate {
        " font-weight=\"bold\""
    } else {
        ""
    };
    let _ = writeln!(
        body,
        r#"<text x="8" y="{}" font-size="11"{weight}>{}</text>"#,
        y + 15,
        esc(&text)
    );
    if !lane.note.is_empty() {
        let _ = writeln!(
            body,
            r#"<text x="8" y="{}" font-size="9">{}</text>"#,
            y + 28,
            esc(&lane.note)
        );
    }
}

/// Consecutive (start, state) segments of a client's connection from 0 to the end.
fn segments(changes: &[(Micros, ConnState)], end: Micros) -> Vec<(Micros, Micros, ConnState)> {
    let mut out: Vec<(Micros, Micros, ConnState)> = Vec::new();
    let mut cur = (0, ConnState::Down);
    for &(t, s) in changes {
        if s == cur.1 {
            continue;
        }
        if t > cur.0 {
            out.push((cur.0, t, cur.1));
        }
        cur = (t, s);
    }
    if end > cur.0 {
        out.push((cur.0, end, cur.1));
    }
    out
}

fn client_lane(body: &mut String, lane: &Lane, y: i64, scale: &Scale) {
    label(body, lane, y);
    // The connection band, one path per state.
    let band_y = y + 2 + TICK_H + 2;
    let mut paths: BTreeMap<ConnState, String> = BTreeMap::new();
    for (a, b, s) in segments(lane.conn.first().map_or(&[][..], |c| c), scale.end) {
        let (x0, x1) = (scale.x10(a), scale.x10(b));
        if x1 > x0 {
            let _ = write!(
                paths.entry(s).or_default(),
                "M{} {band_y}h{}v{BAND_H}h-{}z",
                px(x0),
                px(x1 - x0),
                px(x1 - x0)
            );
        }
    }
    for (s, d) in paths {
        let _ = writeln!(body, r#"<path d="{d}" fill="{}"/>"#, conn_colour(s));
    }
    // The readings' ticks, one path per mark, worst drawn last (on top); one tick per whole
    // pixel and mark, so a subscriber receiving a fleet's readings stays a small file.
    let mut at: BTreeMap<Mark, std::collections::BTreeSet<i64>> = BTreeMap::new();
    for (t, m) in &lane.marks {
        at.entry(*m).or_default().insert(scale.x10(*t) / 10);
    }
    let mut ticks: BTreeMap<Mark, String> = BTreeMap::new();
    for (m, xs) in at {
        let d = ticks.entry(m).or_default();
        for x in xs {
            let _ = write!(d, "M{x}.5 {}v{TICK_H}", y + 2);
        }
    }
    for (m, d) in ticks {
        let _ = writeln!(
            body,
            r#"<path d="{d}" stroke="{}" stroke-width="1.5"/>"#,
            m.colour()
        );
    }
    reconnect_marks(body, &lane.reconnects, band_y, scale);
}

fn reconnect_marks(body: &mut String, times: &[Micros], band_y: i64, scale: &Scale) {
    if times.is_empty() {
        return;
    }
    let mut d = String::new();
    for t in times {
        let _ = write!(d, "M{} {}l-3 -5h6z", px(scale.x10(*t)), band_y + 1);
    }
    let _ = writeln!(body, r##"<path d="{d}" fill="#000"/>"##);
}

fn aggregate_lane(body: &mut String, lane: &Lane, y: i64, scale: &Scale) {
    label(body, lane, y);
    let bin_of = |t: Micros| -> usize {
        ((i128::from(t.min(scale.end - 1)) * i128::from(BINS)) / i128::from(scale.end)) as usize
    };
    let bin_x10 = |b: i64| PLOT_X * 10 + b * PLOT_W * 10 / BINS;
    // Readings per bin and mark, stacked.
    let mut counts = vec![[0u64; Mark::ALL.len()]; BINS as usize];
    for (t, m) in &lane.marks {
        let i = Mark::ALL.iter().position(|x| x == m).unwrap_or(0);
        counts[bin_of(*t)][i] += 1;
    }
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as i64;
    let base10 = (y + 2 + HIST_H) * 10;
    let mut paths: BTreeMap<usize, String> = BTreeMap::new();
    for (b, c) in counts.iter().enumerate() {
        let (x0, x1) = (bin_x10(b as i64), bin_x10(b as i64 + 1));
        let mut cum = 0i64;
        for (i, n) in c.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let lo = base10 - cum * HIST_H * 10 / max;
            cum += *n as i64;
            let hi = base10 - cum * HIST_H * 10 / max;
            let _ = write!(
                paths.entry(i).or_default(),
                "M{} {}h{}v{}h-{}z",
                px(x0),
                px(hi),
                px(x1 - x0),
                px(lo - hi),
                px(x1 - x0)
            );
        }
    }
    for (i, d) in paths {
        let _ = writeln!(body, r#"<path d="{d}" fill="{}"/>"#, Mark::ALL[i].colour());
    }
    let _ = writeln!(
        body,
        r#"<text x="{}" y="{}" font-size="9" text-anchor="end">{max} readings / bin</text>"#,
        PLOT_X - 4,
        y + 52
    );
    // The share of the group in each state at each bin's middle.
    let share_y10 = (y + 4 + HIST_H) * 10;
    let size = lane.conn.len().max(1) as i64;
    let mut paths: BTreeMap<ConnState, String> = BTreeMap::new();
    for b in 0..BINS {
        let mid = (i128::from(scale.end) * i128::from(2 * b + 1) / i128::from(2 * BINS)) as Micros;
        let mut n: BTreeMap<ConnState, i64> = BTreeMap::new();
        for c in &lane.conn {
            *n.entry(state_at(c, mid)).or_default() += 1;
        }
        let (x0, x1) = (bin_x10(b), bin_x10(b + 1));
        let mut cum = 0;
        for s in [ConnState::Connected, ConnState::Connecting, ConnState::Down] {
            let k = n.get(&s).copied().unwrap_or(0);
            if k == 0 {
                continue;
            }
            let lo = cum * SHARE_H * 10 / size;
            cum += k;
            let hi = cum * SHARE_H * 10 / size;
            let _ = write!(
                paths.entry(s).or_default(),
                "M{} {}h{}v{}h-{}z",
                px(x0),
                px(share_y10 + lo),
                px(x1 - x0),
                px(hi - lo),
                px(x1 - x0)
            );
        }
    }
    for (s, d) in paths {
        let _ = writeln!(body, r#"<path d="{d}" fill="{}"/>"#, conn_colour(s));
    }
    // Reconnects: one mark per bin that has any, its count as a tooltip.
    let mut per_bin: BTreeMap<usize, u64> = BTreeMap::new();
    for t in &lane.reconnects {
        *per_bin.entry(bin_of(*t)).or_default() += 1;
    }
    for (b, n) in per_bin {
        let x = px(bin_x10(b as i64) + PLOT_W * 10 / BINS / 2);
        let _ = writeln!(
            body,
            r##"<path d="M{x} {}l-3 -5h6z" fill="#000"><title>{n} reconnects</title></path>"##,
            y + 4 + HIST_H + 1
        );
    }
}

/// One self-contained HTML page: the picture, the report and, for a failing run, what broke
/// with its replay line. No scripts, no external resources.
pub fn html(out: &RunOutcome) -> String {
    let mut text = out.report.render();
    if out.failed() {
        text.push('\n');
        text.push_str(&out.failure_text(FAILURE_TAIL_LINES));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} seed {}</title>\n<style>body{{font-family:monospace;margin:16px;background:#fff;color:#000}}pre{{font-size:12px}}</style>\n</head>\n<body>\n{}<h2>report</h2>\n<pre>{}</pre>\n</body>\n</html>\n",
        esc(&out.scenario.file),
        out.scenario.seed,
        svg(out),
        esc(&text)
    )
}
