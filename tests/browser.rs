//! The grading page in a real browser: runs the Node tests in `tests/browser/` against this
//! build's `quorum` binary. They drive Debian's Chromium (`/usr/bin/chromium`) with the npm
//! package playwright-core; see `tests/browser/README.md`.

use std::path::Path;
use std::process::Command;

#[test]
#[cfg_attr(
    not(quorum_browser_tests),
    ignore = "needs Chromium and the npm packages: run .ci/run, or set QUORUM_TEST_BROWSER=1 after installing them"
)]
fn grading_page_in_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = root.join("tests/browser");
    assert!(
        suite.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in {}",
        suite.display()
    );

    // Test files are named explicitly because Node versions differ in how `node --test` reads
    // a folder argument.
    let mut test_files: Vec<String> = std::fs::read_dir(&suite)
        .expect("tests/browser is readable")
        .filter_map(|entry| entry.ok().map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("tests/browser/{name}"))
        .collect();
    test_files.sort();
    assert!(!test_files.is_empty(), "no *.test.js files in {}", suite.display());

    let output = Command::new("node")
        .arg("--test")
        .args(&test_files)
        .current_dir(root)
        .env("QUORUM_BIN", env!("CARGO_BIN_EXE_quorum"))
        .output()
        .expect("node could not be started: install Node.js 20 or newer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "the browser tests failed ({}); node's output is above", output.status);
}
