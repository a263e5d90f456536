import Foundation
import XCTest
@testable import Offst

final class OffstTests: XCTestCase {
    private let relay = "offst-relay:gTl3Dqh9F19Wo1Rmw0x-zMuNipG07jeiXfYPW4_Js5Q@127.0.0.1:7500"

    private func tempDir() -> String {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("offst-\(UUID().uuidString)").path
    }

    func testANodeOpensAndItsCardRoundTrips() throws {
        let node = try OffstNode.open(config: OffstConfig(dataDir: tempDir(), relays: [relay], keySecret: nil))
        let card = try node.friendCard(name: "iphone")
        XCTAssertEqual(try parseFriendCard(card: card).publicKey, node.publicKey())
    }

    func testMalformedCardsThrowTheTypedError() throws {
        let node = try OffstNode.open(config: OffstConfig(dataDir: tempDir(), relays: [relay], keySecret: nil))
        XCTAssertThrowsError(try node.addFriend(card: "offst:F1AAAA", name: nil)) { error in
            guard case OffstError.InvalidInput = error else {
                return XCTFail("expected InvalidInput, got \(error)")
            }
        }
        XCTAssertTrue(try node.friends().isEmpty)
    }

    func testASecondOpenOfTheSameDirectoryIsRefused() throws {
        let dir = tempDir()
        let node = try OffstNode.open(config: OffstConfig(dataDir: dir, relays: [relay], keySecret: nil))
        XCTAssertThrowsError(try OffstNode.open(config: OffstConfig(dataDir: dir, relays: [relay], keySecret: nil)))
        _ = node
    }
}
