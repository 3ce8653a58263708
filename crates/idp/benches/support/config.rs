//! The criterion settings shared by the benchmark sets.

use criterion::Criterion;

/// Short runs (1 s of warm-up, 3 s of measurement per function) keep both sets, `signing` and
/// `hot_paths`, well under two minutes once built.
pub fn short_runs() -> Criterion {
    Criterion::default()
        .measurement_time(std::time::Duration::from_secs(3))
        .warm_up_time(std::time::Duration::from_secs(1))
}
