//! The `stindex` binary as an operator uses it: help, a key created on first run and reused,
//! the card, a config file, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STINDEX: &str = env!("CARGO_BIN_EXE_stindex");

fn card(dir: &std::path::Path) -> String {
    let output = Command::new(STINDEX)
        .args(["card", "--address", "index.example.org:7400", "--key-file"])
        .arg(dir.join("identity.key"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn help_lists_the_flags_and_subcommands() {
    let output = Command::new(STINDEX).arg("--help").output().unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success());
    for needle in [
        "--config",
        "--listen",
        "--metrics-listen",
        "--peer",
        "card",
        "run",
    ] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
}

#[test]
fn the_key_is_created_on_first_run_and_the_card_stays_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let first = card(dir.path());
    assert!(dir.path().join("identity.key").exists());
    assert!(first.contains("[[peers]]"));
    assert!(first.contains("address = \"index.example.org:7400\""));
    assert_eq!(card(dir.path()), first);
}

#[test]
fn a_bad_config_file_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stindex.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nmax_conections = 5\n").unwrap();
    let output = Command::new(STINDEX)
        .arg("--config")
        .arg(&config)
        .arg("--key-file")
        .arg(dir.path().join("identity.key"))
        .arg("card")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("max_conections"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn the_server_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(STINDEX)
        .args(["--listen", "127.0.0.1:0", "--key-file"])
        .arg(dir.path().join("identity.key"))
        .arg("run")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    loop {
        let line = lines.next().expect("stindex exited early").unwrap();
        if line.contains("listening on") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no listening line"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stindex did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|line| line.contains("stopped")), "{rest:?}");
}
