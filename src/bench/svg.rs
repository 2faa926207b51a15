//! A self-contained SVG chart of a benchmark run (`bench rpc --svg`), written by hand: throughput
//! per side as grouped bars per in-flight level, and next to it p50 and p99 latency on a log scale.

use std::fmt::Write as _;

use super::report::{BenchReport, Level, Sample};

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 500.0;
/// Top and bottom of both plot areas.
const PLOT_TOP: f64 = 112.0;
const PLOT_BOTTOM: f64 = 420.0;
/// Left and right edges of the throughput panel and of the latency panel.
const THROUGHPUT_X: (f64, f64) = (78.0, 430.0);
const LATENCY_X: (f64, f64) = (528.0, 880.0);
const FONT: &str = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";

/// One side as drawn: its legend name, colour and the sample of a level.
struct Side {
    name: &'static str,
    colour: &'static str,
    pick: fn(&Level) -> Option<&Sample>,
}

const SIDES: [Side; 6] = [
    Side {
        name: "(a) raw lapin",
        colour: "#4e79a7",
        pick: |l| Some(&l.raw),
    },
    Side {
        name: "(a') raw, contract envelope",
        colour: "#76b7b2",
        pick: |l| l.raw_contract.as_ref(),
    },
    Side {
        name: "(b) intercomm",
        colour: "#f28e2b",
        pick: |l| Some(&l.intercomm),
    },
    Side {
        name: "(c) HTTP → 202",
        colour: "#edc948",
        pick: |l| l.http_accepted.as_ref(),
    },
    Side {
        name: "(c) HTTP submit+wait",
        colour: "#59a14f",
        pick: |l| l.http_submit.as_ref(),
    },
    Side {
        name: "(c) HTTP /v1/rpc",
        colour: "#e15759",
        pick: |l| l.http_rpc.as_ref(),
    },
];

/// The chart as SVG text.
#[must_use]
pub fn chart(report: &BenchReport) -> String {
    let sides: Vec<&Side> = SIDES
        .iter()
        .filter(|side| report.levels.iter().any(|l| (side.pick)(l).is_some()))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" {FONT}>"
    );
    let _ = writeln!(
        out,
        "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>"
    );
    header(&mut out, report, &sides);
    throughput_panel(&mut out, report, &sides);
    latency_panel(&mut out, report, &sides);
    out.push_str("</svg>\n");
    out
}

fn header(out: &mut String, report: &BenchReport, sides: &[&Side]) {
    let title = format!(
        "intercomm bench rpc, echo: {} queues, {}, {}",
        report.queue_type,
        if report.persistent {
            "persistent messages"
        } else {
            "transient messages"
        },
        if report.confirms {
            "publisher confirms"
        } else {
            "no confirms"
        },
    );
    text(out, WIDTH / 2.0, 26.0, 16, "middle", "bold", &title);
    let rounds = report.levels.first().map_or(0, |l| l.raw_rounds.len());
    let peak = report
        .levels
        .iter()
        .flat_map(|l| SIDES.iter().filter_map(|s| (s.pick)(l)))
        .filter_map(|s| s.worker_peak_rss_kib)
        .max();
    let mut subtitle = format!(
        "prefetch 64, median of {rounds} round{} per side",
        if rounds == 1 { "" } else { "s" }
    );
    if let Some(kib) = peak {
        let _ = write!(
            subtitle,
            "; worker peak RSS (VmHWM): {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
    text(out, WIDTH / 2.0, 46.0, 12, "middle", "normal", &subtitle);

    // Legend: one swatch per side, then how to read the latency bars; a row that would run past
    // the right edge wraps.
    let start = 60.0;
    let mut x = start;
    let mut y = 66.0;
    for side in sides {
        let width = 19.0 + 7.2 * side.name.chars().count() as f64 + 22.0;
        if x + width > WIDTH - 20.0 {
            x = start;
            y += 20.0;
        }
        let _ = writeln!(
            out,
            "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{}\"/>",
            y - 11.0,
            side.colour
        );
        text(out, x + 19.0, y, 12, "start", "normal", side.name);
        x += width;
    }
    if x + 36.0 + 7.2 * 28.0 > WIDTH - 20.0 {
        x = start;
        y += 20.0;
    }
    let _ = writeln!(
        out,
        "<rect x=\"{x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"#777777\"/>\
         <rect x=\"{}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"#777777\" fill-opacity=\"0.35\"/>",
        y - 11.0,
        x + 16.0,
        y - 11.0
    );
    text(
        out,
        x + 36.0,
        y,
        12,
        "start",
        "normal",
        "latency: solid p50, pale p99",
    );
}

fn throughput_panel(out: &mut String, report: &BenchReport, sides: &[&Side]) {
    let (left, right) = THROUGHPUT_X;
    let max = report
        .levels
        .iter()
        .flat_map(|l| sides.iter().filter_map(|s| (s.pick)(l)))
        .map(|s| s.jobs_per_sec)
        .fold(0.0, f64::max);
    let step = nice_step(max.max(1.0) * 1.08 / 5.0);
    let top = (max.max(1.0) * 1.08 / step).ceil() * step;
    let y_of = |v: f64| PLOT_BOTTOM - v / top * (PLOT_BOTTOM - PLOT_TOP);
    text(
        out,
        (left + right) / 2.0,
        PLOT_TOP - 14.0,
        13,
        "middle",
        "bold",
        "Throughput (higher is better)",
    );
    let mut tick = 0.0;
    while tick <= top + step / 2.0 {
        let y = y_of(tick);
        grid_line(out, left, right, y);
        text(
            out,
            left - 6.0,
            y + 4.0,
            11,
            "end",
            "normal",
            &thousands(tick),
        );
        tick += step;
    }
    axis_titles(out, left, right, "jobs/s");
    bars(out, report, sides, left, right, |sample, x, w, out| {
        let y = y_of(sample.jobs_per_sec);
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"COLOUR\"/>",
            PLOT_BOTTOM - y
        );
        if w >= 22.0 {
            text(
                out,
                x + w / 2.0,
                y - 4.0,
                10,
                "middle",
                "normal",
                &bar_label(sample.jobs_per_sec, w),
            );
        }
    });
}

fn latency_panel(out: &mut String, report: &BenchReport, sides: &[&Side]) {
    let (left, right) = LATENCY_X;
    let samples: Vec<&Sample> = report
        .levels
        .iter()
        .flat_map(|l| sides.iter().filter_map(|s| (s.pick)(l)))
        .collect();
    let min = samples
        .iter()
        .map(|s| f64::from(s.p50_us.max(1)))
        .fold(f64::INFINITY, f64::min);
    let max = samples
        .iter()
        .map(|s| f64::from(s.p99_us.max(1)))
        .fold(1.0, f64::max);
    let min = if min.is_finite() { min } else { 1.0 };
    let low = 10f64.powf(min.log10().floor());
    let mut high = 10f64.powf(max.log10().ceil());
    if high <= low {
        high = low * 10.0;
    }
    let y_of = |v: f64| {
        let v = v.max(low);
        PLOT_BOTTOM
            - (v.log10() - low.log10()) / (high.log10() - low.log10()) * (PLOT_BOTTOM - PLOT_TOP)
    };
    text(
        out,
        (left + right) / 2.0,
        PLOT_TOP - 14.0,
        13,
        "middle",
        "bold",
        "Latency p50 and p99 (lower is better)",
    );
    let mut decade = low;
    while decade <= high * 1.001 {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v > high * 1.001 {
                break;
            }
            let y = y_of(v);
            grid_line(out, left, right, y);
            text(out, left - 6.0, y + 4.0, 11, "end", "normal", &thousands(v));
        }
        decade *= 10.0;
    }
    axis_titles(out, left, right, "latency µs (log scale)");
    bars(out, report, sides, left, right, |sample, x, w, out| {
        let p99 = y_of(f64::from(sample.p99_us.max(1)));
        let p50 = y_of(f64::from(sample.p50_us.max(1)));
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{p99:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"COLOUR\" fill-opacity=\"0.35\"/>",
            PLOT_BOTTOM - p99
        );
        let _ = writeln!(
            out,
            "<rect x=\"{x:.1}\" y=\"{p50:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"COLOUR\"/>",
            PLOT_BOTTOM - p50
        );
        if w >= 22.0 {
            text(
                out,
                x + w / 2.0,
                p99 - 4.0,
                10,
                "middle",
                "normal",
                &bar_label(f64::from(sample.p99_us), w),
            );
            if PLOT_BOTTOM - p50 >= 16.0 {
                let _ = writeln!(
                    out,
                    "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#ffffff\">{}</text>",
                    x + w / 2.0,
                    p50 + 12.0,
                    bar_label(f64::from(sample.p50_us), w)
                );
            }
        }
    });
}

/// Draw one group of bars per level between `left` and `right`; `bar` draws one sample at `x`
/// with width `w`, using the placeholder `COLOUR` for its fill.
fn bars(
    out: &mut String,
    report: &BenchReport,
    sides: &[&Side],
    left: f64,
    right: f64,
    bar: impl Fn(&Sample, f64, f64, &mut String),
) {
    let levels = report.levels.len().max(1) as f64;
    let group = (right - left) / levels;
    let bar_width = group * 0.84 / sides.len().max(1) as f64;
    for (i, level) in report.levels.iter().enumerate() {
        let start = left + group * i as f64 + group * 0.08;
        for (j, side) in sides.iter().enumerate() {
            if let Some(sample) = (side.pick)(level) {
                let mut drawn = String::new();
                bar(
                    sample,
                    start + bar_width * j as f64 + 1.0,
                    bar_width - 2.0,
                    &mut drawn,
                );
                out.push_str(&drawn.replace("COLOUR", side.colour));
            }
        }
        text(
            out,
            left + group * (i as f64 + 0.5),
            PLOT_BOTTOM + 17.0,
            12,
            "middle",
            "normal",
            &level.inflight.to_string(),
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{PLOT_BOTTOM}\" x2=\"{right}\" y2=\"{PLOT_BOTTOM}\" stroke=\"#333333\"/>\
         <line x1=\"{left}\" y1=\"{PLOT_TOP}\" x2=\"{left}\" y2=\"{PLOT_BOTTOM}\" stroke=\"#333333\"/>"
    );
}

fn axis_titles(out: &mut String, left: f64, right: f64, y_title: &str) {
    text(
        out,
        (left + right) / 2.0,
        PLOT_BOTTOM + 40.0,
        12,
        "middle",
        "normal",
        "round trips in flight",
    );
    let x = left - 54.0;
    let y = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
    let _ = writeln!(
        out,
        "<text x=\"{x}\" y=\"{y}\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 {x} {y})\">{}</text>",
        escape(y_title)
    );
}

fn grid_line(out: &mut String, left: f64, right: f64, y: f64) {
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{right}\" y2=\"{y:.1}\" stroke=\"#dddddd\"/>"
    );
}

fn text(out: &mut String, x: f64, y: f64, size: u32, anchor: &str, weight: &str, body: &str) {
    let _ = writeln!(
        out,
        "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" font-weight=\"{weight}\" fill=\"#222222\">{}</text>",
        escape(body)
    );
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&n| fraction <= n)
        .unwrap_or(10.0);
    nice * power
}

/// A tick label: `800`, `2 000`, `12 500`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.round());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{2009}');
        }
        grouped.push(c);
    }
    grouped
}

/// A bar's value as its label: whole, or in thousands ("13.7k") when the bar is too narrow for
/// five digits.
fn bar_label(value: f64, bar_width: f64) -> String {
    if bar_width < 40.0 && value >= 1000.0 {
        format!("{:.1}k", value / 1000.0)
    } else {
        format!("{value:.0}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{BenchReport, Level, Sample};

    fn sample(jobs_per_sec: f64, p50_us: u32, p99_us: u32) -> Sample {
        Sample {
            jobs: 1000,
            jobs_per_sec,
            p50_us,
            p99_us,
            max_us: p99_us * 2,
            load_cpu_ms_per_1k: Some(40.0),
            worker_cpu_ms_per_1k: Some(30.0),
            gateway_cpu_ms_per_1k: None,
            broker_cpu_ms_per_1k: Some(70.0),
            load_peak_rss_kib: Some(40_000),
            worker_peak_rss_kib: Some(51_200),
            gateway_peak_rss_kib: None,
        }
    }

    #[test]
    fn draws_every_side_and_level() {
        let level = |inflight, scale: f64| {
            Level::new(
                inflight,
                1000,
                vec![sample(1400.0 * scale, 650, 950)],
                vec![sample(1350.0 * scale, 700, 1000)],
            )
            .with_raw_contract(vec![sample(1380.0 * scale, 660, 960)])
            .with_http(
                vec![sample(1250.0 * scale, 740, 1050)],
                vec![sample(1200.0 * scale, 750, 1100)],
                vec![sample(1150.0 * scale, 760, 1200)],
            )
        };
        let report = BenchReport::new(
            intercomm_core::QueueType::Classic,
            vec![level(1, 1.0), level(64, 10.0)],
        );
        let svg = chart(&report);
        assert!(svg.starts_with("<?xml"));
        assert!(svg.trim_end().ends_with("</svg>"));
        for name in [
            "(a) raw lapin",
            "contract envelope",
            "intercomm",
            "HTTP → 202",
            "HTTP submit+wait",
            "HTTP /v1/rpc",
        ] {
            assert!(svg.contains(name), "legend lacks {name}");
        }
        assert!(svg.contains("classic queues"));
        assert!(svg.contains("publisher confirms"));
        assert!(!svg.contains("COLOUR"));
        assert!(!svg.contains("NaN"));
        assert!(svg.contains("50.0 MiB"));
    }

    #[test]
    fn nice_steps() {
        assert!((nice_step(3100.0) - 5000.0).abs() < 1e-9);
        assert!((nice_step(180.0) - 200.0).abs() < 1e-9);
        assert_eq!(thousands(12_500.0), "12\u{2009}500");
    }
}
