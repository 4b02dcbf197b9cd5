import Foundation
import Logging
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateStripe
import TollgateTestSupport
import TollgateTesting

@testable import AuthValidator
@testable import TollgateEmulator
@testable import UsageExport
@testable import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Slow and silent clients: a connection that sends nothing is closed, a body that never
/// arrives whole is answered 408 — they held an instance's connections over a minute.
@Suite(.serialized) struct SlowClientTests {
    func webhook() async throws -> RunningFunction {
        let cluster = try ReliabilityTests.Cluster()
        return try await RunningFunction(
            "stripe-webhook",
            environment: cluster.environment(
                "https://stripe-webhook.test",
                [
                    "STRIPE_WEBHOOK_SECRET": ReliabilityTests.webhookSecret,
                    "TOLLGATE_CHECKOUT_SECRET": LocalEnvironment.checkoutSecrets["current"]!,
                    "TOLLGATE_PRICE_TIERS": LocalEnvironment.priceTiers,
                ]))
    }

    @Test func aConnectionThatSendsNothing_orHalfAHeader_isClosed() async throws {
        let webhook = try await webhook()
        let silent = try RawConnection(port: webhook.port, receiveTimeout: 45)
        let halfHeader = try RawConnection(port: webhook.port, receiveTimeout: 45)
        try halfHeader.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        #expect(silent.readUntilClosed() != nil, "closed by the server, not left open")
        #expect(halfHeader.readUntilClosed() != nil)
        #expect(webhook.process.isRunning)
        #expect(try await webhook.stop() == 0)
    }

    @Test func aBodyThatNeverArrivesWhole_is408() async throws {
        let webhook = try await webhook()
        let slow = try RawConnection(port: webhook.port, receiveTimeout: 45)
        try slow.send("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
        let answer = try #require(slow.readUntilClosed(), "the server answered and closed")
        #expect(answer.hasPrefix("HTTP/1.1 408"), "\(answer)")
        #expect(try await webhook.stop() == 0)
    }
}
