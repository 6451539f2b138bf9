//! Turns on the PostgreSQL tests when `QUORUM_TEST_POSTGRES_URL` is set at build time, and
//! the browser tests when `QUORUM_TEST_BROWSER` is set.
//!
//! Without them those tests are compiled as ignored, so `cargo test` lists each of them as
//! "ignored" with the reason instead of passing without having run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(quorum_postgres_tests)");
    println!("cargo::rustc-check-cfg=cfg(quorum_browser_tests)");
    println!("cargo::rerun-if-env-changed=QUORUM_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=QUORUM_TEST_BROWSER");
    if std::env::var("QUORUM_TEST_POSTGRES_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=quorum_postgres_tests");
    }
    if std::env::var("QUORUM_TEST_BROWSER").is_ok_and(|value| !value.is_empty() && value != "0") {
        println!("cargo::rustc-cfg=quorum_browser_tests");
    }
}
