//! `stnet` as a user runs it: a real relay and real nodes over loopback; `--json` reports every
//! payment ok and balances that sum to zero.

use std::process::Command;

#[test]
fn stnet_json_reports_all_payments_ok_and_balances_summing_to_zero() {
    let output = Command::new(env!("CARGO_BIN_EXE_stnet"))
        .args(["--json", "--nodes", "4", "--payments", "20"])
        .output()
        .expect("stnet runs");
    assert!(
        output.status.success(),
        "stnet failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(report["payments_ok"], 20);
    assert_eq!(report["payments_failed"], 0);
    assert_eq!(report["balance_sum"], "0");
    assert_eq!(report["multi_hop"], true);
    assert_eq!(report["fees_earned_total"], report["fees_paid_total"]);
    let route = report["index_route"]["path"]
        .as_str()
        .expect("the index found a route");
    assert!(
        route.starts_with("node-0 -> ") && route.ends_with(" -> node-3"),
        "{route}"
    );
    let nodes = report["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4);
    let sum: i128 = nodes
        .iter()
        .map(|n| n["balance"].as_str().unwrap().parse::<i128>().unwrap())
        .sum();
    assert_eq!(sum, 0);
    for node in nodes {
        for field in [
            "balance",
            "payments_ok",
            "payments_failed",
            "latency_p50_ms",
            "latency_p99_ms",
        ] {
            assert!(!node[field].is_null(), "node field {field} missing");
        }
    }
}

#[test]
fn stnet_rejects_a_bad_node_count_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_stnet"))
        .args(["--nodes", "1"])
        .output()
        .expect("stnet runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--nodes must be between 2 and 64"));
}
