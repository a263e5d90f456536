"""The Python bindings against the real library: three nodes and a real relay on loopback."""

import asyncio
import gc
import json
import time

import pytest

import offst


def wait_for(what, check, timeout=10.0):
    deadline = time.time() + timeout
    while not check():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def config(tmp_path, name, relay, index=None):
    return offst.OffstConfig(
        data_dir=str(tmp_path / name),
        relays=[relay],
        key_secret=None,
        index_servers=[index] if index else [],
    )


def open_node(tmp_path, name, relay, index=None):
    node = offst.OffstNode.open(config(tmp_path, name, relay, index))
    node.start()
    return node


def friend(node, key):
    return next(f for f in node.friends() if f.public_key == key)


def balance(node, key, currency="FST"):
    entry = [c for c in friend(node, key).currencies if c.currency == currency]
    return int(entry[0].balance) if entry else 0


def knows_limit(node, key, amount):
    return any(c.local_max_debt == str(amount) for c in friend(node, key).currencies)


def befriend(a, b, name_of_b, name_of_a):
    key_b = a.add_friend(b.friend_card(name_of_b), None)
    key_a = b.add_friend(a.friend_card(name_of_a), None)
    assert key_b == b.public_key() and key_a == a.public_key()


def test_three_nodes_make_friends_by_card_and_pay(tmp_path, relay):
    offst.init_logging("warn")
    alice, bob, carol = (open_node(tmp_path, n, relay) for n in ("alice", "bob", "carol"))
    befriend(alice, bob, "bob", "alice")
    befriend(bob, carol, "carol", "bob")
    wait_for("links online", lambda: friend(alice, bob.public_key()).status == offst.OffstFriendStatus.ONLINE
             and friend(carol, bob.public_key()).status == offst.OffstFriendStatus.ONLINE)

    bob.set_limit(alice.public_key(), "FST", "100")
    carol.set_limit(bob.public_key(), "FST", "50")
    wait_for("limits known", lambda: knows_limit(alice, bob.public_key(), 100)
             and knows_limit(bob, carol.public_key(), 50))

    alice.transfer(bob.public_key(), "FST", "30")
    bob.transfer(carol.public_key(), "FST", "20")
    wait_for("payments applied", lambda: balance(bob, alice.public_key()) == 30
             and balance(carol, bob.public_key()) == 20)
    wait_for("payer sees acceptance", lambda: balance(bob, carol.public_key()) == -20)
    assert balance(alice, bob.public_key()) == -30
    assert balance(bob, alice.public_key()) + balance(bob, carol.public_key()) == 10

    with pytest.raises(offst.OffstError.InsufficientCredit):
        alice.transfer(bob.public_key(), "FST", "71")
    with pytest.raises(offst.OffstError.InvalidInput):
        alice.transfer(bob.public_key(), "FST", "-5")
    with pytest.raises(offst.OffstError.InvalidInput):
        alice.transfer(bob.public_key(), "F S T", "5")
    assert balance(alice, bob.public_key()) == -30

    events = []
    while (event := bob.next_event()) is not None:
        events.append(event)
        assert bob.event_handled(event.id)
    received = [e for e in events if e.kind == "transfer_received"]
    assert received and json.loads(received[0].payload_json)["amount"] == "30"


def test_events_can_be_awaited_from_asyncio(tmp_path, relay):
    alice, bob = (open_node(tmp_path, n, relay) for n in ("alice", "bob"))
    befriend(alice, bob, "bob", "alice")
    bob.set_limit(alice.public_key(), "FST", "10")
    wait_for("limit known", lambda: knows_limit(alice, bob.public_key(), 10))
    while bob.next_event() is not None:
        bob.event_handled(bob.next_event().id)

    async def pay_and_wait():
        alice.transfer(bob.public_key(), "FST", "4")
        while True:
            event = await bob.wait_next_event(5000)
            assert event is not None, "no event within 5 s"
            bob.event_handled(event.id)
            if event.kind == "transfer_received":
                return event

    event = asyncio.run(pay_and_wait())
    assert json.loads(event.payload_json)["amount"] == "4"


def test_a_closed_node_reopens_with_its_state(tmp_path, relay):
    alice, bob = (open_node(tmp_path, n, relay) for n in ("alice", "bob"))
    befriend(alice, bob, "bob", "alice")
    bob.set_limit(alice.public_key(), "FST", "100")
    wait_for("limit known", lambda: knows_limit(alice, bob.public_key(), 100))
    alice.transfer(bob.public_key(), "FST", "42")
    wait_for("paid", lambda: balance(bob, alice.public_key()) == 42)
    alice_key, bob_key = alice.public_key(), bob.public_key()

    with pytest.raises(offst.OffstError.DataDirInUse):
        offst.OffstNode.open(config(tmp_path, "bob", relay))

    del bob
    gc.collect()
    bob = open_node(tmp_path, "bob", relay)
    assert bob.public_key() == bob_key
    assert balance(bob, alice_key) == 42
    wait_for("relinked", lambda: friend(alice, bob_key).status == offst.OffstFriendStatus.ONLINE)


def test_malformed_cards_are_rejected_with_a_typed_error(tmp_path, relay):
    alice = open_node(tmp_path, "alice", relay)
    card = alice.friend_card("alice")
    parsed = offst.parse_friend_card(card)
    assert parsed.public_key == alice.public_key() and parsed.name == "alice"
    damaged = card[:-3] + ("A" if card[-3] != "A" else "B") + card[-2:]
    for bad in (damaged, card[:-10], "offst:I1AAAA", "https://example.org", ""):
        with pytest.raises(offst.OffstError.InvalidInput) as info:
            alice.add_friend(bad, None)
        assert str(info.value), "the error has a message"
    assert alice.friends() == []
    with pytest.raises(offst.OffstError.UnknownFriend):
        alice.set_limit(offst.parse_friend_card(card).public_key[:-1] + "A", "FST", "1")


class CollectingSink(offst.OffstLogSink):
    def __init__(self):
        self.records = []

    def log(self, level, target, message):
        self.records.append((level, target, message))


def test_logs_reach_an_app_supplied_sink(tmp_path, relay):
    sink = CollectingSink()
    offst.set_log_sink("info", sink)
    alice = open_node(tmp_path, "alice", relay)
    wait_for("a log record", lambda: any("listening on relay" in m for _, _, m in sink.records))
    level, target, _ = next(r for r in sink.records if "listening on relay" in r[2])
    assert level == "INFO" and target.startswith("offst")
    offst.init_logging("warn")
    alice.stop()


def test_an_invoice_is_paid_over_a_mediator(tmp_path, relay, index):
    alice, bob, carol = (open_node(tmp_path, n, relay, index) for n in ("alice", "bob", "carol"))
    befriend(alice, bob, "bob", "alice")
    befriend(bob, carol, "carol", "bob")
    for a, b in ((alice, bob), (bob, alice), (bob, carol), (carol, bob)):
        a.set_limit(b.public_key(), "FST", "100")
    wait_for("limits known", lambda: knows_limit(alice, bob.public_key(), 100)
             and knows_limit(bob, carol.public_key(), 100) and knows_limit(carol, bob.public_key(), 100))

    invoice = carol.create_invoice("FST", "10", "two coffees", 60)
    assert invoice.startswith("offst:I1")

    async def pay():
        # The index needs a moment to hear every capacity report: retry while it finds no route.
        deadline = time.time() + 20
        while True:
            try:
                return await alice.pay(invoice, "5")
            except offst.OffstError.NoRoute:
                if time.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    payment = asyncio.run(pay())
    assert payment.status == offst.OffstPaymentStatus.SUCCEEDED
    assert payment.fees == "1" and payment.amount == "10"
    proof = offst.verify_receipt(payment.receipt)
    assert proof.seller == carol.public_key() and proof.amount == "10"
    assert proof.description == "two coffees"
    tampered = payment.receipt[:-2] + ("A" if payment.receipt[-2] != "A" else "B") + payment.receipt[-1]
    with pytest.raises(offst.OffstError.InvalidInput):
        offst.verify_receipt(tampered)

    wait_for("settled on every hop", lambda: balance(alice, bob.public_key()) == -11
             and balance(bob, alice.public_key()) == 11
             and balance(bob, carol.public_key()) == -10
             and balance(carol, bob.public_key()) == 10)
    fees = {a.currency: a for a in bob.accounts()}
    assert fees["FST"].fees_earned == "1"
    assert {a.currency: a for a in alice.accounts()}["FST"].fees_paid == "1"
    assert {a.currency: a for a in carol.accounts()}["FST"].received == "10"

    with pytest.raises(offst.OffstError.NotAllowed):
        asyncio.run(alice.pay(invoice, "5"))
    with pytest.raises(offst.OffstError.InvalidInput):
        asyncio.run(alice.pay(invoice[:-4], "5"))


def mediated(tmp_path, relay, index):
    """alice – bob – carol with limits both ways on every link, and the index in use."""
    alice, bob, carol = (open_node(tmp_path, n, relay, index) for n in ("alice", "bob", "carol"))
    befriend(alice, bob, "bob", "alice")
    befriend(bob, carol, "carol", "bob")
    for a, b in ((alice, bob), (bob, alice), (bob, carol), (carol, bob)):
        a.set_limit(b.public_key(), "FST", "100")
    wait_for("limits known", lambda: knows_limit(alice, bob.public_key(), 100)
             and knows_limit(bob, carol.public_key(), 100) and knows_limit(carol, bob.public_key(), 100))
    return alice, bob, carol


async def quote_when(node, invoice, check, timeout=20):
    """Quotes until `check(quote)` holds: the index hears capacity reports with a delay."""
    deadline = time.time() + timeout
    while True:
        try:
            quote = await node.quote(invoice)
            if check(quote):
                return quote
        except offst.OffstError.NoRoute:
            pass
        if time.time() > deadline:
            raise AssertionError("the index never gave the expected quote")
        await asyncio.sleep(0.2)


def test_fee_rate_quote_history_and_cancelled_invoice(tmp_path, relay, index):
    alice, bob, carol = mediated(tmp_path, relay, index)
    # Bob charges 3 for payments arriving from alice.
    bob.set_fee_rate(alice.public_key(), "FST", "3", 0)
    with pytest.raises(offst.OffstError.InvalidInput):
        bob.set_fee_rate(alice.public_key(), "FST", "x", 0)
    with pytest.raises(offst.OffstError.UnknownFriend):
        bob.set_fee_rate(carol.public_key()[:-1] + ("A" if carol.public_key()[-1] != "A" else "B"), "FST", "3", 0)

    invoice = carol.create_invoice("FST", "10", "lunch", 60)
    quote = asyncio.run(quote_when(alice, invoice, lambda q: q.total_fees == "3"))
    assert [r.nodes for r in quote.routes] == [[alice.public_key(), bob.public_key(), carol.public_key()]]
    assert quote.routes[0].amount == "10" and quote.routes[0].fees == "3"
    assert balance(alice, bob.public_key()) == 0, "a quote pays nothing"

    payment = asyncio.run(alice.pay(invoice, "5"))
    assert payment.status == offst.OffstPaymentStatus.SUCCEEDED
    assert payment.fees == quote.total_fees == "3"
    wait_for("settled", lambda: balance(alice, bob.public_key()) == -13
             and balance(carol, bob.public_key()) == 10)
    assert {a.currency: a for a in bob.accounts()}["FST"].fees_earned == "3"

    # History: every event, handled or not.
    while (event := alice.next_event()) is not None:
        alice.event_handled(event.id)
    kinds = [e.kind for e in alice.history(None, 0)]
    assert "payment_succeeded" in kinds
    wait_for("seller's event", lambda: "payment_received" in [e.kind for e in carol.history(None, 0)])
    assert len(alice.history(None, 1)) == 1
    assert alice.history(int(time.time() * 1000) + 60_000, 0) == []

    # A cancelled invoice is not paid.
    cancelled = carol.create_invoice("FST", "7", "cancelled", 60)
    carol.cancel_invoice(cancelled)
    with pytest.raises(offst.OffstError.NotAllowed):
        carol.cancel_invoice(cancelled)
    with pytest.raises(offst.OffstError.InvalidInput):
        carol.cancel_invoice("not an invoice")
    try:
        failed = asyncio.run(alice.pay(cancelled, "5"))
        assert failed.status == offst.OffstPaymentStatus.FAILED
    except (offst.OffstError.NotAllowed, offst.OffstError.NoRoute):
        pass
    wait_for("nothing frozen", lambda: all(c.local_pending_debt == "0"
                                           for c in friend(alice, bob.public_key()).currencies))
    assert balance(alice, bob.public_key()) == -13
    assert balance(carol, bob.public_key()) == 10
    assert {a.currency: a for a in carol.accounts()}["FST"].received == "10"

    # Back to the default fee.
    bob.clear_fee_rate(alice.public_key(), "FST")
    again = carol.create_invoice("FST", "2", "tea", 60)
    assert asyncio.run(quote_when(alice, again, lambda q: q.total_fees == "1")).total_fees == "1"


def test_a_backup_restores_into_a_new_directory_with_the_key(tmp_path, relay):
    alice, bob = (open_node(tmp_path, n, relay) for n in ("alice", "bob"))
    befriend(alice, bob, "bob", "alice")
    bob.set_limit(alice.public_key(), "FST", "100")
    wait_for("limit known", lambda: knows_limit(alice, bob.public_key(), 100))
    alice.transfer(bob.public_key(), "FST", "42")
    wait_for("paid", lambda: balance(bob, alice.public_key()) == 42)

    backup = tmp_path / "bob.backup"
    bob.backup(str(backup))
    with pytest.raises(offst.OffstError.Storage):
        bob.backup(str(backup))  # never overwritten
    key_file = str(tmp_path / "bob" / "node.key")

    target = tmp_path / "restored"
    offst.restore_node(str(backup), str(target), key_file)
    with pytest.raises(offst.OffstError.InvalidInput):
        offst.restore_node(str(backup), str(target), key_file)  # not empty: refused
    with pytest.raises(offst.OffstError.InvalidInput):
        offst.restore_node(str(tmp_path / "missing"), str(tmp_path / "other"), None)
    (tmp_path / "junk").write_bytes(b"not a database")
    with pytest.raises(offst.OffstError.Storage):
        offst.restore_node(str(tmp_path / "junk"), str(tmp_path / "third"), key_file)
    assert not any((tmp_path / "third").iterdir()), "a failed restore leaves nothing behind"

    restored = offst.OffstNode.open(config(tmp_path, "restored", relay))
    assert restored.public_key() == bob.public_key()
    assert balance(restored, alice.public_key()) == 42
    assert [f.public_key for f in restored.friends()] == [alice.public_key()]
