//! The timeline picture (`mqsim sim --timeline`): its SVG for a small run as a snapshot, the
//! colours the ledger's outcomes get, and a real browser's rendering of the HTML page (headless
//! Chromium: a screenshot that is not blank and shows the delivered colour).

use std::path::{Path, PathBuf};
use std::process::Command;

use mqsim_sim::picture::{html, svg, Mark};
use mqsim_sim::run::{run, RunOptions, RunOutcome};
use mqsim_sim::scenario::Scenario;

/// Two PubSubClient devices at QoS 0 over a lossy link, one esp-mqtt device at QoS 1, a
/// partition of one QoS 0 device and a WiFi drop of the other: refused, lost-in-the-network and
/// late readings beside delivered ones, reconnects, two shaded faults.
const SMALL: &str = r##"
description = "timeline test: QoS 0 and QoS 1 devices, a partition and a WiFi drop"
seed = 3
duration_s = 40
heal_s = 15
[link.wifi]
latency_ms = 20
jitter_ms = 5
loss = 0.05
[[device]]
name = "esp"
count = 2
profile = "pubsubclient"
qos = 0
interval_ms = 2000
link = "wifi"
[[device]]
name = "idf"
profile = "esp-mqtt"
qos = 1
interval_ms = 4000
link = "wifi"
[[subscriber]]
name = "sub"
filter = "#"
qos = 1
[[fault]]
kind = "partition"
target = "esp-0"
at_s = 10
duration_s = 25
[[fault]]
kind = "wifi-drop"
target = "esp-1"
at_s = 20
duration_s = 8
"##;

fn small_run() -> RunOutcome {
    let sc = Scenario::parse(SMALL, "timeline-small.toml").expect("valid");
    run(&sc, &RunOptions::default()).expect("runs")
}

#[test]
fn the_svg_of_a_small_run_is_stable_and_shows_its_outcomes() {
    let out = small_run();
    let picture = svg(&out);
    // Deterministic: a second run of the same seed draws the same bytes.
    assert_eq!(picture, svg(&small_run()), "same seed, different pictures");
    // What the ledger saw is drawn in its colours: the partitioned QoS 0 device lost readings
    // in the network and had others refused while it reconnected.
    let recs = &out.records;
    let refused = recs.publishes.iter().filter(|p| !p.accepted).count();
    assert!(refused > 0, "the scenario should refuse some readings");
    for m in [Mark::Delivered, Mark::Refused] {
        assert!(
            picture.contains(&format!("stroke=\"{}\"", m.colour())),
            "{m:?} not drawn"
        );
    }
    assert!(picture.contains("partition esp-0") && picture.contains("wifi-drop esp-1"));
    for lane in ["esp-0", "esp-1", "idf", "sub"] {
        assert!(
            picture.contains(&format!(">{lane}</text>")),
            "no lane {lane}"
        );
    }
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!("timeline-small", picture));
}

/// Chromium's binary, if installed (Debian's package `chromium`).
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Pixels of the screenshot that are not the white background, and those of `rgb` (within a
/// small tolerance for anti-aliasing).
fn count_pixels(png_path: &Path, rgb: [u8; 3]) -> (usize, usize, usize) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let channels = info.color_type.samples();
    let (mut ink, mut colour, mut total) = (0, 0, 0);
    for px in buf[..info.buffer_size()].chunks_exact(channels) {
        total += 1;
        if px[..3].iter().any(|&c| c < 235) {
            ink += 1;
        }
        if px[..3].iter().zip(rgb).all(|(&a, b)| a.abs_diff(b) <= 12) {
            colour += 1;
        }
    }
    (ink, colour, total)
}

#[test]
fn headless_chromium_renders_the_html_page() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("MQSIM_REQUIRE_CHROMIUM").is_none(),
            "MQSIM_REQUIRE_CHROMIUM is set but chromium is not installed"
        );
        println!("skipped: chromium is not installed (Debian: apt-get install chromium)");
        return;
    };
    let out = small_run();
    let dir = std::env::temp_dir().join(format!("mqsim-timeline-{}", std::process::id()));
    let profile = dir.join("profile");
    std::fs::create_dir_all(&profile).expect("temp dir");
    let page = dir.join("run.html");
    std::fs::write(&page, html(&out)).expect("page written");
    let shot = dir.join("shot.png");
    let status = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1200,800")
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("chromium starts");
    assert!(status.success(), "chromium failed: {status}");
    // The delivered colour, #009e73.
    let (ink, green, total) = count_pixels(&shot, [0x00, 0x9e, 0x73]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(total >= 1200 * 700, "screenshot of {total} pixels");
    assert!(
        ink * 100 > total,
        "blank screenshot: {ink} of {total} pixels drawn"
    );
    assert!(
        green > 50,
        "no delivered ticks visible: {green} pixels of #009e73"
    );
}

/// `mqsim sim FILE --timeline F.html` end to end: a failing run (an `[expect]` range it cannot
/// meet) writes the page and prints the picture's command under its replay line.
#[test]
fn a_failing_run_writes_its_page_and_prints_the_timeline_command() {
    let dir = std::env::temp_dir().join(format!("mqsim-timeline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("fails.toml");
    let text = format!("{SMALL}\n[expect]\ndelivered = [0, 0]\n");
    std::fs::write(&file, text).expect("scenario written");
    let page = dir.join("run.html");
    let out = Command::new(env!("CARGO_BIN_EXE_mqsim"))
        .arg("sim")
        .arg(&file)
        .args(["--quiet", "--timeline"])
        .arg(&page)
        .output()
        .expect("run mqsim sim");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let replay = format!(
        "replay: cargo run --release -- sim {} --seed 3",
        file.display()
    );
    let timeline = format!(
        "timeline: cargo run --release -- sim {} --seed 3 --timeline fail.svg",
        file.display()
    );
    let at = stderr.find(&replay).expect("a replay line");
    assert!(
        stderr[at..].lines().nth(1) == Some(timeline.as_str()),
        "no timeline line under the replay line:\n{stderr}"
    );
    let html = std::fs::read_to_string(&page).expect("page written");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(html.contains("expectation not met") && html.contains("delivered = "));
}
