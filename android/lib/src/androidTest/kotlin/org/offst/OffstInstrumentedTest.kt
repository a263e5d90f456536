package org.offst

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import org.junit.Assert.assertEquals
import org.junit.Assert.assertThrows
import org.junit.Test
import org.junit.runner.RunWith

/** Runs on a device or emulator: the real liboffst.so for the device's ABI, loaded through JNA. */
@RunWith(AndroidJUnit4::class)
class OffstInstrumentedTest {
    @Test
    fun aNodeOpensInTheAppDirectoryAndItsCardRoundTrips() {
        val context = InstrumentationRegistry.getInstrumentation().targetContext
        initLogging("info")
        val dir = context.noBackupFilesDir.resolve("offst-test-${System.nanoTime()}")
        val relay = "offst-relay:gTl3Dqh9F19Wo1Rmw0x-zMuNipG07jeiXfYPW4_Js5Q@127.0.0.1:7500"
        val node = OffstNode.open(OffstConfig(dir.path, listOf(relay), null))
        val card = node.friendCard("phone")
        assertEquals(node.publicKey(), parseFriendCard(card).publicKey)
        assertThrows(OffstException.InvalidInput::class.java) { node.addFriend("offst:F1AAAA", null) }
        node.close()
        dir.deleteRecursively()
    }
}
