//! The side-by-side benchmark report: measurements of Guichet and of the reference provider
//! (one row per wrk run) aggregated per scenario, the ratio Guichet/reference, and the
//! section of `docs/benchmarks.md` between [`START`] and [`END`], with SVG charts drawn by
//! plotters.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

/// Marks the start of the generated section in the Markdown file.
pub const START: &str = "<!-- bench/run.sh: generated section, do not edit by hand -->";
/// Marks its end.
pub const END: &str = "<!-- end of the bench/run.sh section -->";

/// One load-generator run against one server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub server: String,
    pub scenario: String,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub cpu_s_per_1000: f64,
    pub peak_rss_kib: u64,
    pub requests: u64,
}

/// One server's bars in a chart: colour, legend, offset in the scenario's slot, and which of
/// the pair (scenario, Guichet, reference) it draws.
type Side = (RGBColor, &'static str, f64, fn(&(&str, f64, f64)) -> f64);

/// Parses the tab-separated rows bench/run.sh writes.
pub fn parse_rows(text: &str) -> anyhow::Result<Vec<Run>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split('\t').collect();
            anyhow::ensure!(
                f.len() == 10,
                "row {}: expected 10 fields, got {}",
                i + 1,
                f.len()
            );
            let num = |k: usize| -> anyhow::Result<f64> {
                f[k].trim()
                    .parse::<f64>()
                    .map_err(|e| anyhow::anyhow!("row {}, field {}: {e}", i + 1, k + 1))
            };
            Ok(Run {
                server: f[0].to_string(),
                scenario: f[1].to_string(),
                requests_per_s: num(2)?,
                p50_ms: num(3)?,
                p99_ms: num(4)?,
                max_ms: num(5)?,
                errors: num(6)? as u64,
                cpu_s_per_1000: num(7)?,
                peak_rss_kib: num(8)? as u64,
                requests: num(9)? as u64,
            })
        })
        .collect()
}

/// One server's figures for a scenario, over its runs: means of throughput, latency
/// percentiles and CPU, the highest maximum latency and peak memory, all errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub runs: usize,
    pub requests_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub cpu_s_per_1000: f64,
    pub peak_rss_kib: u64,
}

impl Figures {
    fn of(runs: &[&Run]) -> Self {
        let n = runs.len().max(1) as f64;
        let mean = |f: fn(&Run) -> f64| runs.iter().map(|r| f(r)).sum::<f64>() / n;
        Self {
            runs: runs.len(),
            requests_per_s: mean(|r| r.requests_per_s),
            p50_ms: mean(|r| r.p50_ms),
            p99_ms: mean(|r| r.p99_ms),
            max_ms: runs.iter().map(|r| r.max_ms).fold(0.0, f64::max),
            errors: runs.iter().map(|r| r.errors).sum(),
            cpu_s_per_1000: mean(|r| r.cpu_s_per_1000),
            peak_rss_kib: runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0),
        }
    }
}

/// A scenario's figures for both servers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub guichet: Option<Figures>,
    pub reference: Option<Figures>,
    /// Guichet's throughput over the reference's.
    pub ratio: Option<f64>,
}

/// Everything one bench/run.sh produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub machine: String,
    pub idle_rss_kib: BTreeMap<String, u64>,
    pub scenarios: Vec<Scenario>,
    /// Bounds measured in the same run (server `bound`): operations per second.
    pub bounds: BTreeMap<String, f64>,
    pub errors: u64,
}

impl Report {
    /// Aggregates `runs` per scenario, in the order scenarios first appear.
    pub fn new(runs: &[Run], idle_rss_kib: BTreeMap<String, u64>, machine: &str) -> Self {
        let mut names: Vec<&str> = Vec::new();
        let mut bounds = BTreeMap::new();
        for r in runs.iter().filter(|r| r.server == "bound") {
            bounds.insert(r.scenario.clone(), r.requests_per_s);
        }
        for r in runs.iter().filter(|r| r.server != "bound") {
            if !names.contains(&r.scenario.as_str()) {
                names.push(&r.scenario);
            }
        }
        let figures = |name: &str, server: &str| {
            let of: Vec<&Run> = runs
                .iter()
                .filter(|r| r.scenario == name && r.server == server)
                .collect();
            (!of.is_empty()).then(|| Figures::of(&of))
        };
        let scenarios = names
            .iter()
            .map(|name| {
                let guichet = figures(name, "guichet");
                // A variant (`X on PostgreSQL`) is compared with the reference's `X`.
                let reference = figures(name, "reference").or_else(|| {
                    name.split_once(" on ")
                        .and_then(|(base, _)| figures(base, "reference"))
                });
                let ratio = match (&guichet, &reference) {
                    (Some(g), Some(r)) if r.requests_per_s > 0.0 => {
                        Some(g.requests_per_s / r.requests_per_s)
                    }
                    _ => None,
                };
                Scenario {
                    name: name.to_string(),
                    guichet,
                    reference,
                    ratio,
                }
            })
            .collect();
        Self {
            machine: machine.to_string(),
            idle_rss_kib,
            scenarios,
            bounds,
            errors: runs.iter().map(|r| r.errors).sum(),
        }
    }

    /// The Markdown section (between [`START`] and [`END`]); `charts` is the charts'
    /// directory relative to the Markdown file.
    pub fn markdown(&self, charts: &str) -> String {
        let mut out = format!(
            "{START}\n## Side by side with the reference provider (`bench/run.sh`)\n\n\
             Guichet (SQLite) and panva's oidc-provider (Node.js, in-memory adapter, same \
             clients, JWT access tokens) on loopback, driven by the same wrk runs alternately: \
             {}. Figures are means over the runs; max is the highest; CPU is the server \
             process's user and system time per 1,000 requests; peak RSS is the server's \
             during the scenario. Regenerated by `bench/run.sh` from \
             `bench/results/latest.json`.\n\n\
             ![requests per second]({charts}/throughput.svg)\n\n\
             | scenario | Guichet req/s | reference req/s | Guichet / reference | Guichet p50 / p99 / max ms | reference p50 / p99 / max ms | CPU s per 1,000: Guichet / reference | peak RSS MiB: Guichet / reference | errors |\n\
             |---|---|---|---|---|---|---|---|---|\n",
            self.machine
        );
        let dash = || "–".to_string();
        for s in &self.scenarios {
            let rps = |f: &Option<Figures>| {
                f.as_ref()
                    .map_or_else(dash, |f| format!("{:.0}", f.requests_per_s))
            };
            let lat = |f: &Option<Figures>| {
                f.as_ref().map_or_else(dash, |f| {
                    format!("{:.2} / {:.2} / {:.1}", f.p50_ms, f.p99_ms, f.max_ms)
                })
            };
            let cpu = |f: &Option<Figures>| {
                f.as_ref()
                    .map_or_else(dash, |f| format!("{:.3}", f.cpu_s_per_1000))
            };
            let rss = |f: &Option<Figures>| {
                f.as_ref()
                    .map_or_else(dash, |f| format!("{:.1}", f.peak_rss_kib as f64 / 1024.0))
            };
            let errors = s.guichet.as_ref().map_or(0, |f| f.errors)
                + s.reference.as_ref().map_or(0, |f| f.errors);
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} |\n",
                s.name,
                rps(&s.guichet),
                rps(&s.reference),
                s.ratio.map_or_else(dash, |r| format!("{r:.2}×")),
                lat(&s.guichet),
                lat(&s.reference),
                cpu(&s.guichet),
                cpu(&s.reference),
                rss(&s.guichet),
                rss(&s.reference),
                errors,
            ));
        }
        out.push_str("\nIdle RSS before the load: ");
        let idle: Vec<String> = self
            .idle_rss_kib
            .iter()
            .map(|(server, kib)| format!("{server} {:.1} MiB", *kib as f64 / 1024.0))
            .collect();
        out.push_str(&idle.join(", "));
        out.push_str(".\n\n");
        out.push_str(&self.bounds_markdown());
        out.push_str(&format!(
            "\n![CPU seconds per 1,000 requests]({charts}/cpu.svg)\n{END}\n"
        ));
        out
    }

    /// How close Guichet comes to the bounds measured in the same run: the token endpoint to
    /// signing alone, full sign-ins to argon2id alone.
    fn bounds_markdown(&self) -> String {
        let guichet_rps = |scenario: &str| {
            self.scenarios
                .iter()
                .find(|s| s.name == scenario)
                .and_then(|s| s.guichet.as_ref())
                .map(|f| f.requests_per_s)
        };
        let mut lines = Vec::new();
        // Two signing bounds: Guichet's own signer (the key kept parsed), and
        // `jsonwebtoken::encode` (`sign_ALG_jsonwebtoken`), the library whose per-core rates
        // the goals were stated against, which parses the key at every signature.
        for alg in ["rs256", "es256", "eddsa"] {
            if let (Some(bound), Some(rps)) = (
                self.bounds.get(&format!("sign_{alg}")),
                guichet_rps(&format!("client_credentials_{alg}")),
            ) {
                let mut line = format!(
                    "- client_credentials, {}: {rps:.0}/s against {bound:.0} signatures/s of Guichet's own signer on every core with nothing else: **{:.0}%** of that bound",
                    alg.to_uppercase(),
                    100.0 * rps / bound
                );
                match self.bounds.get(&format!("sign_{alg}_jsonwebtoken")) {
                    Some(library) => line.push_str(&format!(
                        "; against {library:.0} signatures/s of `jsonwebtoken::encode` (aws_lc_rs) the same way: **{:.0}%** of that bound.",
                        100.0 * rps / library
                    )),
                    None => line.push('.'),
                }
                lines.push(line);
            }
        }
        // Each sign-in run is compared with argon2id measured just before it
        // (`argon2_verify:SCENARIO`).
        for (scenario, factor) in [
            ("sign_in_password_totp", "authenticator code"),
            ("sign_in_password_email_code", "emailed code"),
        ] {
            if let (Some(bound), Some(rps)) = (
                self.bounds.get(&format!("argon2_verify:{scenario}")),
                guichet_rps(scenario),
            ) {
                lines.push(format!(
                    "- Full sign-in (password and {factor}, each person once): {rps:.1}/s against {bound:.1} argon2id verifications/s alone: **{:.0}%** of the hashing bound.",
                    100.0 * rps / bound
                ));
            }
        }
        if lines.is_empty() {
            return String::new();
        }
        format!("Bounds measured in the same run:\n\n{}\n", lines.join("\n"))
    }

    /// Draws `throughput.svg` and `cpu.svg` into `dir`: one pair of bars per shared scenario.
    pub fn charts(&self, dir: &Path) -> anyhow::Result<()> {
        self.bars(
            &dir.join("throughput.svg"),
            "Requests per second (higher is better)",
            |f| f.requests_per_s,
        )?;
        self.bars(
            &dir.join("cpu.svg"),
            "CPU seconds per 1,000 requests (lower is better)",
            |f| f.cpu_s_per_1000,
        )
    }

    fn bars(&self, path: &Path, caption: &str, value: fn(&Figures) -> f64) -> anyhow::Result<()> {
        let shared: Vec<(&str, f64, f64)> = self
            .scenarios
            .iter()
            .filter_map(|s| match (&s.guichet, &s.reference) {
                (Some(g), Some(r)) => Some((s.name.as_str(), value(g), value(r))),
                _ => None,
            })
            .collect();
        let top = shared
            .iter()
            .map(|(_, g, r)| g.max(*r))
            .fold(0.0, f64::max)
            .max(1e-9)
            * 1.1;
        let width = u32::try_from(160 * shared.len() + 120).unwrap_or(4000);
        let root = SVGBackend::new(path, (width, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = shared.len().max(1);
        let labels: Vec<String> = shared.iter().map(|(name, _, _)| name.to_string()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(60)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n as f64, 0f64..top)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 1e-6 && i < labels.len() {
                    labels[i].clone()
                } else {
                    String::new()
                }
            })
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let sides: [Side; 2] = [
            (RGBColor(0, 94, 184), "Guichet", 0.1, |b| b.1),
            (
                RGBColor(230, 126, 34),
                "oidc-provider (reference)",
                0.52,
                |b| b.2,
            ),
        ];
        for (color, label, offset, pick) in sides {
            chart
                .draw_series(shared.iter().enumerate().map(|(i, bar)| {
                    let x = i as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + 0.38, pick(bar))], color.filled())
                }))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// `markdown` with its generated section replaced by `section` (appended when absent).
pub fn replace_section(markdown: &str, section: &str) -> String {
    match (markdown.find(START), markdown.find(END)) {
        (Some(start), Some(end)) if end > start => {
            let after = &markdown[end + END.len()..];
            format!(
                "{}{}{}",
                &markdown[..start],
                section.trim_end_matches('\n'),
                after
            )
        }
        _ => format!(
            "{}\n{section}",
            markdown.trim_end_matches('\n').to_string() + "\n"
        ),
    }
}

/// `target` relative to the directory of `file` (both relative to the same place).
pub fn relative(file: &Path, target: &Path) -> String {
    let base = file.parent().unwrap_or_else(|| Path::new(""));
    target
        .strip_prefix(base)
        .unwrap_or(target)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROWS: &str = "guichet\tjwks\t40000.0\t1.2\t3.4\t10.0\t0\t0.0200\t9000\t200000\n\
                        reference\tjwks\t4000.0\t10.0\t30.0\t50.0\t0\t0.2000\t70000\t20000\n\
                        guichet\tjwks\t44000.0\t1.0\t3.0\t12.0\t0\t0.0180\t9500\t220000\n\
                        guichet\trefresh_es256\t900.0\t40.0\t90.0\t90.0\t1\t1.0000\t12000\t4500\n\
                        guichet\tclient_credentials_rs256\t1600.0\t1\t2\t3\t0\t1\t1\t8000\n\
                        guichet\tjwks on PostgreSQL\t8000.0\t1\t2\t3\t0\t1\t1\t8000\n\
                        bound\tsign_rs256\t2000.0\t0\t0\t0\t0\t0\t0\t10000\n\
                        bound\tsign_rs256_jsonwebtoken\t800.0\t0\t0\t0\t0\t0\t0\t4000\n";

    #[test]
    fn runs_are_aggregated_per_scenario_with_the_ratio() {
        let runs = parse_rows(ROWS).expect("rows");
        let report = Report::new(&runs, BTreeMap::new(), "test");
        assert_eq!(report.scenarios.len(), 4, "bounds are not scenarios");
        let variant = report
            .scenarios
            .iter()
            .find(|s| s.name == "jwks on PostgreSQL")
            .expect("variant");
        assert!(
            (variant.ratio.expect("ratio") - 2.0).abs() < 1e-9,
            "against the reference's jwks"
        );
        assert_eq!(report.bounds.get("sign_rs256"), Some(&2000.0));
        assert!(report
            .markdown("x")
            .contains("1600/s against 2000 signatures/s of Guichet's own signer on every core with nothing else: **80%** of that bound; against 800 signatures/s of `jsonwebtoken::encode` (aws_lc_rs) the same way: **200%** of that bound."));
        let jwks = &report.scenarios[0];
        let g = jwks.guichet.as_ref().expect("guichet");
        assert_eq!(g.runs, 2);
        assert!((g.requests_per_s - 42000.0).abs() < 1e-9);
        assert!((g.max_ms - 12.0).abs() < 1e-9, "the highest maximum");
        assert_eq!(g.peak_rss_kib, 9500);
        assert!((jwks.ratio.expect("ratio") - 10.5).abs() < 1e-9);
        assert_eq!(report.scenarios[1].ratio, None, "Guichet alone");
        assert_eq!(report.errors, 1);
        assert!(parse_rows("guichet\tjwks\t1\n").is_err());
    }

    #[test]
    fn each_sign_in_is_compared_with_the_argon2_bound_measured_before_it() {
        let rows = "bound\targon2_verify:sign_in_password_totp\t60.0\t0\t0\t0\t0\t0\t0\t300\n\
                    guichet\tsign_in_password_totp\t54.0\t1\t2\t2\t0\t30\t1\t270\n\
                    bound\targon2_verify:sign_in_password_email_code\t50.0\t0\t0\t0\t0\t0\t0\t250\n\
                    guichet\tsign_in_password_email_code\t40.0\t1\t2\t2\t0\t30\t1\t200\n";
        let report = Report::new(&parse_rows(rows).expect("rows"), BTreeMap::new(), "test");
        let text = report.markdown("x");
        assert!(text.contains("password and authenticator code, each person once): 54.0/s against 60.0 argon2id verifications/s alone: **90%**"), "{text}");
        assert!(text.contains("password and emailed code, each person once): 40.0/s against 50.0 argon2id verifications/s alone: **80%**"), "{text}");
    }

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let runs = parse_rows(ROWS).expect("rows");
        let section = Report::new(&runs, BTreeMap::new(), "test").markdown("bench");
        let appended = replace_section("# Benchmarks\n\nintro\n", &section);
        assert!(appended.starts_with("# Benchmarks\n\nintro\n"));
        assert!(appended.contains("| jwks | 42000 | 4000 | 10.50× |"));
        let again = replace_section(&format!("{appended}\n## After\n"), &section);
        assert_eq!(again.matches(START).count(), 1);
        assert!(again.ends_with("## After\n"));
    }

    #[test]
    fn charts_are_svg() {
        let runs = parse_rows(ROWS).expect("rows");
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        Report::new(&runs, BTreeMap::new(), "test")
            .charts(&dir)
            .expect("charts");
        let svg = std::fs::read_to_string(dir.join("throughput.svg")).expect("svg");
        assert!(svg.starts_with("<svg") && svg.contains("jwks") && svg.contains("Guichet"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
