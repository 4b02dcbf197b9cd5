import Foundation
import Glibc
import Logging
import Testing
import TollgateEmulator
import TollgateHTTP
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport

@testable import TollgateStripe

/// The libcurl Stripe client against the emulator's Stripe fake (over loopback HTTP) and
/// against localstripe, a third-party Stripe emulator from PyPI.
@Suite struct StripeClientTests {
    static let now = Timestamp(secondsSinceEpoch: 1_767_312_000)  // 2026-01-02T00:00:00Z

    /// A fake on a fresh database, a client for it, and the fake to inspect. The timeout is
    /// generous: these tests are about Stripe's error semantics, and a loaded CI machine
    /// (two cores, every suite at once) can starve the fake for seconds.
    func fake(retries: Int = 0, apiKey: String = StripeFakeServer.apiKey) async throws -> (StripeClient, StripeFakeServer, SQLiteStripeFake)
    {
        let database = try temporaryDatabase(clock: FixedClock(time: Self.now))
        let server = StripeFakeServer(database)
        let url = try await server.start(logger: Logger(label: "fake", factory: { _ in SwiftLogNoOpLogHandler() }))
        let client = StripeClient(configuration: .init(baseURL: url, apiKey: apiKey, maxNetworkRetries: retries, timeout: .seconds(60)))
        return (client, server, SQLiteStripeFake(database))
    }

    func event(_ identifier: String = "tg-acct_1-api_units-2026-01-01", value: Int64 = 42, at timestamp: Timestamp? = nil) -> MeterEvent {
        MeterEvent(
            eventName: "api_units", customerId: "cus_1", value: value, identifier: identifier,
            timestamp: timestamp ?? Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch - 1))
    }

    @Test func meterEvent_isRecordedOnce_whenTheSameReportIsSentTwice() async throws {
        let (client, server, fake) = try await fake()
        defer { server.stop() }
        let first = try await client.report(event())
        let second = try await client.report(event())
        #expect(first.identifier == "tg-acct_1-api_units-2026-01-01")
        #expect(second == first)
        let events = try await fake.meterEvents()
        #expect(events.count == 1)
        #expect(events.first?.value == 42)
        #expect(events.first?.customer == "cus_1")
    }

    @Test func duplicateIdentifier_underAnotherIdempotencyKey_isTreatedAsAlreadyReported() async throws {
        let (client, server, fake) = try await fake()
        defer { server.stop() }
        let answer = try await fake.createMeterEvent(
            ["event_name": "api_units", "payload[stripe_customer_id]": "cus_1", "payload[value]": "42", "identifier": "tg-x"],
            idempotencyKey: "someone-else")
        #expect(answer.status == 200)
        let receipt = try await client.report(event("tg-x"))
        #expect(receipt.identifier == "tg-x")
        #expect(try await fake.meterEvents().count == 1)
    }

    @Test func status500_isRetriedWithTheSameIdempotencyKey_untilStripeAnswers() async throws {
        let (client, server, fake) = try await fake(retries: 2)
        defer { server.stop() }
        server.fail(next: 2, status: 500)
        _ = try await client.report(event())
        #expect(server.requests == 3)
        #expect(try await fake.meterEvents().count == 1)
    }

    @Test func status429_outlastingTheRetries_isResourceExhausted() async throws {
        let (client, server, _) = try await fake(retries: 1)
        defer { server.stop() }
        server.fail(next: 5, status: 429)
        await expectCode(.resourceExhausted) { try await client.report(event()) }
        #expect(server.requests == 2)
    }

    @Test func validationError400_isNeverRetried() async throws {
        let (client, server, fake) = try await fake(retries: 2)
        defer { server.stop() }
        let old = Timestamp(secondsSinceEpoch: Self.now.secondsSinceEpoch - 36 * 86_400)
        let error = await expectCode(.invalidArgument) { try await client.report(event(at: old)) }
        #expect(error?.message.contains("timestamp_outside_window") == true)
        #expect(server.requests == 1)
        #expect(try await fake.meterEvents().isEmpty)
    }

    @Test func idempotencyKey_afterAValidationError_savesNothing_soACorrectedRequestSucceeds() async throws {
        let (_, server, fake) = try await fake()
        defer { server.stop() }
        let valid = ["event_name": "api_units", "payload[stripe_customer_id]": "cus_1", "payload[value]": "42", "identifier": "tg-v"]
        let refused = try await fake.createMeterEvent(valid.filter { $0.key != "event_name" }, idempotencyKey: "k-1")
        #expect(refused.status == 400)
        let corrected = try await fake.createMeterEvent(valid, idempotencyKey: "k-1")
        #expect(corrected.status == 200)
        #expect(try await fake.createMeterEvent(valid, idempotencyKey: "k-1").body == corrected.body)
    }

    @Test func requestCutOffMidBody_reachesNoEndpoint_soItsRetryUnderTheSameKeySucceeds() async throws {
        let (client, server, fake) = try await fake()
        defer { server.stop() }
        let port = try #require(URL(string: client.configuration.baseURL)?.port)
        let key = "meter-event-\(event().identifier)"
        // Promises 400 bytes of form, sends 20 and hangs up: a client killed mid-request.
        try sendAndHangUp(
            port: port,
            "POST /v1/billing/meter_events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(StripeFakeServer.apiKey)\r\n"
                + "Idempotency-Key: \(key)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n"
                + "event_name=api_units")
        for _ in 0..<500 where server.requests == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.requests == 1)
        _ = try await client.report(event())
        #expect(try await fake.meterEvents().count == 1)
    }

    @Test func wrongAPIKey_isPermissionDenied() async throws {
        let (client, server, _) = try await fake(apiKey: "sk_test_wrong")
        defer { server.stop() }
        await expectCode(.permissionDenied) { try await client.report(event()) }
    }

    @Test func connectionRefused_isUnavailable() async throws {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let client = StripeClient(configuration: .init(baseURL: "http://127.0.0.1:1", apiKey: "sk_test_x", maxNetworkRetries: 0))
        await expectCode(.unavailable) { try await client.report(event()) }
    }

    @Test func formEncoding_matchesStripesLibraries() {
        #expect(StripeClient.formEncode("payload[stripe_customer_id]") == "payload[stripe_customer_id]")
        #expect(StripeClient.formEncode("a b&c=d/é") == "a+b%26c%3Dd%2F%C3%A9")
    }

    // MARK: - localstripe

    @Test(Peer.localstripe.trait) func customerRoundTrip_againstLocalstripe() async throws {
        let peer = try await Localstripe.start()
        defer { peer.stop() }
        let client = StripeClient(configuration: .init(baseURL: peer.url, apiKey: "sk_test_tollgate", maxNetworkRetries: 0))
        let created = try await client.createCustomer(email: "ops@example.com", metadata: ["account": "acct_1"], idempotencyKey: "c-1")
        let id = try #require(created["id"]?.stringValue)
        #expect(id.hasPrefix("cus_"))
        let read = try await client.customer(id)
        #expect(read["email"]?.stringValue == "ops@example.com")
        #expect(read["metadata"]?["account"]?.stringValue == "acct_1")
        #expect(try await client.subscriptions(customer: id).isEmpty)
        do {
            _ = try await client.customer("cus_does_not_exist")
            Issue.record("an unknown customer must be refused")
        } catch let error as StripeAPIError {
            #expect(error.status == 404)
            #expect(!error.retryable)
        }
    }
}
