//! Real Offst processes for tests and benchmarks: `strelay`, `stindex` and `stnode`s driven
//! by `stctrl`, on loopback. Used by `tests/stnode_stctrl.rs` and `examples/bench_stctrl.rs`.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A binary of this workspace: built by `cargo test --workspace`, or built here when only
/// this package is tested.
pub fn workspace_bin(name: &str) -> PathBuf {
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let release = dir.ends_with("release");
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .args(release.then_some("--release"))
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
    }
    path
}

/// A child process killed when dropped.
pub struct Process {
    pub child: Child,
    name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command) -> (Process, BufReader<ChildStdout>) {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("starting {name}: {err}"));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (
            Process {
                child,
                name: name.into(),
            },
            stdout,
        )
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{} exited with {status}", self.name);
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop on SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads lines until one starts with `prefix`; returns the rest of it.
pub fn read_until(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let read = stdout.read_line(&mut line).unwrap();
        assert!(read > 0, "the process ended before printing {prefix:?}");
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return rest.trim().to_owned();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct StNode {
    pub dir: PathBuf,
    pub process: Option<Process>,
}

impl StNode {
    pub fn stctrl(&self, args: &[&str]) -> Output {
        self.stctrl_as("ctrl", args)
    }

    pub fn stctrl_as(&self, app: &str, args: &[&str]) -> Output {
        Command::new(workspace_bin("stctrl"))
            .arg("-I")
            .arg(self.dir.join(format!("{app}.ident")))
            .arg("-T")
            .arg(self.dir.join("node.ticket"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs `stctrl --json ARGS`, expecting success.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let output = self.stctrl(&all);
        assert!(
            output.status.success(),
            "stctrl {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    pub fn friend(&self, name: &str) -> Value {
        let friends = self.json(&["info", "friends"]);
        friends["friends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn balance(&self, friend: &str) -> String {
        self.friend(friend)["currencies"][0]["balance"]
            .as_str()
            .unwrap_or("none")
            .to_owned()
    }
}

pub fn start_node(base: &Path, name: &str, relay: &str, index: &str) -> (StNode, String) {
    let dir = base.join(name);
    let stnode = workspace_bin("stnode");
    let common = |command: &mut Command| {
        command.arg("--data-dir").arg(&dir).args([
            "--app-listen",
            "127.0.0.1:0",
            "--relay",
            relay,
            "--index",
            index,
        ]);
    };
    let mut add = Command::new(&stnode);
    common(&mut add);
    add.args(["app", "add", "ctrl", "--permissions", "all", "--out"])
        .arg(&dir);
    let output = add.output().unwrap();
    assert!(
        output.status.success(),
        "stnode app add: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut run = Command::new(&stnode);
    common(&mut run);
    run.arg("run");
    let (process, mut stdout) = Process::spawn(name, &mut run);
    let card = read_until(&mut stdout, "card:");
    read_until(&mut stdout, "ready");
    (
        StNode {
            dir,
            process: Some(process),
        },
        card,
    )
}

pub fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn befriend(a: &StNode, a_name: &str, a_card: &str, b: &StNode, b_name: &str, b_card: &str) {
    a.json(&["config", "add-friend", b_card, "--name", b_name]);
    b.json(&["config", "add-friend", a_card, "--name", a_name]);
    a.json(&["config", "set-limit", b_name, "FST", "1000"]);
    b.json(&["config", "set-limit", a_name, "FST", "1000"]);
}

/// A relay and an index server, as processes.
pub struct Servers {
    _relay: Process,
    _index: Process,
    /// The relay's card.
    pub relay_card: String,
    /// The index server, `KEY@host:port`.
    pub index: String,
}

impl Servers {
    /// Starts both, with their keys in `base`.
    pub fn start(base: &Path) -> Servers {
        Servers::start_with(base, "")
    }

    /// Starts both; the index server with `index_config` (TOML) as its configuration.
    pub fn start_with(base: &Path, index_config: &str) -> Servers {
        let index_config_file = base.join("stindex.toml");
        std::fs::write(&index_config_file, index_config).unwrap();
        // The relay prints its card once it listens.
        let (relay, mut relay_out) = Process::spawn(
            "strelay",
            Command::new(workspace_bin("strelay"))
                .args(["--listen", "127.0.0.1:0", "--no-metrics", "--key-file"])
                .arg(base.join("relay.key")),
        );
        let relay_card = read_until(&mut relay_out, "offst-relay:");
        let relay_card = format!("offst-relay:{relay_card}");
        // The index server: its key from `card`, then `run`.
        let index_port = free_port();
        let index_listen = format!("127.0.0.1:{index_port}");
        let index_key_file = base.join("index.key");
        let card = Command::new(workspace_bin("stindex"))
            .arg("--key-file")
            .arg(&index_key_file)
            .args(["--listen", &index_listen, "card"])
            .output()
            .unwrap();
        let card = String::from_utf8(card.stdout).unwrap();
        let index_key = card
            .lines()
            .find_map(|line| line.strip_prefix("public_key = "))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        let (index_process, _index_out) = Process::spawn(
            "stindex",
            Command::new(workspace_bin("stindex"))
                .arg("--config")
                .arg(&index_config_file)
                .arg("--key-file")
                .arg(&index_key_file)
                .args(["--listen", &index_listen, "run"]),
        );
        let index = format!("{index_key}@{index_listen}");

        Servers {
            _relay: relay,
            _index: index_process,
            relay_card,
            index,
        }
    }
}
