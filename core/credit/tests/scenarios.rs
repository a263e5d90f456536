//! Scenario tests of friends and the token channel, driven through the simulated network.
//! Each test is named after the behaviour it shows.

use offst_credit::sheet::sheet_hash;
use offst_credit::{
    ChainPosition, ChannelStatus, Command, CommandError, CreditConfig, Event, OperationError,
    ReceiveError, ResetPolicy, TokenHolder,
};
use offst_proto::friend::{FriendMessage, FriendOperation, MoveToken, MoveTokenMessage};
use offst_proto::{Balance, Credits, Currency, PaymentId, Signature, WireMessage};
use offst_testkit::{NodeId, SimNetwork};

fn fst() -> Currency {
    Currency::new("FST").unwrap()
}

fn usd() -> Currency {
    Currency::new("USD").unwrap()
}

fn config(policy: ResetPolicy) -> CreditConfig {
    CreditConfig {
        reset_policy: policy,
        ..CreditConfig::default()
    }
}

/// Two connected friends.
fn two_friends(policy: ResetPolicy) -> (SimNetwork, NodeId, NodeId) {
    let mut net = SimNetwork::new(7);
    let a = net.add_node(config(policy));
    let b = net.add_node(config(policy));
    net.befriend(a, b).unwrap();
    net.settle().unwrap();
    (net, a, b)
}

/// `from` lets `to` owe it up to `amount` of `currency`.
fn set_limit(net: &mut SimNetwork, from: NodeId, to: NodeId, currency: Currency, amount: u128) {
    let friend = net.public_key(to);
    net.command(
        from,
        Command::SetCurrencyLimit {
            friend,
            currency,
            remote_max_debt: Credits(amount),
        },
    )
    .unwrap();
}

fn pay(
    net: &mut SimNetwork,
    from: NodeId,
    to: NodeId,
    currency: Currency,
    amount: u128,
) -> Result<(), CommandError> {
    let friend = net.public_key(to);
    let transfer_id = PaymentId::from_bytes(net.random_bytes());
    net.command(
        from,
        Command::Transfer {
            friend,
            currency,
            amount: Credits(amount),
            transfer_id,
        },
    )
}

fn balance(net: &SimNetwork, of: NodeId, with: NodeId, currency: &Currency) -> Option<i128> {
    net.node(of)
        .balance(&net.public_key(with), currency)
        .map(|balance| balance.0)
}

/// Friends with limits both ways in FST: `a` lets `b` owe 100, `b` lets `a` owe 50.
fn friends_with_limits() -> (SimNetwork, NodeId, NodeId) {
    let (mut net, a, b) = two_friends(ResetPolicy::Manual);
    set_limit(&mut net, a, b, fst(), 100);
    set_limit(&mut net, b, a, fst(), 50);
    net.settle().unwrap();
    (net, a, b)
}

fn rejections(net: &mut SimNetwork, id: NodeId) -> Vec<ReceiveError> {
    net.take_events(id)
        .into_iter()
        .filter_map(|event| match event {
            Event::MessageRejected { error, .. } => Some(error),
            _ => None,
        })
        .collect()
}

fn is_consistent(net: &SimNetwork, of: NodeId, with: NodeId) -> bool {
    matches!(
        net.node(of).friend(&net.public_key(with)).unwrap().channel,
        ChannelStatus::Consistent(_)
    )
}

#[test]
fn both_sides_know_both_limits() {
    let (net, a, b) = friends_with_limits();
    for (of, with, local_max, remote_max) in [(a, b, 50, 100), (b, a, 100, 50)] {
        let friend = net.node(of).friend(&net.public_key(with)).unwrap();
        let ChannelStatus::Consistent(channel) = &friend.channel else {
            panic!("inconsistent");
        };
        let state = channel.sheet.currency(&fst()).unwrap();
        assert_eq!(state.local_max_debt, Credits(local_max));
        assert_eq!(state.remote_max_debt, Credits(remote_max));
        assert!(state.local_open && state.remote_open);
    }
    net.check_agreement().unwrap();
}

#[test]
fn limits_are_enforced_both_ways() {
    let (mut net, a, b) = friends_with_limits();
    // a may owe b at most 50.
    pay(&mut net, a, b, fst(), 50).unwrap();
    assert!(matches!(
        pay(&mut net, a, b, fst(), 1),
        Err(CommandError::Operation(OperationError::OverLimit { .. }))
    ));
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(-50));
    assert_eq!(balance(&net, b, a, &fst()), Some(50));
    // b may owe a at most 100: 50 to settle its credit, then 100 of debt.
    pay(&mut net, b, a, fst(), 150).unwrap();
    assert!(matches!(
        pay(&mut net, b, a, fst(), 1),
        Err(CommandError::Operation(OperationError::OverLimit {
            capacity: Credits(0),
            ..
        }))
    ));
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(100));
    assert_eq!(balance(&net, b, a, &fst()), Some(-100));
    net.check_agreement().unwrap();
}

#[test]
fn lowering_a_limit_stops_new_debt_but_keeps_the_old() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 40).unwrap();
    net.settle().unwrap();
    set_limit(&mut net, b, a, fst(), 10);
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(-40));
    assert!(matches!(
        pay(&mut net, a, b, fst(), 1),
        Err(CommandError::Operation(OperationError::OverLimit { .. }))
    ));
    // Paying back is always possible.
    pay(&mut net, b, a, fst(), 35).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(-5));
    pay(&mut net, a, b, fst(), 5).unwrap();
    net.settle().unwrap();
    net.check_agreement().unwrap();
}

#[test]
fn lowering_a_limit_below_the_debt_stops_new_credit_but_not_repayment() {
    let (mut net, a, b) = friends_with_limits();
    // a owes b 23, then b lowers a's limit to 0: legitimate, checked after every step.
    pay(&mut net, a, b, fst(), 23).unwrap();
    net.settle().unwrap();
    net.check_invariants().unwrap();
    set_limit(&mut net, b, a, fst(), 0);
    while net.deliver(0) {
        net.check_invariants().unwrap();
    }
    net.settle().unwrap();
    net.check_invariants().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(-23));
    // a cannot borrow more...
    assert!(matches!(
        pay(&mut net, a, b, fst(), 1),
        Err(CommandError::Operation(OperationError::OverLimit { .. }))
    ));
    // ...but b's payments to a repay the debt, step by step.
    for amount in [3, 20] {
        pay(&mut net, b, a, fst(), amount).unwrap();
        while net.deliver(0) {
            net.check_invariants().unwrap();
        }
        net.settle().unwrap();
        net.check_invariants().unwrap();
    }
    assert_eq!(balance(&net, a, b, &fst()), Some(0));
    assert!(matches!(
        pay(&mut net, a, b, fst(), 1),
        Err(CommandError::Operation(OperationError::OverLimit { .. }))
    ));
    net.check_agreement().unwrap();
}

#[test]
fn a_lost_token_is_retransmitted_when_the_link_comes_back() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 30).unwrap();
    assert_eq!(net.in_flight().len(), 1);
    net.drop_message(0).unwrap();
    net.deliver_all(100);
    assert_eq!(balance(&net, b, a, &fst()), Some(0));
    net.disconnect(a, b);
    net.connect(a, b);
    net.deliver_all(100);
    assert_eq!(balance(&net, b, a, &fst()), Some(30));
    net.check_agreement().unwrap();
}

#[test]
fn a_lost_token_is_retransmitted_on_timer_when_more_is_waiting() {
    let (mut net, a, b) = friends_with_limits();
    let (payer, payee) = if holds_token(&net, a, b) {
        (a, b)
    } else {
        (b, a)
    };
    pay(&mut net, payer, payee, fst(), 10).unwrap();
    net.drop_message(0).unwrap();
    // The second transfer waits for the token; asking for it resends the first token, which
    // is lost too.
    pay(&mut net, payer, payee, fst(), 5).unwrap();
    net.drop_message(0).unwrap();
    net.deliver_all(100);
    assert_eq!(balance(&net, payee, payer, &fst()), Some(0));
    net.advance(CreditConfig::default().retransmit_after_ms);
    net.deliver_all(100);
    assert_eq!(balance(&net, payee, payer, &fst()), Some(15));
    assert_eq!(balance(&net, payer, payee, &fst()), Some(-15));
    net.settle().unwrap();
    net.check_agreement().unwrap();
}

fn holds_token(net: &SimNetwork, of: NodeId, with: NodeId) -> bool {
    matches!(
        &net.persisted(of).friends[&net.public_key(with)].channel,
        ChannelStatus::Consistent(channel) if channel.holds_token()
    )
}

#[test]
fn duplicated_and_reordered_messages_change_nothing() {
    let (mut net, a, b) = friends_with_limits();
    for round in 0..10 {
        pay(&mut net, a, b, fst(), 1).unwrap();
        pay(&mut net, b, a, fst(), 2).unwrap();
        let in_flight = net.in_flight().len();
        for index in 0..in_flight {
            net.duplicate_message(index);
        }
        if round % 2 == 0 {
            net.reorder();
        }
        net.deliver_all(1000);
        net.check_invariants().unwrap();
    }
    net.settle().unwrap();
    net.check_agreement().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(10));
    // Late duplicates are recognised as replays and never break the channel.
    let rejected = rejections(&mut net, a)
        .into_iter()
        .chain(rejections(&mut net, b))
        .collect::<Vec<_>>();
    assert!(
        rejected.iter().all(|error| !error.is_fatal()),
        "{rejected:?}"
    );
}

#[test]
fn a_node_restarted_mid_exchange_resumes_from_its_store() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 7).unwrap();
    // b restarts before the token arrives; a restarts after sending it.
    net.restart(b);
    net.restart(a);
    net.deliver_all(100);
    // a crashes after persisting a transfer but before sending it.
    pay(&mut net, b, a, fst(), 1).unwrap();
    net.deliver_all(100);
    net.command_then_crash(
        a,
        Command::Transfer {
            friend: net.public_key(b),
            currency: fst(),
            amount: Credits(3),
            transfer_id: PaymentId::from_bytes([3; 16]),
        },
    )
    .unwrap();
    net.settle().unwrap();
    net.check_invariants().unwrap();
    net.check_agreement().unwrap();
    assert_eq!(balance(&net, b, a, &fst()), Some(9));
}

/// Corrupts `of`'s stored sheet with `with` so that its next token disagrees.
fn corrupt_balance(net: &mut SimNetwork, of: NodeId, with: NodeId, delta: i128) {
    let key = net.public_key(with);
    let friend = net.persisted(of).friends.get(&key).unwrap().clone();
    let ChannelStatus::Consistent(channel) = friend.channel else {
        panic!("inconsistent");
    };
    let mut terms = channel.sheet.to_terms();
    terms[0].balance = Balance(terms[0].balance.0 + delta);
    let mut corrupted = channel.clone();
    corrupted.sheet = offst_credit::BalanceSheet::from_terms(&terms, false).unwrap();
    net.tamper_store(
        of,
        &offst_credit::Change::SetChannel {
            friend: key,
            channel: Box::new(ChannelStatus::Consistent(corrupted)),
        },
    );
}

#[test]
fn an_inconsistency_is_detected_and_resolved_by_reset_terms() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 20).unwrap();
    net.settle().unwrap();
    net.take_events(a);
    net.take_events(b);
    // a's store is corrupted: it believes it owes 25.
    corrupt_balance(&mut net, a, b, -5);
    let a_holds = matches!(
        &net.persisted(a).friends[&net.public_key(b)].channel,
        ChannelStatus::Consistent(channel) if channel.holds_token()
    );
    let (holder, other) = if a_holds { (a, b) } else { (b, a) };
    pay(&mut net, holder, other, fst(), 1).unwrap();
    net.settle().unwrap();
    assert!(!is_consistent(&net, a, b) && !is_consistent(&net, b, a));
    let rejected: Vec<_> = rejections(&mut net, other);
    assert!(
        rejected.contains(&ReceiveError::BalanceHashMismatch),
        "{rejected:?}"
    );
    // Both published terms; a's user sees that b's terms are right and accepts them.
    let ChannelStatus::Inconsistent(at_a) =
        &net.node(a).friend(&net.public_key(b)).unwrap().channel
    else {
        panic!()
    };
    let remote = at_a.remote_terms.clone().expect("b's terms reached a");
    assert!(matches!(
        net.command(
            a,
            Command::AcceptResetTerms {
                friend: net.public_key(b),
                reset_token: Signature::from_bytes([0; 64]),
            }
        ),
        Err(CommandError::NoSuchResetTerms)
    ));
    net.command(
        a,
        Command::AcceptResetTerms {
            friend: net.public_key(b),
            reset_token: remote.reset_token,
        },
    )
    .unwrap();
    net.settle().unwrap();
    net.check_agreement().unwrap();
    // b's terms are b's current sheet: a's transfer in the token b rejected is void, b's own
    // transfer in the token a rejected is part of b's terms.
    let expected = if holder == a { -20 } else { -19 };
    assert_eq!(balance(&net, a, b, &fst()), Some(expected));
    // The channel works again.
    pay(&mut net, b, a, fst(), 4).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(expected + 4));
    net.check_agreement().unwrap();
}

#[test]
fn equal_balances_are_reset_automatically_under_the_default_policy() {
    let (mut net, a, b) = two_friends(ResetPolicy::AcceptSameBalances);
    set_limit(&mut net, a, b, fst(), 100);
    set_limit(&mut net, b, a, fst(), 100);
    net.settle().unwrap();
    pay(&mut net, a, b, fst(), 9).unwrap();
    net.settle().unwrap();
    // Break only the chain: b's store forgets the last token link.
    let key = net.public_key(a);
    let ChannelStatus::Consistent(mut channel) = net.persisted(b).friends[&key].channel.clone()
    else {
        panic!()
    };
    channel.tip = Signature::from_bytes([1; 64]);
    channel.last_incoming = None;
    channel.recent_incoming.clear();
    net.tamper_store(
        b,
        &offst_credit::Change::SetChannel {
            friend: key,
            channel: Box::new(ChannelStatus::Consistent(channel)),
        },
    );
    pay(&mut net, a, b, fst(), 1).unwrap();
    pay(&mut net, b, a, fst(), 1).unwrap();
    net.settle().unwrap();
    net.check_agreement().unwrap();
    let resets = net
        .take_events(a)
        .into_iter()
        .filter(|event| matches!(event, Event::ChannelReset { .. }))
        .count();
    assert!(resets >= 1);
    assert!(balance(&net, a, b, &fst()).is_some());
}

#[test]
fn simultaneous_acceptance_of_both_terms_settles_on_one() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 10).unwrap();
    net.settle().unwrap();
    corrupt_balance(&mut net, b, a, 3);
    // Whoever holds the token sends; the other detects the mismatch.
    let sender = if matches!(
        &net.persisted(a).friends[&net.public_key(b)].channel,
        ChannelStatus::Consistent(c) if c.holds_token()
    ) {
        a
    } else {
        b
    };
    let receiver = if sender == a { b } else { a };
    pay(&mut net, sender, receiver, fst(), 1).unwrap();
    net.settle().unwrap();
    let terms = |net: &SimNetwork, of: NodeId, with: NodeId| match &net
        .node(of)
        .friend(&net.public_key(with))
        .unwrap()
        .channel
    {
        ChannelStatus::Inconsistent(inconsistency) => inconsistency.remote_terms.clone().unwrap(),
        ChannelStatus::Consistent(_) => panic!("consistent"),
    };
    let for_a = terms(&net, a, b);
    let for_b = terms(&net, b, a);
    // Both users accept at the same time, before either acceptance is delivered.
    net.command(
        a,
        Command::AcceptResetTerms {
            friend: net.public_key(b),
            reset_token: for_a.reset_token,
        },
    )
    .unwrap();
    net.command(
        b,
        Command::AcceptResetTerms {
            friend: net.public_key(a),
            reset_token: for_b.reset_token,
        },
    )
    .unwrap();
    net.settle().unwrap();
    net.check_agreement().unwrap();
    // The acceptance of the lower key won: the sheet is the higher key's terms.
    let (low, high) = if net.public_key(a) < net.public_key(b) {
        (a, b)
    } else {
        (b, a)
    };
    let high_terms = terms_balance(if high == a { &for_b } else { &for_a });
    assert_eq!(balance(&net, high, low, &fst()), Some(high_terms));
}

/// The balance the terms' author claims (terms are written from the author's side).
fn terms_balance(terms_received_from_author: &offst_proto::friend::ResetTerms) -> i128 {
    terms_received_from_author.currencies[0].balance.0
}

/// `a` loses its data; `a_is_first` picks which of the two nodes plays `a`, so both key
/// orders (genesis token holder or not) are covered.
fn lost_data_recovery(a_is_first: bool) {
    let (mut net, first, second) = friends_with_limits();
    let (a, b) = if a_is_first {
        (first, second)
    } else {
        (second, first)
    };
    // Limits as in `friends_with_limits`, seen from `a`.
    let (a_limit_for_b, b_limit_for_a) = if a_is_first { (100, 50) } else { (50, 100) };
    set_limit(&mut net, a, b, usd(), 7);
    pay(&mut net, b, a, fst(), 40).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(40));
    // a loses everything but its key, and adds b again.
    net.wipe(a);
    net.add_friend_one_way(a, b).unwrap();
    net.settle().unwrap();
    assert!(!is_consistent(&net, a, b));
    let ChannelStatus::Inconsistent(at_a) =
        &net.node(a).friend(&net.public_key(b)).unwrap().channel
    else {
        panic!()
    };
    let from_b = at_a.remote_terms.clone().expect("b published its terms");
    net.command(
        a,
        Command::AcceptResetTerms {
            friend: net.public_key(b),
            reset_token: from_b.reset_token,
        },
    )
    .unwrap();
    net.settle().unwrap();
    net.check_agreement().unwrap();
    assert_eq!(balance(&net, a, b, &fst()), Some(40));
    assert_eq!(balance(&net, a, b, &usd()), Some(0));
    // The limits came back too, and a's configuration keeps them.
    let friend = net.node(a).friend(&net.public_key(b)).unwrap();
    assert_eq!(
        friend.currency_configs[&fst()].remote_max_debt,
        Credits(a_limit_for_b)
    );
    assert_eq!(friend.currency_configs[&usd()].remote_max_debt, Credits(7));
    pay(&mut net, a, b, fst(), 40 + b_limit_for_a).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, b, a, &fst()), Some(b_limit_for_a as i128));
    net.check_agreement().unwrap();
}

#[test]
fn a_node_that_lost_its_data_recovers_its_balances_from_its_friend() {
    lost_data_recovery(true);
    lost_data_recovery(false);
}

#[test]
fn a_node_with_a_new_key_gets_its_balance_back_when_the_friend_confirms() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, b, a, fst(), 80).unwrap();
    net.settle().unwrap();
    // a loses its key: a new node a2 stands for it and adds b.
    let a2 = net.add_node(config(ResetPolicy::Manual));
    net.partition(a, b);
    net.add_friend_one_way(a2, b).unwrap();
    net.settle().unwrap();
    // b does not know a2: nothing moves.
    assert!(rejections(&mut net, b)
        .iter()
        .all(|error| matches!(error, ReceiveError::UnknownFriend(_))));
    // b's user confirms out of band that a2 is a, and moves the friendship.
    net.command(
        b,
        Command::ReplaceFriendKey {
            old_key: net.public_key(a),
            new_key: net.public_key(a2),
            relays: Vec::new(),
        },
    )
    .unwrap();
    net.connect(a2, b);
    net.settle().unwrap();
    let ChannelStatus::Inconsistent(at_a2) =
        &net.node(a2).friend(&net.public_key(b)).unwrap().channel
    else {
        panic!("a2 should see b's terms")
    };
    let from_b = at_a2.remote_terms.clone().unwrap();
    assert_eq!(from_b.currencies[0].balance, Balance(-80));
    net.command(
        a2,
        Command::AcceptResetTerms {
            friend: net.public_key(b),
            reset_token: from_b.reset_token,
        },
    )
    .unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, a2, b, &fst()), Some(80));
    assert_eq!(balance(&net, b, a2, &fst()), Some(-80));
    let at_b = net.node(b).friend(&net.public_key(a2)).unwrap();
    assert_eq!(at_b.previous_key, Some(net.public_key(a)));
    assert!(net.node(b).friend(&net.public_key(a)).is_none());
    pay(&mut net, a2, b, fst(), 30).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, b, a2, &fst()), Some(-50));
}

#[test]
fn several_currencies_share_one_channel() {
    let (mut net, a, b) = two_friends(ResetPolicy::Manual);
    set_limit(&mut net, a, b, fst(), 100);
    set_limit(&mut net, b, a, fst(), 100);
    set_limit(&mut net, a, b, usd(), 5);
    set_limit(&mut net, b, a, usd(), 1000);
    net.settle().unwrap();
    pay(&mut net, a, b, usd(), 900).unwrap();
    pay(&mut net, a, b, fst(), 3).unwrap();
    net.settle().unwrap();
    assert!(matches!(
        pay(&mut net, b, a, usd(), 906),
        Err(CommandError::Operation(OperationError::OverLimit { .. }))
    ));
    pay(&mut net, b, a, usd(), 905).unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &usd()), Some(5));
    assert_eq!(balance(&net, a, b, &fst()), Some(-3));
    // Closing a currency stops payments to us in it only.
    net.command(
        a,
        Command::SetCurrencyOpen {
            friend: net.public_key(b),
            currency: fst(),
            open: false,
        },
    )
    .unwrap();
    net.settle().unwrap();
    assert_eq!(
        pay(&mut net, b, a, fst(), 1),
        Err(CommandError::Operation(OperationError::CurrencyClosed(
            fst()
        )))
    );
    pay(&mut net, a, b, fst(), 1).unwrap();
    // A currency with a balance cannot be removed; one without can.
    assert_eq!(
        net.command(
            a,
            Command::RemoveCurrency {
                friend: net.public_key(b),
                currency: usd(),
            }
        ),
        Err(CommandError::Operation(
            OperationError::CurrencyInUse(usd())
        ))
    );
    pay(&mut net, a, b, usd(), 5).unwrap();
    net.settle().unwrap();
    for side in [a, b] {
        let friend = if side == a {
            net.public_key(b)
        } else {
            net.public_key(a)
        };
        net.command(
            side,
            Command::RemoveCurrency {
                friend,
                currency: usd(),
            },
        )
        .unwrap();
    }
    net.settle().unwrap();
    assert_eq!(balance(&net, a, b, &usd()), None);
    assert_eq!(balance(&net, a, b, &fst()), Some(-4));
    assert_eq!(
        pay(&mut net, a, b, usd(), 1),
        Err(CommandError::Operation(OperationError::UnknownCurrency(
            usd()
        )))
    );
    net.check_agreement().unwrap();
}

/// State `holder` needs to sign a token for `receiver` by hand.
struct HandToken {
    tip: Signature,
    position: ChainPosition,
    sheet: offst_credit::BalanceSheet,
}

/// Makes sure `a` holds the token and returns what it needs to sign the next one.
fn hand_token_state(net: &mut SimNetwork, a: NodeId, b: NodeId) -> HandToken {
    let key = net.public_key(b);
    let channel = match &net.node(a).friend(&key).unwrap().channel {
        ChannelStatus::Consistent(channel) => channel.clone(),
        ChannelStatus::Inconsistent(_) => panic!(),
    };
    if channel.holder != TokenHolder::Local {
        // b passes the token with a small transfer.
        pay(net, b, a, fst(), 1).unwrap();
        net.settle().unwrap();
        return hand_token_state(net, a, b);
    }
    HandToken {
        tip: channel.tip,
        position: channel.position,
        sheet: channel.sheet.clone(),
    }
}

fn sign_by_hand(
    net: &SimNetwork,
    signer: NodeId,
    other: NodeId,
    state: &HandToken,
    operations: Vec<FriendOperation>,
    sheet_after: &offst_credit::BalanceSheet,
) -> MoveToken {
    let position = ChainPosition {
        inconsistency_counter: state.position.inconsistency_counter,
        move_token_counter: state.position.move_token_counter + 1,
    };
    let info_hash = sheet_hash(
        &net.public_key(signer),
        &net.public_key(other),
        position,
        sheet_after,
    )
    .unwrap();
    let rand_nonce = offst_proto::RandValue::from_bytes([4; 16]);
    let bytes = MoveToken::signing_bytes_of(
        &state.tip,
        position.inconsistency_counter,
        position.move_token_counter,
        &operations,
        &info_hash,
        &rand_nonce,
    );
    MoveToken {
        old_token: state.tip,
        inconsistency_counter: position.inconsistency_counter,
        move_token_counter: position.move_token_counter,
        operations,
        info_hash,
        rand_nonce,
        new_token: net.identity(signer).sign(&bytes),
    }
}

fn send_by_hand(net: &mut SimNetwork, from: NodeId, to: NodeId, token: MoveToken) {
    let message = FriendMessage::MoveToken(MoveTokenMessage {
        token,
        token_wanted: false,
    });
    net.inject(from, to, message.encode());
    let last = net.in_flight().len() - 1;
    net.deliver(last);
}

/// Sends a hand-made token from `a` to `b` and returns what `b` said about it.
fn hand_token_rejection(
    operations: Vec<FriendOperation>,
    tamper: impl FnOnce(&mut MoveToken),
    signer_is_stranger: bool,
) -> Vec<ReceiveError> {
    let (mut net, a, b) = friends_with_limits();
    let state = hand_token_state(&mut net, a, b);
    let mut sheet = state.sheet.clone();
    for operation in &operations {
        // Apply what applies so the hash matches the claimed sheet.
        let _ = sheet.apply(operation, offst_credit::Side::Local);
    }
    let signer = if signer_is_stranger {
        net.add_node(CreditConfig::default())
    } else {
        a
    };
    let mut token = sign_by_hand(&net, signer, b, &state, operations, &sheet);
    if signer_is_stranger {
        // The stranger signed for the pair (a, b).
        let position = ChainPosition {
            inconsistency_counter: state.position.inconsistency_counter,
            move_token_counter: state.position.move_token_counter + 1,
        };
        token.info_hash =
            sheet_hash(&net.public_key(a), &net.public_key(b), position, &sheet).unwrap();
        token.new_token = net.identity(signer).sign(&token.signing_bytes());
    }
    tamper(&mut token);
    net.take_events(b);
    let balance_before = balance(&net, b, a, &fst());
    send_by_hand(&mut net, a, b, token);
    let rejected = rejections(&mut net, b);
    if rejected.iter().any(ReceiveError::is_fatal) {
        // The honest side never adopted the bad state: it stopped at its last agreed sheet.
        assert!(!is_consistent(&net, b, a));
        let ChannelStatus::Inconsistent(inconsistency) =
            &net.node(b).friend(&net.public_key(a)).unwrap().channel
        else {
            unreachable!()
        };
        assert_eq!(
            Some(inconsistency.local_terms.currencies[0].balance.0),
            balance_before
        );
    }
    rejected
}

fn transfer(currency: Currency, amount: u128) -> FriendOperation {
    FriendOperation::Transfer {
        currency,
        amount: Credits(amount),
        transfer_id: PaymentId::from_bytes([5; 16]),
    }
}

#[test]
fn a_correct_hand_made_token_is_accepted() {
    let rejected = hand_token_rejection(vec![transfer(fst(), 5)], |_| {}, false);
    assert_eq!(rejected, vec![]);
}

#[test]
fn a_forged_token_is_rejected_with_a_typed_error() {
    let rejected = hand_token_rejection(vec![transfer(fst(), 5)], |_| {}, true);
    assert_eq!(rejected, vec![ReceiveError::InvalidSignature]);
}

#[test]
fn a_token_with_a_wrong_balance_hash_is_rejected() {
    let rejected = hand_token_rejection(
        vec![transfer(fst(), 5)],
        |token| token.info_hash = offst_proto::HashResult::from_bytes([9; 32]),
        false,
    );
    // The signature covers the hash, so a changed hash is first a bad signature...
    assert_eq!(rejected, vec![ReceiveError::InvalidSignature]);
}

#[test]
fn a_signed_token_committing_to_a_sheet_we_disagree_with_is_rejected() {
    let (mut net, a, b) = friends_with_limits();
    let state = hand_token_state(&mut net, a, b);
    // a signs a transfer of 5 but commits to a sheet where it paid only 4.
    let mut sheet = state.sheet.clone();
    sheet
        .apply(&transfer(fst(), 4), offst_credit::Side::Local)
        .unwrap();
    let token = sign_by_hand(&net, a, b, &state, vec![transfer(fst(), 5)], &sheet);
    net.take_events(b);
    send_by_hand(&mut net, a, b, token);
    assert_eq!(
        rejections(&mut net, b),
        vec![ReceiveError::BalanceHashMismatch]
    );
    assert!(!is_consistent(&net, b, a));
}

#[test]
fn an_over_limit_operation_is_rejected() {
    let rejected = hand_token_rejection(vec![transfer(fst(), 1000)], |_| {}, false);
    assert!(matches!(
        rejected.as_slice(),
        [ReceiveError::Operation {
            index: 0,
            error: OperationError::OverLimit { .. }
        }]
    ));
}

#[test]
fn an_unknown_currency_is_rejected() {
    let rejected = hand_token_rejection(vec![transfer(usd(), 1)], |_| {}, false);
    assert_eq!(
        rejected,
        vec![ReceiveError::Operation {
            index: 0,
            error: OperationError::UnknownCurrency(usd())
        }]
    );
}

#[test]
fn a_replayed_token_is_ignored_and_changes_nothing() {
    let (mut net, a, b) = friends_with_limits();
    // Record every token a sends to b over a few rounds.
    let mut recorded = Vec::new();
    for _ in 0..4 {
        pay(&mut net, a, b, fst(), 1).unwrap();
        pay(&mut net, b, a, fst(), 1).unwrap();
        while !net.in_flight().is_empty() {
            let envelope = net.in_flight()[0].clone();
            if envelope.from == a {
                recorded.push(envelope.bytes.clone());
            }
            net.deliver(0);
        }
    }
    net.settle().unwrap();
    let before = net.persisted(b).clone();
    net.take_events(b);
    for bytes in recorded.iter().take(recorded.len() - 1) {
        net.inject(a, b, bytes.clone());
        let last = net.in_flight().len() - 1;
        net.deliver(last);
    }
    assert_eq!(*net.persisted(b), before);
    let rejected = rejections(&mut net, b);
    assert!(rejected
        .iter()
        .all(|error| *error == ReceiveError::Replayed));
    assert!(!rejected.is_empty());
    net.check_agreement().unwrap();
}

#[test]
fn garbage_from_a_friend_is_rejected_without_effect() {
    let (mut net, a, b) = friends_with_limits();
    let before = net.persisted(b).clone();
    net.inject(a, b, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    net.deliver(0);
    assert_eq!(*net.persisted(b), before);
    assert!(matches!(
        rejections(&mut net, b).as_slice(),
        [ReceiveError::Malformed(_)]
    ));
}

#[test]
fn a_disabled_friend_is_ignored_until_enabled() {
    let (mut net, a, b) = friends_with_limits();
    net.command(
        b,
        Command::SetFriendEnabled {
            friend: net.public_key(a),
            enabled: false,
        },
    )
    .unwrap();
    pay(&mut net, a, b, fst(), 5).unwrap();
    net.deliver_all(100);
    assert_eq!(balance(&net, b, a, &fst()), Some(0));
    assert!(rejections(&mut net, b).contains(&ReceiveError::FriendDisabled));
    net.command(
        b,
        Command::SetFriendEnabled {
            friend: net.public_key(a),
            enabled: true,
        },
    )
    .unwrap();
    net.settle().unwrap();
    assert_eq!(balance(&net, b, a, &fst()), Some(5));
}

#[test]
fn a_friend_with_a_balance_is_removed_only_by_force() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 5).unwrap();
    net.settle().unwrap();
    let friend = net.public_key(b);
    assert_eq!(
        net.command(
            a,
            Command::RemoveFriend {
                friend,
                force: false
            }
        ),
        Err(CommandError::BalanceNotZero)
    );
    net.command(
        a,
        Command::RemoveFriend {
            friend,
            force: true,
        },
    )
    .unwrap();
    assert!(net.node(a).friend(&friend).is_none());
}

#[test]
fn bad_commands_are_refused_and_change_nothing() {
    let (mut net, a, b) = friends_with_limits();
    let before = net.persisted(a).clone();
    let own = net.public_key(a);
    let friend = net.public_key(b);
    let stranger = offst_proto::PublicKey::from_bytes([9; 32]);
    let name = offst_proto::Text::new("x").unwrap();
    assert_eq!(
        net.command(
            a,
            Command::AddFriend {
                public_key: own,
                name: name.clone(),
                relays: vec![]
            }
        ),
        Err(CommandError::IsSelf)
    );
    assert_eq!(
        net.command(
            a,
            Command::AddFriend {
                public_key: friend,
                name,
                relays: vec![]
            }
        ),
        Err(CommandError::FriendExists(friend))
    );
    assert_eq!(
        pay(&mut net, a, b, fst(), 0),
        Err(CommandError::Operation(OperationError::ZeroAmount))
    );
    assert_eq!(
        net.command(
            a,
            Command::Transfer {
                friend: stranger,
                currency: fst(),
                amount: Credits(1),
                transfer_id: PaymentId::from_bytes([0; 16]),
            }
        ),
        Err(CommandError::UnknownFriend(stranger))
    );
    assert_eq!(*net.persisted(a), before);
}

#[test]
fn a_new_friendship_exchanges_its_first_token_when_both_come_online() {
    let mut net = SimNetwork::new(3);
    let a = net.add_node(CreditConfig::default());
    let b = net.add_node(CreditConfig::default());
    net.befriend(a, b).unwrap();
    net.settle().unwrap();
    for (of, with) in [(a, b), (b, a)] {
        let ChannelStatus::Consistent(channel) =
            &net.node(of).friend(&net.public_key(with)).unwrap().channel
        else {
            panic!()
        };
        assert!(!channel.is_at_genesis());
    }
    net.check_agreement().unwrap();
}

#[test]
fn a_token_older_than_everything_remembered_does_not_break_the_channel() {
    let (mut net, a, b) = friends_with_limits();
    // Capture one early token from a, then move the chain far beyond what b remembers.
    pay(&mut net, a, b, fst(), 1).unwrap();
    let early = net
        .in_flight()
        .iter()
        .find(|envelope| envelope.from == a)
        .cloned();
    net.settle().unwrap();
    for _ in 0..(offst_credit::channel::RECENT_INCOMING_TOKENS + 5) {
        pay(&mut net, a, b, fst(), 1).unwrap();
        pay(&mut net, b, a, fst(), 1).unwrap();
        net.settle().unwrap();
    }
    let early = early.expect("a sent a token or asked for one");
    net.take_events(b);
    net.inject(a, b, early.bytes);
    net.settle().unwrap();
    net.check_agreement().unwrap();
    assert!(rejections(&mut net, b)
        .iter()
        .all(|error| !error.is_fatal()));
}

#[test]
fn a_reset_token_that_does_not_match_our_terms_is_rejected() {
    let (mut net, a, b) = friends_with_limits();
    pay(&mut net, a, b, fst(), 10).unwrap();
    net.settle().unwrap();
    corrupt_balance(&mut net, a, b, 1);
    let sender = if holds_token(&net, a, b) { a } else { b };
    let receiver = if sender == a { b } else { a };
    pay(&mut net, sender, receiver, fst(), 1).unwrap();
    net.settle().unwrap();
    let ChannelStatus::Inconsistent(at_b) = net
        .node(b)
        .friend(&net.public_key(a))
        .unwrap()
        .channel
        .clone()
    else {
        panic!()
    };
    // a "accepts" b's terms but commits to a different balance.
    let terms = at_b.published_terms();
    let mut sheet = offst_credit::BalanceSheet::from_terms(&terms.currencies, true).unwrap();
    let mut shifted = sheet.to_terms();
    shifted[0].balance = Balance(shifted[0].balance.0 + 7);
    sheet = offst_credit::BalanceSheet::from_terms(&shifted, false).unwrap();
    let position = ChainPosition {
        inconsistency_counter: terms.inconsistency_counter + 1,
        move_token_counter: 0,
    };
    let info_hash = sheet_hash(&net.public_key(a), &net.public_key(b), position, &sheet).unwrap();
    let rand_nonce = offst_proto::RandValue::from_bytes([1; 16]);
    let bytes = MoveToken::signing_bytes_of(
        &terms.reset_token,
        position.inconsistency_counter,
        0,
        &[],
        &info_hash,
        &rand_nonce,
    );
    let token = MoveToken {
        old_token: terms.reset_token,
        inconsistency_counter: position.inconsistency_counter,
        move_token_counter: 0,
        operations: vec![],
        info_hash,
        rand_nonce,
        new_token: net.identity(a).sign(&bytes),
    };
    net.take_events(b);
    send_by_hand(&mut net, a, b, token);
    assert!(
        rejections(&mut net, b).contains(&ReceiveError::InvalidReset("the sheet is not our terms"))
    );
    assert!(!is_consistent(&net, b, a));
}

#[test]
fn mutated_messages_never_panic_and_never_move_money_the_friend_did_not_sign() {
    let (mut base, a, b) = friends_with_limits();
    // A token from a carrying a transfer, as bytes.
    if !holds_token(&base, a, b) {
        pay(&mut base, b, a, fst(), 1).unwrap();
        base.settle().unwrap();
    }
    pay(&mut base, a, b, fst(), 7).unwrap();
    let original = base.in_flight()[0].bytes.clone();
    let balance_before = balance(&base, b, a, &fst()).unwrap();
    for round in 0..300 {
        let (mut net, a, b) = friends_with_limits();
        if !holds_token(&net, a, b) {
            pay(&mut net, b, a, fst(), 1).unwrap();
            net.settle().unwrap();
        }
        let mut bytes = original.clone();
        let index = net.random_below(bytes.len() as u64) as usize;
        bytes[index] ^= 1 << (round % 8);
        net.inject(a, b, bytes);
        let last = net.in_flight().len() - 1;
        net.deliver(last);
        net.check_invariants().unwrap();
        // b either rejected the message or applied a token a really signed (the flip hit a
        // field outside the signature, such as `tokenWanted`): never any other balance.
        if let Some(after) = balance(&net, b, a, &fst()) {
            assert!(
                after == balance_before || after == balance_before + 7,
                "round {round}: balance {after}"
            );
        }
    }
}
