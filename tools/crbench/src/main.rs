//! `crbench`: turns the JSON lines the bench guest prints (selftests/bench/scenarios.sh) into
//! the table `make bench` shows, a JSON summary, and an SVG chart of time against memory size.
//!
//! Every run of every scenario gives a checkpoint time, a restart time and an image size for one
//! tool. Runs whose target came back wrong do not count; a row says how many did. Times are
//! medians, with the spread (lowest to highest) beside them.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::process::ExitCode;

use clap::Parser;
use serde::{Deserialize, Serialize};

/// Summarise the bench guest's output (read from standard input).
#[derive(Parser)]
struct Options {
    /// Where to write the summary as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Where to write the chart of time against memory size.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
    /// The machine, for the table's heading.
    #[arg(long, default_value = "")]
    machine: String,
}

/// One run, as the guest reports it.
#[derive(Deserialize, Debug, Clone)]
struct Run {
    scenario: String,
    size: u64,
    tool: String,
    checkpoint_ns: u64,
    restart_ns: u64,
    image_bytes: u64,
    #[serde(default)]
    checkpoint_kib: u64,
    #[serde(default)]
    restart_kib: u64,
    /// A thawed checkpoint's: how long the tool had the tree frozen (0: not known). A
    /// migration's: how long the tree stood still, from its freeze until it ran at its new home.
    #[serde(default)]
    frozen_ns: u64,
    /// A thawed checkpoint's: the writer's longest stall around it.
    #[serde(default)]
    stall_us: u64,
    /// The same over a quiet second before the checkpoint: the guest's own stalls.
    #[serde(default)]
    quiet_stall_us: u64,
    /// A thawed checkpoint's: the faults it added to the writer.
    #[serde(default)]
    faults: i64,
    /// An incremental checkpoint's: its parent's size.
    #[serde(default)]
    base_bytes: u64,
    /// An incremental checkpoint's: the bytes the writer changed between the two.
    #[serde(default)]
    changed_bytes: u64,
    ok: bool,
    #[serde(default)]
    why: String,
}

/// A median with the spread of the runs it comes from.
#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
struct Stat {
    median: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn of(mut v: Vec<f64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// What one tool did in one scenario at one size.
#[derive(Serialize, Debug, Clone)]
struct ToolResult {
    runs: usize,
    failed: usize,
    checkpoint_s: Option<Stat>,
    restart_s: Option<Stat>,
    image_bytes: Option<Stat>,
    checkpoint_peak_kib: Option<Stat>,
    restart_peak_kib: Option<Stat>,
    frozen_s: Option<Stat>,
    stall_s: Option<Stat>,
    quiet_stall_s: Option<Stat>,
    faults: Option<Stat>,
    base_bytes: Option<Stat>,
    changed_bytes: Option<Stat>,
    failures: Vec<String>,
}

/// One row: a scenario at one size, every tool.
#[derive(Serialize, Debug, Clone)]
struct Row {
    scenario: String,
    size: u64,
    tools: BTreeMap<String, ToolResult>,
}

#[derive(Serialize, Debug)]
struct Summary {
    machine: String,
    memcpy_mbps: Option<f64>,
    rows: Vec<Row>,
}

fn summarise(input: impl BufRead) -> io::Result<Summary> {
    let mut memcpy = None;
    let mut groups: BTreeMap<(String, u64), BTreeMap<String, Vec<Run>>> = BTreeMap::new();
    let mut order: Vec<(String, u64)> = Vec::new();
    for line in input.lines() {
        let line = line?;
        let line = line.trim();
        if !line.starts_with('{') {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if let Some(m) = v.get("memcpy_mbps").and_then(|m| m.as_f64()) {
            memcpy = Some(m);
            continue;
        }
        let Ok(run) = serde_json::from_value::<Run>(v) else {
            continue;
        };
        let key = (run.scenario.clone(), run.size);
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups
            .entry(key)
            .or_default()
            .entry(run.tool.clone())
            .or_default()
            .push(run);
    }
    let rows = order
        .into_iter()
        .map(|key| {
            let tools = groups[&key]
                .iter()
                .map(|(tool, runs)| {
                    let good: Vec<&Run> = runs.iter().filter(|r| r.ok).collect();
                    let stat =
                        |f: &dyn Fn(&Run) -> f64| Stat::of(good.iter().map(|r| f(r)).collect());
                    let result = ToolResult {
                        runs: runs.len(),
                        failed: runs.len() - good.len(),
                        checkpoint_s: stat(&|r| r.checkpoint_ns as f64 / 1e9),
                        restart_s: stat(&|r| r.restart_ns as f64 / 1e9).filter(|s| s.max > 0.0),
                        image_bytes: stat(&|r| r.image_bytes as f64).filter(|s| s.max > 0.0),
                        checkpoint_peak_kib: stat(&|r| r.checkpoint_kib as f64),
                        restart_peak_kib: stat(&|r| r.restart_kib as f64).filter(|s| s.max > 0.0),
                        frozen_s: stat(&|r| r.frozen_ns as f64 / 1e9).filter(|s| s.max > 0.0),
                        stall_s: stat(&|r| r.stall_us as f64 / 1e6).filter(|s| s.max > 0.0),
                        quiet_stall_s: stat(&|r| r.quiet_stall_us as f64 / 1e6)
                            .filter(|s| s.max > 0.0),
                        faults: stat(&|r| r.faults as f64),
                        base_bytes: stat(&|r| r.base_bytes as f64).filter(|s| s.max > 0.0),
                        changed_bytes: stat(&|r| r.changed_bytes as f64).filter(|s| s.max > 0.0),
                        failures: runs
                            .iter()
                            .filter(|r| !r.ok)
                            .map(|r| r.why.clone())
                            .collect(),
                    };
                    (tool.clone(), result)
                })
                .collect();
            Row {
                scenario: key.0,
                size: key.1,
                tools,
            }
        })
        .collect();
    Ok(Summary {
        machine: String::new(),
        memcpy_mbps: memcpy,
        rows,
    })
}

fn size_label(scenario: &str, size: u64) -> String {
    if let Some(mib) = thawed_mib(scenario) {
        return format!("{mib} MiB, written at {size} MiB/s");
    }
    if let Some(mib) = incremental_mib(scenario) {
        return format!("{mib} MiB, {size} MiB rewritten");
    }
    if let Some(mib) = migrate_mib(scenario) {
        return format!("{mib} MiB, written at {size} MiB/s");
    }
    match scenario {
        "memory" | "stream" => format!("{} MiB", size >> 20),
        "sparse" if size == 0 => "64 pages, no reservation".into(),
        "sparse" => format!("{size} GiB, 64 pages"),
        _ => size.to_string(),
    }
}

/// The writer's memory of an incremental scenario (`incremental-MIB`).
fn incremental_mib(scenario: &str) -> Option<u64> {
    scenario.strip_prefix("incremental-")?.parse().ok()
}

/// The writer's memory of a migration scenario (`migrate-MIB`).
fn migrate_mib(scenario: &str) -> Option<u64> {
    scenario.strip_prefix("migrate-")?.parse().ok()
}

/// Whether a row has a table of its own.
fn has_own_table(scenario: &str) -> bool {
    thawed_mib(scenario).is_some()
        || incremental_mib(scenario).is_some()
        || migrate_mib(scenario).is_some()
}

/// The writer's memory of a thawed scenario (`thawed-MIB`).
fn thawed_mib(scenario: &str) -> Option<u64> {
    scenario.strip_prefix("thawed-")?.parse().ok()
}

fn millis(s: Option<Stat>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.max - s.min < 0.0005 => format!("{:.0} ms", s.median * 1e3),
        Some(s) => format!(
            "{:.0} ms ({:.0}–{:.0})",
            s.median * 1e3,
            s.min * 1e3,
            s.max * 1e3
        ),
    }
}

fn count(s: Option<Stat>) -> String {
    s.map_or("—".into(), |s| format!("{:.0}", s.median))
}

fn secs(s: Option<Stat>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.max - s.min < 0.005 => format!("{:.3} s", s.median),
        Some(s) => format!("{:.3} s ({:.3}–{:.3})", s.median, s.min, s.max),
    }
}

fn bytes(s: Option<Stat>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s.median >= 1e6 => format!("{:.1} MB", s.median / 1e6),
        Some(s) => format!("{:.0} kB", s.median / 1e3),
    }
}

/// How many times faster cr is: criu's time over cr's.
fn ratio(cr: Option<Stat>, criu: Option<Stat>) -> String {
    match (cr, criu) {
        (Some(a), Some(b)) if a.median > 0.0 => format!("{:.1}×", b.median / a.median),
        _ => "—".into(),
    }
}

fn table(summary: &Summary, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "cr against criu, medians of each tool's good runs (spread in parentheses); ratio = \
         criu's time / cr's."
    )?;
    if !summary.machine.is_empty() {
        writeln!(out, "Machine: {}.", summary.machine)?;
    }
    if let Some(m) = summary.memcpy_mbps {
        writeln!(out, "In-VM memcpy: {m:.0} MB/s.")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "| scenario | size | cr checkpoint | criu dump | ratio | cr restart | criu restore | ratio | cr image | criu image | cr MB/s (of memcpy) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    let none = ToolResult {
        runs: 0,
        failed: 0,
        checkpoint_s: None,
        restart_s: None,
        image_bytes: None,
        checkpoint_peak_kib: None,
        restart_peak_kib: None,
        frozen_s: None,
        stall_s: None,
        quiet_stall_s: None,
        faults: None,
        base_bytes: None,
        changed_bytes: None,
        failures: Vec::new(),
    };
    for row in summary.rows.iter().filter(|r| !has_own_table(&r.scenario)) {
        let cr = row.tools.get("cr").unwrap_or(&none);
        let criu = row.tools.get("criu").unwrap_or(&none);
        let speed = match (row.scenario.as_str(), cr.checkpoint_s, cr.restart_s) {
            ("memory", Some(c), Some(r)) => {
                let mb = row.size as f64 / 1e6;
                let of = |t: f64| {
                    summary
                        .memcpy_mbps
                        .map_or(String::new(), |m| format!(" ({:.0} %)", 100.0 * mb / t / m))
                };
                format!(
                    "ckpt {:.0}{}, restart {:.0}{}",
                    mb / c.median,
                    of(c.median),
                    mb / r.median,
                    of(r.median)
                )
            }
            _ => String::new(),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            size_label(&row.scenario, row.size),
            secs(cr.checkpoint_s),
            secs(criu.checkpoint_s),
            ratio(cr.checkpoint_s, criu.checkpoint_s),
            secs(cr.restart_s),
            secs(criu.restart_s),
            ratio(cr.restart_s, criu.restart_s),
            bytes(cr.image_bytes),
            bytes(criu.image_bytes),
            speed
        )?;
    }
    thawed_table(summary, &none, out)?;
    incremental_table(summary, &none, out)?;
    migration_table(summary, &none, out)?;
    for row in &summary.rows {
        for (tool, r) in &row.tools {
            if r.failed > 0 {
                writeln!(
                    out,
                    "\n{} {} with {tool}: {} of {} runs failed: {}",
                    row.scenario,
                    size_label(&row.scenario, row.size),
                    r.failed,
                    r.runs,
                    r.failures.join("; ")
                )?;
            }
        }
    }
    Ok(())
}

/// A table of its own for the rows of one family of scenarios (`family` gives the writer's
/// memory of a scenario of it): `intro`, then `header` (its first column the writer), then one
/// line per row, whose cells after the writer `cells` gives from cr's and criu's results.
fn family_table(
    summary: &Summary,
    none: &ToolResult,
    family: fn(&str) -> Option<u64>,
    intro: &str,
    header: &str,
    cells: impl Fn(&ToolResult, &ToolResult) -> Vec<String>,
    out: &mut impl Write,
) -> io::Result<()> {
    let rows: Vec<&Row> = summary
        .rows
        .iter()
        .filter(|r| family(&r.scenario).is_some())
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "{intro}")?;
    writeln!(out, "{header}")?;
    writeln!(out, "|{}", "---|".repeat(header.matches(" | ").count() + 1))?;
    for row in rows {
        let cr = row.tools.get("cr").unwrap_or(none);
        let criu = row.tools.get("criu").unwrap_or(none);
        let mut line = vec![size_label(&row.scenario, row.size)];
        line.extend(cells(cr, criu));
        writeln!(out, "| {} |", line.join(" | "))?;
    }
    Ok(())
}

/// The checkpoints that leave a writer running: cr's thawed one against criu's pre-dump and
/// dump. The stall is the writer's longest gap between two of its bursts around the checkpoint;
/// faults are those the checkpoint added to it.
fn thawed_table(summary: &Summary, none: &ToolResult, out: &mut impl Write) -> io::Result<()> {
    family_table(
        summary,
        none,
        thawed_mib,
        "\nCheckpoints of a running writer, which goes on running: cr's `ckpt --thawed` against \
         `criu pre-dump` then `criu dump --track-mem --leave-running`. Stall: the writer's longest \
         gap between two bursts around the checkpoint (ratio = criu's / cr's), and over a quiet \
         second before it (the guest's own); frozen: the time ckpt had the tree frozen; faults: \
         those the checkpoint added to the writer.\n",
        "| writer | cr stall | criu stall | ratio | quiet stall | cr frozen | cr faults | criu faults | cr total | criu total | cr image | criu image |",
        |cr, criu| {
            vec![
                millis(cr.stall_s),
                millis(criu.stall_s),
                ratio(cr.stall_s, criu.stall_s),
                millis(cr.quiet_stall_s.or(criu.quiet_stall_s)),
                millis(cr.frozen_s),
                count(cr.faults),
                count(criu.faults),
                secs(cr.checkpoint_s),
                secs(criu.checkpoint_s),
                bytes(cr.image_bytes),
                bytes(criu.image_bytes),
            ]
        },
        out,
    )
}

/// Incremental checkpoints after a known change: cr's `ckpt --parent` against criu's `dump
/// --prev-images-dir`. The image against the bytes changed is what counts (the goal: at most
/// 1 % more).
fn incremental_table(summary: &Summary, none: &ToolResult, out: &mut impl Write) -> io::Result<()> {
    let of_changed = |t: &ToolResult| match (t.image_bytes, t.changed_bytes) {
        (Some(i), Some(c)) => format!("{:.3}", i.median / c.median),
        _ => "-".into(),
    };
    family_table(
        summary,
        none,
        incremental_mib,
        "\nIncremental checkpoints of a writer left running, after it rewrote a known part of its \
         memory: cr's `ckpt --track`, then `ckpt --parent` against `criu dump --track-mem`, then \
         `criu dump --prev-images-dir`. Of changed: the second image's size over the bytes \
         rewritten.\n",
        "| writer | cr image | of changed | criu image | of changed | cr parent | criu parent | cr checkpoint | criu dump | cr restart | criu restore |",
        |cr, criu| {
            vec![
                bytes(cr.image_bytes),
                of_changed(cr),
                bytes(criu.image_bytes),
                of_changed(criu),
                bytes(cr.base_bytes),
                bytes(criu.base_bytes),
                secs(cr.checkpoint_s),
                secs(criu.checkpoint_s),
                secs(cr.restart_s),
                secs(criu.restart_s),
            ]
        },
        out,
    )
}

/// Migrations of a running writer to a new home in the same guest: cr's `ckpt --migrate` to
/// `restart --listen` over loopback TCP, against criu's pre-dump, dump and restore. The downtime
/// is what a migration is judged by (the goal: at most 50 ms at 16 MiB/s).
fn migration_table(summary: &Summary, none: &ToolResult, out: &mut impl Write) -> io::Result<()> {
    family_table(
        summary,
        none,
        migrate_mib,
        "\nMigrations of a running writer to a new home in the same guest: cr's `ckpt --migrate` \
         to `restart --listen --pidns` over loopback TCP, against `criu pre-dump`, `criu dump \
         --prev-images-dir` and `criu restore` (without the copy between machines). Downtime: cr's \
         from the freeze until the destination said the tree runs, criu's dump and restore \
         (ratio = criu's / cr's); stall: the writer's own longest gap between two bursts across \
         the move; total: the whole migration.\n",
        "| writer | cr downtime | criu downtime | ratio | cr stall | criu stall | cr total | criu total |",
        |cr, criu| {
            vec![
                millis(cr.frozen_s),
                millis(criu.frozen_s),
                ratio(cr.frozen_s, criu.frozen_s),
                millis(cr.stall_s),
                millis(criu.stall_s),
                secs(cr.checkpoint_s),
                secs(criu.checkpoint_s),
            ]
        },
        out,
    )
}

/// Time against memory size for both tools, checkpoint and restart: one line each.
fn chart(summary: &Summary) -> String {
    let rows: Vec<&Row> = summary
        .rows
        .iter()
        .filter(|r| r.scenario == "memory")
        .collect();
    let series = [
        ("cr", true, "cr checkpoint", "#1f77b4", ""),
        ("cr", false, "cr restart", "#1f77b4", "6,4"),
        ("criu", true, "criu dump", "#d62728", ""),
        ("criu", false, "criu restore", "#d62728", "6,4"),
    ];
    let point = |r: &Row, tool: &str, ckpt: bool| {
        r.tools
            .get(tool)
            .and_then(|t| if ckpt { t.checkpoint_s } else { t.restart_s })
            .map(|s| ((r.size >> 20) as f64, s.median))
    };
    let max_x = rows
        .iter()
        .map(|r| (r.size >> 20) as f64)
        .fold(1.0, f64::max);
    let max_y = rows
        .iter()
        .flat_map(|r| series.iter().filter_map(|(t, c, ..)| point(r, t, *c)))
        .map(|(_, y)| y)
        .fold(0.1, f64::max)
        * 1.1;
    let (w, h, left, bottom, top, right) = (640.0, 400.0, 60.0, 50.0, 20.0, 160.0);
    let px = |x: f64| left + x / max_x * (w - left - right);
    let py = |y: f64| h - bottom - y / max_y * (h - bottom - top);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">private anonymous memory (MiB)</text>\n\
         <text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">seconds</text>\n",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom,
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
    );
    for r in &rows {
        let x = px((r.size >> 20) as f64);
        svg += &format!(
            "<text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            h - bottom + 16.0,
            r.size >> 20
        );
    }
    for i in 0..=4 {
        let y = max_y / 1.1 * i as f64 / 4.0;
        svg += &format!(
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{y:.1}</text>\n",
            left - 6.0,
            py(y) + 4.0
        );
    }
    for (i, (tool, ckpt, label, colour, dash)) in series.iter().enumerate() {
        let points: Vec<String> = rows
            .iter()
            .filter_map(|r| point(r, tool, *ckpt))
            .map(|(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        if points.is_empty() {
            continue;
        }
        svg += &format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\" points=\"{}\"/>\n",
            points.join(" ")
        );
        let ly = top + 20.0 * i as f64 + 10.0;
        svg += &format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/>\
             <text x=\"{}\" y=\"{}\">{label}</text>\n",
            w - right + 10.0,
            w - right + 40.0,
            w - right + 46.0,
            ly + 4.0
        );
    }
    svg += "</svg>\n";
    svg
}

fn main() -> ExitCode {
    let opts = Options::parse();
    let mut summary = match summarise(io::stdin().lock()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("crbench: {e}");
            return ExitCode::FAILURE;
        }
    };
    summary.machine = opts.machine.clone();
    if summary.rows.is_empty() {
        eprintln!("crbench: no runs in the input");
        return ExitCode::FAILURE;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = table(&summary, &mut out) {
        eprintln!("crbench: {e}");
        return ExitCode::FAILURE;
    }
    let written = opts
        .json
        .as_ref()
        .map(|p| {
            std::fs::write(
                p,
                serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n",
            )
        })
        .transpose()
        .and_then(|_| {
            opts.svg
                .as_ref()
                .map(|p| std::fs::write(p, chart(&summary)))
                .transpose()
        });
    if let Err(e) = written {
        eprintln!("crbench: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
bench: noise that is not JSON
{"memcpy_mbps":1500}
{"scenario":"memory","size":67108864,"tool":"cr","run":1,"checkpoint_ns":100000000,"restart_ns":200000000,"image_bytes":67200000,"checkpoint_kib":900,"restart_kib":800,"ok":true,"why":""}
{"scenario":"memory","size":67108864,"tool":"cr","run":2,"checkpoint_ns":300000000,"restart_ns":400000000,"image_bytes":67200000,"checkpoint_kib":900,"restart_kib":800,"ok":true,"why":""}
{"scenario":"memory","size":67108864,"tool":"cr","run":3,"checkpoint_ns":200000000,"restart_ns":100000000,"image_bytes":67200000,"checkpoint_kib":900,"restart_kib":800,"ok":false,"why":"the restarted target found its state wrong"}
{"scenario":"memory","size":67108864,"tool":"criu","run":1,"checkpoint_ns":400000000,"restart_ns":900000000,"image_bytes":68000000,"checkpoint_kib":9000,"restart_kib":8000,"ok":true,"why":""}
{"scenario":"fds","size":1000,"tool":"cr","run":1,"checkpoint_ns":50000000,"restart_ns":60000000,"image_bytes":90000,"ok":true,"why":""}
"#;

    #[test]
    fn medians_count_only_good_runs() {
        let s = summarise(SAMPLE.as_bytes()).unwrap();
        assert_eq!(s.memcpy_mbps, Some(1500.0));
        assert_eq!(s.rows.len(), 2);
        let cr = &s.rows[0].tools["cr"];
        assert_eq!((cr.runs, cr.failed), (3, 1));
        let c = cr.checkpoint_s.unwrap();
        assert!((c.median - 0.2).abs() < 1e-9 && c.min == 0.1 && c.max == 0.3);
        assert_eq!(cr.failures.len(), 1);
    }

    #[test]
    fn the_table_gives_ratios_and_failures() {
        let mut s = summarise(SAMPLE.as_bytes()).unwrap();
        s.machine = "test".into();
        let mut out = Vec::new();
        table(&s, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // criu 0.4 s against cr's median 0.2 s.
        assert!(
            text.contains("| memory | 64 MiB | 0.200 s (0.100–0.300) | 0.400 s | 2.0× |"),
            "{text}"
        );
        assert!(text.contains("1 of 3 runs failed"));
        assert!(text.contains("| fds | 1000 |"));
    }

    #[test]
    fn thawed_checkpoints_have_a_table_of_their_own() {
        let runs = r#"
{"scenario":"thawed-1024","size":16,"tool":"cr","run":1,"checkpoint_ns":900000000,"restart_ns":1,"image_bytes":1100000000,"frozen_ns":8000000,"stall_us":12000,"quiet_stall_us":3000,"faults":0,"quiet_faults":0,"ok":true,"why":""}
{"scenario":"thawed-1024","size":16,"tool":"criu","run":1,"checkpoint_ns":4000000000,"restart_ns":1,"image_bytes":1200000000,"stall_us":840000,"faults":20109,"quiet_faults":0,"ok":true,"why":""}
"#;
        let s = summarise(runs.as_bytes()).unwrap();
        let mut out = Vec::new();
        table(&s, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "| 1024 MiB, written at 16 MiB/s | 12 ms | 840 ms | 70.0× | 3 ms | 8 ms | 0 | 20109 |"
            ),
            "{text}"
        );
        assert!(!text.contains("| thawed-1024 |"), "{text}");
    }

    #[test]
    fn incremental_checkpoints_have_a_table_of_their_own() {
        let input = r#"{"scenario":"incremental-1024","size":10,"tool":"cr","run":1,"checkpoint_ns":200000000,"restart_ns":900000000,"image_bytes":10520000,"base_bytes":1100000000,"changed_bytes":10485760,"ok":true,"why":""}
{"scenario":"incremental-1024","size":10,"tool":"criu","run":1,"checkpoint_ns":700000000,"restart_ns":1500000000,"image_bytes":11000000,"base_bytes":1120000000,"changed_bytes":10485760,"ok":true,"why":""}
"#;
        let summary = summarise(input.as_bytes()).unwrap();
        let mut out = Vec::new();
        table(&summary, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("| 1024 MiB, 10 MiB rewritten | 10.5 MB | 1.003 |"),
            "{text}"
        );
        assert!(!text.contains("| incremental-1024 |"), "{text}");
    }

    #[test]
    fn migrations_have_a_table_of_their_own() {
        let input = r#"{"scenario":"migrate-1024","size":16,"tool":"cr","run":1,"checkpoint_ns":3000000000,"restart_ns":0,"image_bytes":0,"frozen_ns":40000000,"stall_us":45000,"ok":true,"why":""}
{"scenario":"migrate-1024","size":16,"tool":"criu","run":1,"checkpoint_ns":9000000000,"restart_ns":0,"image_bytes":0,"frozen_ns":4000000000,"stall_us":4100000,"ok":true,"why":""}
"#;
        let summary = summarise(input.as_bytes()).unwrap();
        let mut out = Vec::new();
        table(&summary, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("| 1024 MiB, written at 16 MiB/s | 40 ms | 4000 ms | 100.0× |"),
            "{text}"
        );
        assert!(!text.contains("| migrate-1024 |"), "{text}");
    }

    #[test]
    fn the_chart_has_a_line_per_tool_and_phase() {
        let s = summarise(SAMPLE.as_bytes()).unwrap();
        let svg = chart(&s);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<polyline").count(), 4);
    }
}
