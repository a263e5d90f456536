//! `stnode` and `stctrl` as users run them: real `strelay`, `stindex` and three `stnode`
//! processes on loopback, each driven only through `stctrl`. Friends are added by card,
//! limits set, an invoice created on one node is paid from another over a mediator, the
//! balances and fees show on all three, and the receipt verifies (a tampered one does not).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn three_stnodes_pay_over_a_mediator_driven_by_stctrl() {
    let base = tempfile::tempdir().unwrap();
    let servers = Servers::start(base.path());
    let (relay_card, index) = (&servers.relay_card, &servers.index);
    let (mut alice, alice_card) = start_node(base.path(), "alice", relay_card, index);
    let (mut bob, bob_card) = start_node(base.path(), "bob", relay_card, index);
    let (mut carol, carol_card) = start_node(base.path(), "carol", relay_card, index);

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
    drop(servers);
}
