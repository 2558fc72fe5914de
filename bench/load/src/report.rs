//! The results: a markdown report (also printed) and a PNG chart drawn with plotters'
//! bitmap backend and the repository's Liberation Sans, so no system font is needed.

use std::{path::Path, time::Duration};

use anyhow::anyhow;
use plotters::prelude::*;

use crate::{
    load::{Figure, Measured},
    servers::run,
    Args, Plan, ServerRun,
};

static FONT: &[u8] = include_bytes!("../../../assets/fonts/LiberationSans-Regular.ttf");

/// Where and with what the run happened.
pub struct Meta {
    pub date: String,
    pub machine: String,
    pub versions: String,
}

impl Meta {
    pub async fn gather(args: &Args, plan: &Plan) -> Meta {
        let date = run(Path::new("date"), &["-u", "+%Y-%m-%d %H:%M UTC"], &[], None)
            .await
            .unwrap_or_default()
            .trim()
            .to_owned();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown CPU".to_owned(), |(_, v)| v.trim().to_owned());
        // SAFETY: sysconf has no preconditions.
        let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let machine = format!(
            "{cpu}, {cores} cores, {mem_gib:.1} GiB, Linux {}{}",
            kernel.trim(),
            if plan.pinned {
                ""
            } else {
                " (NOT pinned: one core)"
            }
        );
        let repo = args.bench_dir.parent().unwrap_or(Path::new("."));
        let rev = run(
            Path::new("git"),
            &[
                "-C",
                &repo.to_string_lossy(),
                "rev-parse",
                "--short",
                "HEAD",
            ],
            &[],
            None,
        )
        .await
        .unwrap_or_default();
        let dirty = run(
            Path::new("git"),
            &[
                "-C",
                &repo.to_string_lossy(),
                "status",
                "--porcelain",
                "--untracked-files=no",
            ],
            &[],
            None,
        )
        .await
        .map(|s| {
            if s.trim().is_empty() {
                ""
            } else {
                " + local changes"
            }
        })
        .unwrap_or_default();
        let size = std::fs::metadata(&args.connect).map_or(0, |m| m.len());
        let node = run(Path::new("node"), &["--version"], &[], None)
            .await
            .unwrap_or_default();
        let peer_pkg = args
            .bench_dir
            .join("peer/node_modules/oidc-provider/package.json");
        let peer = std::fs::read_to_string(peer_pkg)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        Meta {
            date,
            machine,
            versions: format!(
                "connect {}{dirty} (release binary {:.1} MB), node {}, oidc-provider {peer}",
                rev.trim(),
                size as f64 / 1e6,
                node.trim()
            ),
        }
    }
}

fn ms(micros: u64) -> String {
    let ms = micros as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.1}")
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1e6)
}

/// Thousands separated by commas.
fn count(v: f64) -> String {
    if v < 100.0 {
        return format!("{v:.1}");
    }
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The (figure, concurrency) rows of the run, in the order measured.
fn rows(runs: &[ServerRun]) -> Vec<(Figure, usize)> {
    let mut rows: Vec<(Figure, usize)> = Vec::new();
    for r in runs {
        for m in &r.figures {
            if !rows.contains(&(m.figure, m.concurrency)) {
                rows.push((m.figure, m.concurrency));
            }
        }
    }
    rows
}

fn find(run: &ServerRun, row: (Figure, usize)) -> Option<&Measured> {
    run.figures
        .iter()
        .find(|m| (m.figure, m.concurrency) == row)
}

fn ratio(connect: &ServerRun, peer: Option<&ServerRun>, row: (Figure, usize)) -> Option<f64> {
    let c = find(connect, row)?;
    let p = find(peer?, row)?;
    (p.rate() > 0.0 && c.errors == 0 && p.errors == 0).then(|| c.rate() / p.rate())
}

pub fn markdown(meta: &Meta, plan: &Plan, runs: &[ServerRun]) -> String {
    let peer = runs.iter().find(|r| r.key == "peer");
    let connects: Vec<&ServerRun> = runs.iter().filter(|r| r.key != "peer").collect();
    let mut s = String::new();
    s.push_str(&format!(
        "# connect beside node oidc-provider, {}\n\n",
        meta.date
    ));
    s.push_str(&format!(
        "- machine: {}\n- versions: {}\n",
        meta.machine, meta.versions
    ));
    s.push_str(&format!(
        "- method: each server alone, pinned to core 0 (`taskset -c 0`), the load generator \
         (`bench/load`, one thread) on core 1; every figure a closed loop of a fixed number of \
         workers, each with its own keep-alive connection, {} s measured after {} s of \
         warm-up; discovery and JWKS at 64 workers, the token, userinfo and introspection \
         figures at {}, logins at 8 and 32\n",
        secs(plan.duration),
        secs(plan.warmup),
        plan.concurrency
    ));
    if plan.duration < Duration::from_secs(5) {
        s.push_str("- **a smoke run (`--quick`): short figures on a machine that may be busy; not figures to quote**\n");
    }
    s.push_str("\n## Requests per second (p50 / p99 latency in ms)\n\n| figure | workers |");
    for r in runs {
        s.push_str(&format!(" {} |", r.name));
    }
    for c in &connects {
        s.push_str(&format!(" {} / peer |", short(c)));
    }
    s.push_str("\n|---|---:|");
    for _ in 0..runs.len() + connects.len() {
        s.push_str("---:|");
    }
    s.push('\n');
    for row in rows(runs) {
        s.push_str(&format!("| {} | {} |", row.0.label(), row.1));
        for r in runs {
            match find(r, row) {
                Some(m) => s.push_str(&format!(
                    " {} ({} / {}){} |",
                    count(m.rate()),
                    ms(m.latency.value_at_quantile(0.5)),
                    ms(m.latency.value_at_quantile(0.99)),
                    if m.errors > 0 {
                        format!(", **{} errors**", m.errors)
                    } else {
                        String::new()
                    }
                )),
                None => s.push_str(" — |"),
            }
        }
        for c in &connects {
            match ratio(c, peer, row) {
                Some(x) => s.push_str(&format!(" {x:.2} |")),
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
    s.push_str("\n## Servers\n\n| server | start-up to ready | RSS idle | RSS peak (highest of the figures) | RSS at the end |\n|---|---:|---:|---:|---:|\n");
    for r in runs {
        let peak = r.figures.iter().map(|m| m.rss_peak).max().unwrap_or(0);
        s.push_str(&format!(
            "| {} | {:.0} ms | {} MB | {} MB | {} MB |\n",
            r.name,
            r.startup.as_secs_f64() * 1000.0,
            mb(r.idle_rss),
            mb(peak),
            mb(r.end_rss)
        ));
    }
    if let Some(p) = peer {
        for c in &connects {
            if p.startup > Duration::ZERO && c.startup > Duration::ZERO {
                s.push_str(&format!(
                    "\nStart-up, {}: {:.1}× faster than the peer.",
                    c.name,
                    p.startup.as_secs_f64() / c.startup.as_secs_f64()
                ));
            }
        }
        s.push('\n');
    }
    per_figure(
        &mut s,
        runs,
        "CPU per figure (share of one core: server / load generator)\n\nThe server near 100 % is \
         the bottleneck, as it should be; the load generator near 100 % would be.",
        |m| {
            format!(
                "{:.0} % / {:.0} %",
                m.server_cpu * 100.0,
                m.load_cpu * 100.0
            )
        },
    );
    per_figure(
        &mut s,
        runs,
        "Memory per figure (RSS in MB: before / peak / after)",
        |m| {
            format!(
                "{} / {} / {}",
                mb(m.rss_before),
                mb(m.rss_peak),
                mb(m.rss_after)
            )
        },
    );
    s.push_str("\n## Notes\n\n");
    s.push_str(
        "- code exchange: one iteration is `/authorize` with the SSO session cookie (303 with a \
         code) and the code at `/token`; its rate counts pairs and its latency is the pair's. \
         The token request alone:",
    );
    for r in runs {
        if let Some(side) = r
            .figures
            .iter()
            .find(|m| m.figure == Figure::CodeExchange)
            .and_then(|m| m.side.as_ref())
        {
            s.push_str(&format!(
                " {} p50 {} / p99 {} ms;",
                r.name,
                ms(side.value_at_quantile(0.5)),
                ms(side.value_at_quantile(0.99))
            ));
        }
    }
    s.push_str(
        "\n- tokens: connect's access tokens are ES256 JWTs for every grant; the peer's are ES256 \
         JWTs for `client_credentials` (a resource indicator, as its documentation asks) and \
         opaque for the code flow (its userinfo endpoint takes no other). Userinfo and \
         introspection use the access token of each worker's code flow; ID tokens are ES256 on \
         both.\n- storage: connect keeps grants and refresh tokens in SQL (SQLite or PostgreSQL) \
         and short-lived state in process or in Redis; the peer keeps everything in its \
         own in-memory adapter (it ships no other), over a map that forgets a record only \
         when it expires instead of its LRU of 1,000 entries, which loses live tokens under \
         load.\n- logins: connect only (the \
         peer's login is a development form); e-mail and password, then the SMS code read \
         from the outbox, through the HTML forms, with Argon2id at connect's configured \
         parameters; one account per worker.\n",
    );
    for r in runs {
        for m in r.figures.iter().filter(|m| m.load_cpu > 0.8) {
            s.push_str(&format!(
                "- **{}, {}: the load generator used {:.0} % of its core; it may have limited \
                 this figure**\n",
                r.name,
                m.figure.label(),
                m.load_cpu * 100.0
            ));
        }
        if let Some(f) = &r.failure {
            s.push_str(&format!(
                "- **{} could not be measured to the end**: {f}\n",
                r.name
            ));
        }
        for m in &r.figures {
            if let Some(e) = &m.first_error {
                s.push_str(&format!(
                    "- {}, {} (c={}): {} errors, the first: `{}`\n",
                    r.name,
                    m.figure.label(),
                    m.concurrency,
                    m.errors,
                    e.replace('`', "'")
                ));
            }
        }
    }
    s
}

/// A section with one row per figure and one column per server, each cell from `cell`.
fn per_figure(s: &mut String, runs: &[ServerRun], title: &str, cell: impl Fn(&Measured) -> String) {
    s.push_str(&format!("\n## {title}\n\n| figure | workers |"));
    for r in runs {
        s.push_str(&format!(" {} |", r.name));
    }
    s.push_str("\n|---|---:|");
    for _ in runs {
        s.push_str("---:|");
    }
    s.push('\n');
    for row in rows(runs) {
        s.push_str(&format!("| {} | {} |", row.0.label(), row.1));
        for r in runs {
            match find(r, row) {
                Some(m) => s.push_str(&format!(" {} |", cell(m))),
                None => s.push_str(" — |"),
            }
        }
        s.push('\n');
    }
}

fn secs(d: Duration) -> String {
    let v = d.as_secs_f64();
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn short(r: &ServerRun) -> &'static str {
    match r.key.as_str() {
        "sqlite" => "SQLite",
        "postgres" => "PG+Redis",
        _ => "peer",
    }
}

fn short_label(row: (Figure, usize)) -> String {
    match row.0 {
        Figure::Discovery => "discovery".into(),
        Figure::Jwks => "JWKS".into(),
        Figure::ClientCredentials => "client_cred.".into(),
        Figure::CodeExchange => "code exch.".into(),
        Figure::Refresh => "refresh".into(),
        Figure::Userinfo => "userinfo".into(),
        Figure::Introspection => "introspect.".into(),
        Figure::Logins => format!("logins c{}", row.1),
    }
}

const COLORS: [RGBColor; 3] = [
    RGBColor(0x1f, 0x6f, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x5f, 0x28),
];

/// Two panels: requests per second of each server per figure, and connect / peer.
pub fn chart(path: &Path, meta: &Meta, runs: &[ServerRun]) -> anyhow::Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow!("the embedded font does not load"))?;
    let rows = rows(runs);
    if rows.is_empty() {
        return Err(anyhow!("nothing was measured"));
    }
    let n = rows.len() as f64;
    let root = BitMapBackend::new(path, (1400, 980)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (title, rest) = root.split_vertically(40);
    title
        .titled(
            &format!(
                "connect beside node oidc-provider, {} ({})",
                meta.date, meta.versions
            ),
            ("sans-serif", 18),
        )
        .map_err(|e| anyhow!("{e}"))?;
    let (top, bottom) = rest.split_vertically(560);
    let label = |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < rows.len() {
            short_label(rows[i as usize])
        } else {
            String::new()
        }
    };
    let max = runs
        .iter()
        .flat_map(|r| r.figures.iter().map(Measured::rate))
        .fold(10.0, f64::max)
        * 3.0;
    let mut chart = ChartBuilder::on(&top)
        .caption("requests per second (log scale)", ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, (1.0..max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&label)
        .y_label_formatter(&|v| count(*v))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let m = runs.len() as f64;
    for (j, r) in runs.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let v = find(r, *row)?.rate();
                let x0 = i as f64 - 0.4 + j as f64 * 0.8 / m;
                Some(Rectangle::new(
                    [(x0, 1.0), (x0 + 0.8 / m * 0.92, v.max(1.0))],
                    color.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| anyhow!("{e}"))?
            .label(r.name.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;

    let peer = runs.iter().find(|r| r.key == "peer");
    let connects: Vec<(usize, &ServerRun)> = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.key != "peer")
        .collect();
    let ratios: Vec<(usize, usize, f64)> = connects
        .iter()
        .enumerate()
        .flat_map(|(k, (j, c))| {
            rows.iter()
                .enumerate()
                .filter_map(move |(i, row)| Some((i, k * 100 + j, ratio(c, peer, *row)?)))
        })
        .collect();
    let top_ratio = ratios.iter().map(|r| r.2).fold(4.0, f64::max) * 1.5;
    let low_ratio = ratios.iter().map(|r| r.2).fold(0.5, f64::min) / 1.5;
    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "connect / peer, requests per second (log scale; 1 = parity, dashed = 3x)",
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, (low_ratio..top_ratio).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(rows.len())
        .x_label_formatter(&label)
        .y_labels(12)
        .y_label_formatter(&|v| format!("{v:.1}"))
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    let k = connects.len().max(1) as f64;
    for (ci, (j, _)) in connects.iter().enumerate() {
        let color = COLORS[*j % COLORS.len()];
        let bars: Vec<Rectangle<(f64, f64)>> = ratios
            .iter()
            .filter(|r| r.1 == ci * 100 + j)
            .map(|(i, _, v)| {
                let x0 = *i as f64 - 0.4 + ci as f64 * 0.8 / k;
                Rectangle::new([(x0, 1.0), (x0 + 0.8 / k * 0.92, *v)], color.filled())
            })
            .collect();
        chart.draw_series(bars).map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.0), (n - 0.5, 1.0)],
            BLACK.stroke_width(2),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    let dashes: Vec<PathElement<(f64, f64)>> = (0..(n as usize * 8))
        .map(|s| {
            let x = -0.5 + s as f64 / 8.0;
            PathElement::new(vec![(x, 3.0), (x + 1.0 / 16.0, 3.0)], BLACK.stroke_width(1))
        })
        .collect();
    chart.draw_series(dashes).map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
