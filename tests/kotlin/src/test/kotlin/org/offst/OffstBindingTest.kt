package org.offst

import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.nio.file.Path

/** The Kotlin bindings against the real library: nodes and a real strelay process on loopback. */
class OffstBindingTest {
    private lateinit var dir: Path
    private lateinit var relay: Process
    private lateinit var relayCard: String
    private lateinit var index: Process
    private lateinit var indexAddress: String
    private val nodes = mutableListOf<OffstNode>()

    @BeforeEach
    fun startRelay() {
        dir = Files.createTempDirectory("offst-kotlin")
        val port = ServerSocket(0).use { it.localPort }
        val strelay = System.getProperty("offst.strelay")
        val base = listOf(strelay, "--listen", "127.0.0.1:$port", "--no-metrics",
            "--key-file", dir.resolve("relay.key").toString())
        val card = ProcessBuilder(base + "card").start()
        relayCard = card.inputStream.bufferedReader().readText().trim()
        assertEquals(0, card.waitFor())
        relay = ProcessBuilder(base).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        waitFor("relay up") {
            runCatching { Socket().use { it.connect(InetSocketAddress("127.0.0.1", port), 200) } }.isSuccess
        }

        val indexPort = ServerSocket(0).use { it.localPort }
        val stindex = System.getProperty("offst.stindex")
        val indexBase = listOf(stindex, "--listen", "127.0.0.1:$indexPort",
            "--key-file", dir.resolve("index.key").toString())
        val indexCard = ProcessBuilder(indexBase + "card").start()
        val key = indexCard.inputStream.bufferedReader().readLines()
            .first { it.startsWith("public_key") }.substringAfter('"').substringBefore('"')
        assertEquals(0, indexCard.waitFor())
        indexAddress = "$key@127.0.0.1:$indexPort"
        index = ProcessBuilder(indexBase + "run").redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        waitFor("index up") {
            runCatching { Socket().use { it.connect(InetSocketAddress("127.0.0.1", indexPort), 200) } }.isSuccess
        }
    }

    @AfterEach
    fun stopAll() {
        nodes.forEach { it.close() }
        relay.destroy()
        relay.waitFor()
        index.destroy()
        index.waitFor()
        dir.toFile().deleteRecursively()
    }

    private fun waitFor(what: String, timeoutMs: Long = 10_000, check: () -> Boolean) {
        val deadline = System.currentTimeMillis() + timeoutMs
        while (!check()) {
            if (System.currentTimeMillis() > deadline) throw AssertionError("timed out waiting for $what")
            Thread.sleep(10)
        }
    }

    private fun open(name: String): OffstNode {
        val node = OffstNode.open(OffstConfig(dir.resolve(name).toString(), listOf(relayCard), null, listOf(indexAddress)))
        node.start()
        nodes += node
        return node
    }

    private fun OffstNode.friend(key: String) = friends().first { it.publicKey == key }

    private fun OffstNode.balance(key: String) =
        friend(key).currencies.firstOrNull { it.currency == "FST" }?.balance?.toBigInteger() ?: 0.toBigInteger()

    private fun OffstNode.knowsLimit(key: String, amount: Int) =
        friend(key).currencies.any { it.localMaxDebt == amount.toString() }

    private fun befriend(a: OffstNode, b: OffstNode) {
        assertEquals(b.publicKey(), a.addFriend(b.friendCard("b"), null))
        assertEquals(a.publicKey(), b.addFriend(a.friendCard("a"), null))
    }

    @Test
    fun threeNodesMakeFriendsByCardAndPay() {
        val alice = open("alice")
        val bob = open("bob")
        val carol = open("carol")
        befriend(alice, bob)
        befriend(bob, carol)
        waitFor("links online") {
            alice.friend(bob.publicKey()).status == OffstFriendStatus.ONLINE &&
                carol.friend(bob.publicKey()).status == OffstFriendStatus.ONLINE
        }
        bob.setLimit(alice.publicKey(), "FST", "100")
        carol.setLimit(bob.publicKey(), "FST", "50")
        waitFor("limits known") {
            alice.knowsLimit(bob.publicKey(), 100) && bob.knowsLimit(carol.publicKey(), 50)
        }
        alice.transfer(bob.publicKey(), "FST", "30")
        bob.transfer(carol.publicKey(), "FST", "20")
        waitFor("payments applied") {
            bob.balance(alice.publicKey()) == 30.toBigInteger() &&
                carol.balance(bob.publicKey()) == 20.toBigInteger() &&
                bob.balance(carol.publicKey()) == (-20).toBigInteger()
        }
        assertEquals((-30).toBigInteger(), alice.balance(bob.publicKey()))
        assertThrows<OffstException.InsufficientCredit> { alice.transfer(bob.publicKey(), "FST", "71") }
        assertThrows<OffstException.InvalidInput> { alice.transfer(bob.publicKey(), "FST", "0") }
        assertEquals((-30).toBigInteger(), alice.balance(bob.publicKey()))
    }

    @Test
    fun anInvoiceIsPaidOverAMediatorWithAVerifiableReceipt() = runBlocking<Unit> {
        val alice = open("alice")
        val bob = open("bob")
        val carol = open("carol")
        befriend(alice, bob)
        befriend(bob, carol)
        for ((a, b) in listOf(alice to bob, bob to alice, bob to carol, carol to bob)) {
            a.setLimit(b.publicKey(), "FST", "100")
        }
        waitFor("limits known") {
            alice.knowsLimit(bob.publicKey(), 100) && bob.knowsLimit(carol.publicKey(), 100) &&
                carol.knowsLimit(bob.publicKey(), 100)
        }
        val invoice = carol.createInvoice("FST", "10", "two coffees", 60uL)
        assertTrue(invoice.startsWith("offst:I1"))
        var payment: OffstPayment? = null
        val deadline = System.currentTimeMillis() + 20_000
        while (payment == null) {
            try {
                payment = alice.pay(invoice, "5")
            } catch (e: OffstException.NoRoute) {
                // The index has not heard every capacity report yet.
                if (System.currentTimeMillis() > deadline) throw e
                Thread.sleep(200)
            }
        }
        assertEquals(OffstPaymentStatus.SUCCEEDED, payment!!.status)
        assertEquals("1", payment!!.fees)
        val proof = verifyReceipt(payment!!.receipt!!)
        assertEquals(carol.publicKey(), proof.seller)
        assertEquals("10", proof.amount)
        waitFor("settled on every hop") {
            alice.balance(bob.publicKey()) == (-11).toBigInteger() &&
                bob.balance(carol.publicKey()) == (-10).toBigInteger() &&
                carol.balance(bob.publicKey()) == 10.toBigInteger()
        }
        assertEquals("1", bob.accounts().first { it.currency == "FST" }.feesEarned)
        assertThrows<OffstException.NotAllowed> { runBlocking { alice.pay(invoice, "5") } }
    }

    @Test
    fun eventsAreAwaitedFromCoroutines() = runBlocking<Unit> {
        val alice = open("alice")
        val bob = open("bob")
        befriend(alice, bob)
        bob.setLimit(alice.publicKey(), "FST", "10")
        waitFor("limit known") { alice.knowsLimit(bob.publicKey(), 10) }
        alice.transfer(bob.publicKey(), "FST", "4")
        var received: OffstEvent? = null
        while (received == null) {
            val event = bob.waitNextEvent(5_000uL)
            assertNotNull(event, "an event within 5 s")
            bob.eventHandled(event!!.id)
            if (event.kind == "transfer_received") received = event
        }
        assertTrue(received!!.payloadJson.contains("\"amount\":\"4\""))
    }

    @Test
    fun aReopenedNodeKeepsItsStateAndAnOpenDirectoryIsRefused() {
        val alice = open("alice")
        var bob = open("bob")
        befriend(alice, bob)
        bob.setLimit(alice.publicKey(), "FST", "100")
        waitFor("limit known") { alice.knowsLimit(bob.publicKey(), 100) }
        alice.transfer(bob.publicKey(), "FST", "42")
        waitFor("paid") { bob.balance(alice.publicKey()) == 42.toBigInteger() }
        assertThrows<OffstException.DataDirInUse> {
            OffstNode.open(OffstConfig(dir.resolve("bob").toString(), listOf(relayCard), null, listOf()))
        }
        val bobKey = bob.publicKey()
        bob.close()
        nodes.remove(bob)
        bob = open("bob")
        assertEquals(bobKey, bob.publicKey())
        assertEquals(42.toBigInteger(), bob.balance(alice.publicKey()))
    }

    @Test
    fun malformedCardsAreRejectedWithTheTypedError() {
        val alice = open("alice")
        val card = alice.friendCard("alice")
        assertEquals(alice.publicKey(), parseFriendCard(card).publicKey)
        val damaged = card.dropLast(3) + (if (card[card.length - 3] == 'A') "B" else "A") + card.takeLast(2)
        for (bad in listOf(damaged, card.dropLast(10), "offst:I1AAAA", "not a card")) {
            val error = assertThrows<OffstException.InvalidInput> { alice.addFriend(bad, null) }
            assertTrue(error.message!!.isNotEmpty())
        }
        assertTrue(alice.friends().isEmpty())
    }

    @Test
    fun aMediatorsFeeRateIsQuotedPaidAndInTheHistory() = runBlocking<Unit> {
        val alice = open("alice")
        val bob = open("bob")
        val carol = open("carol")
        befriend(alice, bob)
        befriend(bob, carol)
        for ((a, b) in listOf(alice to bob, bob to alice, bob to carol, carol to bob)) {
            a.setLimit(b.publicKey(), "FST", "100")
        }
        waitFor("limits known") {
            alice.knowsLimit(bob.publicKey(), 100) && bob.knowsLimit(carol.publicKey(), 100) &&
                carol.knowsLimit(bob.publicKey(), 100)
        }
        bob.setFeeRate(alice.publicKey(), "FST", "3", 0u)
        val invoice = carol.createInvoice("FST", "10", "lunch", 60uL)
        var quote: OffstQuote? = null
        val deadline = System.currentTimeMillis() + 20_000
        while (quote?.totalFees != "3") {
            if (System.currentTimeMillis() > deadline) throw AssertionError("no quote with fees 3: $quote")
            quote = try { alice.quote(invoice) } catch (e: OffstException.NoRoute) { null }
            if (quote?.totalFees != "3") Thread.sleep(200)
        }
        assertEquals(listOf(alice.publicKey(), bob.publicKey(), carol.publicKey()), quote!!.routes.single().nodes)
        val payment = alice.pay(invoice, "5")
        assertEquals(OffstPaymentStatus.SUCCEEDED, payment.status)
        assertEquals(quote!!.totalFees, payment.fees)
        assertTrue(alice.history(null, 0u).any { it.kind == "payment_succeeded" })
        waitFor("seller's event") { carol.history(null, 0u).any { it.kind == "payment_received" } }

        val cancelled = carol.createInvoice("FST", "7", "cancelled", 60uL)
        carol.cancelInvoice(cancelled)
        assertThrows<OffstException.NotAllowed> { carol.cancelInvoice(cancelled) }
        val failed = runCatching { alice.pay(cancelled, "5") }.getOrNull()
        assertTrue(failed == null || failed.status == OffstPaymentStatus.FAILED)
        waitFor("settled") { carol.balance(bob.publicKey()) == 10.toBigInteger() }
        assertEquals("10", carol.accounts().first { it.currency == "FST" }.received)
    }

    @Test
    fun aBackupRestoresIntoANewDirectoryWithTheKey() {
        val alice = open("alice")
        val bob = open("bob")
        befriend(alice, bob)
        bob.setLimit(alice.publicKey(), "FST", "100")
        waitFor("limit known") { alice.knowsLimit(bob.publicKey(), 100) }
        alice.transfer(bob.publicKey(), "FST", "42")
        waitFor("paid") { bob.balance(alice.publicKey()) == 42.toBigInteger() }
        val backup = dir.resolve("bob.backup").toString()
        bob.backup(backup)
        val key = dir.resolve("bob").resolve("node.key").toString()
        val target = dir.resolve("restored").toString()
        restoreNode(backup, target, key)
        assertThrows<OffstException.InvalidInput> { restoreNode(backup, target, key) }
        val restored = OffstNode.open(OffstConfig(target, listOf(relayCard), null, listOf()))
        nodes += restored
        assertEquals(bob.publicKey(), restored.publicKey())
        assertEquals(42.toBigInteger(), restored.balance(alice.publicKey()))
    }
}
