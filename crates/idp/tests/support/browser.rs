//! Running a script of `tests/browser` in Debian's Chromium (playwright-core).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The scripts' directory; fails saying how to get Chromium and playwright-core when missing.
pub fn require_browser() -> PathBuf {
    let dir = repo_root().join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run scripts/test.sh, which installs it"
    );
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/test.sh, which runs npm ci in tests/browser"
    );
    dir
}

/// Runs `script` with `env` and `ARTIFACTS_DIR=artifacts/<artifacts>`; fails with everything
/// it printed unless it exits 0 and prints `passed`. Returns its output.
pub fn run_script(script: &str, artifacts: &str, env: &[(&str, String)], passed: &str) -> String {
    let dir = require_browser();
    let output = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .env(
            "ARTIFACTS_DIR",
            repo_root().join("artifacts").join(artifacts),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node is missing: run scripts/test.sh, which installs it");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(passed), "{stdout}");
    println!("{stdout}");
    stdout
}
