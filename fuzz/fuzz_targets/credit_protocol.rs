//! The whole friend-channel protocol under a fuzzer-chosen schedule: three nodes in a triangle
//! of friendships; the input picks commands (limits, transfers), deliveries, drops,
//! duplicates, reorders, partitions, restarts, forged bytes and time. The invariants of the
//! simulated network must hold after every step, and after healing every pair must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use offst_credit::{Command, CreditConfig};
use offst_proto::{Credits, Currency, PaymentId};
use offst_testkit::{NodeId, SimNetwork};

const NODES: usize = 3;

fuzz_target!(|data: &[u8]| {
    let mut sim = SimNetwork::new(u64::from(data.first().copied().unwrap_or(0)));
    let nodes: Vec<NodeId> = (0..NODES).map(|_| sim.add_node(CreditConfig::default())).collect();
    for i in 0..NODES {
        for j in i + 1..NODES {
            sim.befriend(nodes[i], nodes[j]).expect("fresh friends");
            sim.connect(nodes[i], nodes[j]);
        }
    }
    let currency = Currency::new("FST").expect("valid currency");
    let mut transfers = 0u32;
    for chunk in data.chunks(3).take(400) {
        let [op, x, y] = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let a = nodes[usize::from(x) % NODES];
        let b = nodes[(usize::from(x) / NODES + 1 + usize::from(x) % NODES) % NODES];
        let in_flight = sim.in_flight().len();
        match op % 12 {
            0 => {
                let _ = sim.command(
                    a,
                    Command::SetCurrencyLimit {
                        friend: sim.public_key(b),
                        currency: currency.clone(),
                        remote_max_debt: Credits(u128::from(y) * 10),
                    },
                );
            }
            1 | 2 => {
                transfers += 1;
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&transfers.to_be_bytes());
                let _ = sim.command(
                    a,
                    Command::Transfer {
                        friend: sim.public_key(b),
                        currency: currency.clone(),
                        amount: Credits(u128::from(y % 50) + 1),
                        transfer_id: PaymentId::from_bytes(id),
                    },
                );
            }
            3 | 4 if in_flight > 0 => {
                sim.deliver(usize::from(y) % in_flight);
            }
            5 if in_flight > 0 => {
                sim.drop_message(usize::from(y) % in_flight);
            }
            6 if in_flight > 0 => sim.duplicate_message(usize::from(y) % in_flight),
            7 => sim.reorder(),
            8 => {
                if sim.is_partitioned(a, b) {
                    sim.heal(a, b);
                } else {
                    sim.partition(a, b);
                }
            }
            9 => sim.restart(a),
            10 => sim.inject(a, b, chunk.to_vec()),
            11 => sim.advance(u64::from(y) * 100),
            _ => {
                sim.deliver_all(4);
            }
        }
        if let Err(err) = sim.check_invariants() {
            panic!("invariant broken: {err:?}");
        }
    }
    for i in 0..NODES {
        for j in i + 1..NODES {
            sim.heal(nodes[i], nodes[j]);
        }
    }
    sim.settle().expect("the network settles after healing");
    sim.check_agreement().expect("friends agree after healing");
});
