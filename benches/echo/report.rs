//! The bench's results: two tables (throughput; the server's CPU per
//! message), with ratios taken per round and then their median (robust to a
//! slow round), printed and written to `target/echo-bench.md`; and an SVG
//! chart of both, per scenario and server, each architecture's floor marked.

use super::client::Outcome;
use super::{median, Scenario, Server};
use std::fmt::Write as _;

/// Medians of one server in one scenario.
fn med(r: &[Outcome], f: impl Fn(&Outcome) -> f64) -> f64 {
    median(r.iter().map(f).collect())
}

/// The median over rounds of `f(a) / f(b)`.
fn ratio(a: &[Outcome], b: &[Outcome], f: impl Fn(&Outcome) -> f64) -> f64 {
    median(a.iter().zip(b).map(|(x, y)| f(x) / f(y)).collect())
}

pub(super) fn write(
    scenarios: &[Scenario],
    servers: &[Server],
    results: &[Vec<Vec<Outcome>>],
    rounds: usize,
    secs: f64,
) {
    let at = |server: Server| servers.iter().position(|s| *s == server);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Echo load, medians of {rounds} interleaved rounds of {secs} s; every server in a \
         process of its own.\n"
    );
    // Throughput.
    let _ = write!(
        md,
        "Throughput (messages/s; churn: connections/s)\n\n| scenario |"
    );
    for s in servers {
        let _ = write!(md, " {} |", s.name());
    }
    md.push_str(" ours/tungstenite | poll/fastwebsockets | ours/floor | poll/mio-floor |\n|---|");
    md.push_str(&"---:|".repeat(servers.len() + 4));
    md.push('\n');
    let pair =
        |si: usize, a: Option<usize>, b: Option<usize>, f: &dyn Fn(&Outcome) -> f64| match (a, b) {
            (Some(a), Some(b)) => format!("{:.2}x", ratio(&results[si][a], &results[si][b], f)),
            _ => "-".into(),
        };
    let [ours, poll, tung, fast, floor, mio_floor] = Server::ALL.map(at);
    for (si, s) in scenarios.iter().enumerate() {
        let _ = write!(md, "| {} |", s.name);
        for r in &results[si] {
            let _ = write!(md, " {:.0} |", med(r, |o| o.rate));
        }
        let rate = |o: &Outcome| o.rate;
        let _ = writeln!(
            md,
            " {} | {} | {} | {} |",
            pair(si, ours, tung, &rate),
            pair(si, poll, fast, &rate),
            pair(si, ours, floor, &rate),
            pair(si, poll, mio_floor, &rate),
        );
    }
    // CPU per message.
    let _ = write!(
        md,
        "\nServer CPU per message (µs, user + system; in parentheses the system share, \
         approximate)\n\n| scenario |"
    );
    for s in servers {
        let _ = write!(md, " {} |", s.name());
    }
    md.push_str(" ours/floor | poll/mio-floor | poll/fastwebsockets | ours/tungstenite |\n|---|");
    md.push_str(&"---:|".repeat(servers.len() + 4));
    md.push('\n');
    for (si, s) in scenarios.iter().enumerate() {
        let _ = write!(md, "| {} |", s.name);
        for r in &results[si] {
            // `~`: from clock ticks, not per-thread clocks (see cpu.rs).
            let approx = if r.iter().all(|o| o.cpu_exact) {
                ""
            } else {
                "~"
            };
            let _ = write!(
                md,
                " {approx}{:.2} ({:.0}%) |",
                med(r, |o| o.cpu_us),
                100.0 * med(r, |o| o.sys_share)
            );
        }
        let cpu = |o: &Outcome| o.cpu_us;
        let _ = writeln!(
            md,
            " {} | {} | {} | {} |",
            pair(si, ours, floor, &cpu),
            pair(si, poll, mio_floor, &cpu),
            pair(si, poll, fast, &cpu),
            pair(si, ours, tung, &cpu),
        );
    }
    println!("\n{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = dir.join("target/echo-bench.md");
    if std::fs::write(&path, &md).is_ok() {
        eprintln!("written to {}", path.display());
    }
    let svg_path = std::env::var("ECHO_SVG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.join("docs/echo-bench.svg"));
    if std::fs::write(&svg_path, svg(scenarios, servers, results, rounds, secs)).is_ok() {
        eprintln!("chart written to {}", svg_path.display());
    }
}

/// A bar chart: for each scenario, throughput (left, relative to the
/// fastest server there) and CPU per message (right, relative to the most
/// expensive), one bar per server, the floors hatched.
fn svg(
    scenarios: &[Scenario],
    servers: &[Server],
    results: &[Vec<Vec<Outcome>>],
    rounds: usize,
    secs: f64,
) -> String {
    const COLORS: [&str; 6] = [
        "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#7f7f7f", "#bcbd22",
    ];
    let (bar, gap, label_w, panel_w) = (14.0, 10.0, 230.0, 330.0);
    let group_h = bar * servers.len() as f64 + gap;
    let top = 70.0;
    let height = top + group_h * scenarios.len() as f64 + 40.0;
    let width = label_w + 2.0 * panel_w + 60.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r##"<defs><pattern id="floor" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" fill="#999"/></pattern></defs>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="18" font-size="14">Echo load: throughput and the server's CPU per message (medians of {rounds} rounds of {secs} s)</text>"#
    );
    let x_tp = label_w;
    let x_cpu = label_w + panel_w + 40.0;
    let _ = writeln!(
        out,
        r#"<text x="{x_tp}" y="40">throughput (longer is better)</text><text x="{x_cpu}" y="40">CPU µs per message (shorter is better)</text>"#
    );
    // Legend.
    for (k, s) in servers.iter().enumerate() {
        let x = 10.0 + 110.0 * k as f64;
        let fill = fill(*s, COLORS[k % COLORS.len()]);
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="50" width="10" height="10" fill="{fill}"/><text x="{}" y="59">{}</text>"#,
            x + 14.0,
            s.name()
        );
    }
    for (si, scenario) in scenarios.iter().enumerate() {
        let y0 = top + group_h * si as f64;
        let _ = writeln!(
            out,
            r#"<text x="10" y="{}">{}</text>"#,
            y0 + group_h / 2.0,
            escape(scenario.name)
        );
        let rates: Vec<f64> = (0..servers.len())
            .map(|k| med(&results[si][k], |o| o.rate))
            .collect();
        let cpus: Vec<f64> = (0..servers.len())
            .map(|k| med(&results[si][k], |o| o.cpu_us))
            .collect();
        let max_rate = rates
            .iter()
            .copied()
            .filter(|r| r.is_finite())
            .fold(0.0, f64::max);
        let max_cpu = cpus
            .iter()
            .copied()
            .filter(|c| c.is_finite())
            .fold(0.0, f64::max);
        for (k, s) in servers.iter().enumerate() {
            let y = y0 + bar * k as f64;
            let fill = fill(*s, COLORS[k % COLORS.len()]);
            for (x, value, max, text) in [
                (x_tp, rates[k], max_rate, format!("{:.0}", rates[k])),
                (x_cpu, cpus[k], max_cpu, format!("{:.2}", cpus[k])),
            ] {
                let w = if value.is_finite() && max > 0.0 {
                    (panel_w - 60.0) * value / max
                } else {
                    0.0
                };
                let _ = writeln!(
                    out,
                    r#"<rect x="{x}" y="{y}" width="{w:.1}" height="{}" fill="{fill}"/><text x="{:.1}" y="{}">{text}</text>"#,
                    bar - 2.0,
                    x + w + 3.0,
                    y + bar - 4.0
                );
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// The floors are hatched, the servers solid.
fn fill(server: Server, color: &str) -> String {
    match server {
        Server::Floor | Server::MioFloor => "url(#floor)".into(),
        _ => color.into(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
