//! `bench-report ROWS.tsv --json OUT --markdown docs/benchmarks.md --charts DIR`: see the
//! library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Turns bench/run.sh measurements into JSON, a Markdown section and SVG charts.
#[derive(Debug, Parser)]
#[command(name = "bench-report")]
struct Args {
    /// The measurements: one tab-separated row per run.
    rows: PathBuf,
    /// `SERVER=KIB`: a server's resident memory before the load.
    #[arg(long = "idle-rss")]
    idle_rss: Vec<String>,
    /// What the figures were measured on.
    #[arg(long, default_value = "")]
    machine: String,
    #[arg(long)]
    json: PathBuf,
    /// The Markdown file whose side-by-side section is regenerated.
    #[arg(long)]
    markdown: PathBuf,
    /// Where the SVG charts go.
    #[arg(long)]
    charts: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.rows)?;
    let runs = bench_report::parse_rows(&text)?;
    let mut idle = std::collections::BTreeMap::new();
    for pair in &args.idle_rss {
        let (server, kib) = pair
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--idle-rss takes SERVER=KIB, not `{pair}`"))?;
        idle.insert(server.to_string(), kib.parse::<u64>()?);
    }
    let report = bench_report::Report::new(&runs, idle, &args.machine);
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)? + "\n")?;
    std::fs::create_dir_all(&args.charts)?;
    report.charts(&args.charts)?;
    let markdown = std::fs::read_to_string(&args.markdown).unwrap_or_default();
    let charts_link = bench_report::relative(&args.markdown, &args.charts);
    std::fs::write(
        &args.markdown,
        bench_report::replace_section(&markdown, &report.markdown(&charts_link)),
    )?;
    print!("{}", report.markdown(&charts_link));
    Ok(())
}
