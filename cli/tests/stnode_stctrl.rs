//! `stnode` and `stctrl` as users run them: real `strelay`, `stindex` and three `stnode`
//! processes on loopback, each driven only through `stctrl`. Friends are added by card,
//! limits set, an invoice created on one node is paid from another over a mediator, the
//! balances and fees show on all three, and the receipt verifies (a tampered one does not).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A binary of this workspace: built by `cargo test --workspace`, or built here when only
/// this package is tested.
fn workspace_bin(name: &str) -> PathBuf {
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
        let status = Command::new(cargo)
            .args(["build", "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "building {name}");
    }
    path
}

/// A child process killed when dropped.
struct Process {
    child: Child,
    name: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    fn spawn(name: &str, command: &mut Command) -> (Process, BufReader<ChildStdout>) {
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
    fn terminate(mut self) {
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
fn read_until(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> String {
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct StNode {
    dir: PathBuf,
    process: Option<Process>,
}

impl StNode {
    fn stctrl(&self, args: &[&str]) -> Output {
        self.stctrl_as("ctrl", args)
    }

    fn stctrl_as(&self, app: &str, args: &[&str]) -> Output {
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
    fn json(&self, args: &[&str]) -> Value {
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

    fn friend(&self, name: &str) -> Value {
        let friends = self.json(&["info", "friends"]);
        friends["friends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn balance(&self, friend: &str) -> String {
        self.friend(friend)["currencies"][0]["balance"]
            .as_str()
            .unwrap_or("none")
            .to_owned()
    }
}

fn start_node(base: &Path, name: &str, relay: &str, index: &str) -> (StNode, String) {
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

fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn befriend(a: &StNode, a_name: &str, a_card: &str, b: &StNode, b_name: &str, b_card: &str) {
    a.json(&["config", "add-friend", b_card, "--name", b_name]);
    b.json(&["config", "add-friend", a_card, "--name", a_name]);
    a.json(&["config", "set-limit", b_name, "FST", "1000"]);
    b.json(&["config", "set-limit", a_name, "FST", "1000"]);
}

#[test]
fn three_stnodes_pay_over_a_mediator_driven_by_stctrl() {
    let base = tempfile::tempdir().unwrap();
    // The relay prints its card once it listens.
    let (relay, mut relay_out) = Process::spawn(
        "strelay",
        Command::new(workspace_bin("strelay"))
            .args(["--listen", "127.0.0.1:0", "--no-metrics", "--key-file"])
            .arg(base.path().join("relay.key")),
    );
    let relay_card = read_until(&mut relay_out, "offst-relay:");
    let relay_card = format!("offst-relay:{relay_card}");
    // The index server: its key from `card`, then `run`.
    let index_port = free_port();
    let index_listen = format!("127.0.0.1:{index_port}");
    let index_key_file = base.path().join("index.key");
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
    let (_index, _index_out) = Process::spawn(
        "stindex",
        Command::new(workspace_bin("stindex"))
            .arg("--key-file")
            .arg(&index_key_file)
            .args(["--listen", &index_listen, "run"]),
    );
    let index = format!("{index_key}@{index_listen}");

    let (mut alice, alice_card) = start_node(base.path(), "alice", &relay_card, &index);
    let (mut bob, bob_card) = start_node(base.path(), "bob", &relay_card, &index);
    let (mut carol, carol_card) = start_node(base.path(), "carol", &relay_card, &index);

    // The card `stctrl info card` prints is the one stnode printed.
    let card = alice.json(&["info", "card", "--name", "alice"]);
    assert!(card["card"].as_str().unwrap().starts_with("offst:F1"));

    befriend(&alice, "alice", &alice_card, &bob, "bob", &bob_card);
    befriend(&bob, "bob", &bob_card, &carol, "carol", &carol_card);
    eventually(
        "the friends to come online",
        Duration::from_secs(20),
        || {
            alice.friend("bob")["status"] == "online"
                && bob.friend("alice")["status"] == "online"
                && bob.friend("carol")["status"] == "online"
                && carol.friend("bob")["status"] == "online"
                && alice.friend("bob")["currencies"][0]["local_max_debt"] == "1000"
                && carol.friend("bob")["currencies"][0]["local_max_debt"] == "1000"
        },
    );

    // Carol sells, Alice buys; Bob mediates for the default fee of 1.
    let invoice = carol.json(&[
        "seller",
        "create-invoice",
        "--currency",
        "FST",
        "--amount",
        "100",
        "--description",
        "two coffees",
    ]);
    let invoice_file = base.path().join("coffee.invoice");
    std::fs::write(&invoice_file, invoice["invoice"].as_str().unwrap()).unwrap();
    let receipt_file = base.path().join("coffee.receipt");
    let invoice_arg = invoice_file.to_str().unwrap();
    let receipt_arg = receipt_file.to_str().unwrap();
    // The index learns the capacities within a second or two of the links coming up.
    let mut paid = Value::Null;
    eventually("a route to carol", Duration::from_secs(20), || {
        let output = alice.stctrl(&[
            "--json",
            "buyer",
            "pay",
            invoice_arg,
            "--receipt",
            receipt_arg,
        ]);
        if output.status.success() {
            paid = serde_json::from_slice(&output.stdout).unwrap();
            return true;
        }
        // Only "no route yet" is expected here (exit code 5, nothing changed).
        assert_eq!(
            output.status.code(),
            Some(5),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        false
    });
    assert_eq!(paid["state"], "succeeded");
    assert_eq!(paid["amount"], "100");
    assert_eq!(paid["fees"], "1");

    // Every node shows the payment in `info friends` (balances from each side).
    eventually("settled balances", Duration::from_secs(10), || {
        alice.balance("bob") == "-101"
            && bob.balance("alice") == "101"
            && bob.balance("carol") == "-100"
            && carol.balance("bob") == "100"
    });
    let bob_node = bob.json(&["info", "node"]);
    assert_eq!(bob_node["accounts"][0]["fees_earned"], "1");
    let alice_node = alice.json(&["info", "node"]);
    assert_eq!(alice_node["accounts"][0]["fees_paid"], "1");
    let table = alice.stctrl(&["info", "friends"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("| E+ | bob "), "{table}");
    assert!(table.contains("B  =-101"), "{table}");
    assert!(table.contains("LMD=1000"), "{table}");

    // The receipt verifies offline, against the invoice too; a tampered one does not.
    let verify = |receipt: &Path, invoice: Option<&str>| {
        let mut command = Command::new(workspace_bin("stctrl"));
        command.arg("verify-receipt").arg(receipt);
        if let Some(invoice) = invoice {
            command.args(["--invoice", invoice]);
        }
        command.output().unwrap()
    };
    let ok = verify(&receipt_file, Some(invoice_arg));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid receipt: 100 FST"));
    let receipt = std::fs::read_to_string(&receipt_file).unwrap();
    let receipt = receipt.trim();
    // Flip one character in the middle (the signed invoice) and at the end (the lock).
    for position in [receipt.len() / 2, receipt.len() - 2] {
        let mut tampered = receipt.as_bytes().to_vec();
        tampered[position] = if tampered[position] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let tampered_file = base.path().join("tampered.receipt");
        std::fs::write(&tampered_file, &tampered).unwrap();
        let bad = verify(&tampered_file, None);
        assert_eq!(
            bad.status.code(),
            Some(7),
            "tampered at {position} still verifies"
        );
    }

    // Bad input: a clear message, a non-zero exit, nothing changed.
    let unknown = alice.stctrl(&["config", "set-limit", "mallory", "FST", "5"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no friend named \"mallory\""));
    let malformed = alice.stctrl(&["config", "add-friend", "offst:F1AAAA"]);
    assert_eq!(malformed.status.code(), Some(2));
    let stranger_dir = base.path().join("stranger");
    std::fs::create_dir_all(&stranger_dir).unwrap();
    // An identity the node never registered.
    let other = Command::new(workspace_bin("stnode"))
        .arg("--data-dir")
        .arg(&stranger_dir)
        .args(["app", "add", "ctrl", "--out"])
        .arg(&stranger_dir)
        .output()
        .unwrap();
    assert!(other.status.success());
    std::fs::copy(
        stranger_dir.join("ctrl.ident"),
        alice.dir.join("stranger.ident"),
    )
    .unwrap();
    let refused = alice.stctrl_as("stranger", &["info", "friends"]);
    assert_eq!(refused.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not registered"));
    assert_eq!(alice.balance("bob"), "-101");

    // Clean stops on SIGTERM; a stopped node is "not reachable".
    carol.process.take().unwrap().terminate();
    let gone = carol.stctrl(&["info", "friends"]);
    assert_eq!(gone.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("is stnode running?"));
    alice.process.take().unwrap().terminate();
    bob.process.take().unwrap().terminate();
    drop(relay);
}
