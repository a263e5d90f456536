//! The `strelay` binary: help, the card subcommand, and a graceful stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use offst_proto::relay::RelayCard;

fn strelay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strelay"))
}

#[test]
fn help_lists_the_flags_and_the_card_command() {
    let output = strelay().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in ["--listen", "--key-file", "--metrics", "--config", "card"] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[test]
fn card_creates_the_key_once_and_prints_one_parseable_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("relay.key");
    let card = |()| {
        let output = strelay()
            .args(["--public-address", "relay.example.org:7500", "--key-file"])
            .arg(&key)
            .arg("card")
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let first = card(());
    assert!(key.exists());
    assert_eq!(first.lines().count(), 1);
    let parsed: RelayCard = first.trim().parse().unwrap();
    assert_eq!(parsed.0.address.as_str(), "relay.example.org:7500");
    assert_eq!(card(()), first, "the key file is reused, not replaced");
}

#[test]
fn config_file_with_a_typo_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("strelay.toml");
    std::fs::write(&config, "listn = \"127.0.0.1:1\"\n").unwrap();
    let output = strelay()
        .arg("--config")
        .arg(&config)
        .arg("card")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("strelay.toml"), "{stderr}");
}

#[test]
fn sigterm_stops_the_relay_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = strelay()
        .args(["--listen", "127.0.0.1:0", "--no-metrics", "--key-file"])
        .arg(dir.path().join("relay.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let card: RelayCard = line.trim().parse().unwrap();
    assert!(std::net::TcpStream::connect(card.0.address.as_str()).is_ok());
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "strelay did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
