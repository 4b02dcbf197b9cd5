import Foundation
import Testing
import TollgateModel
import TollgateStripe
import TollgateTestSupport

@Suite struct StripeSignatureTests {
    let secret = "whsec_test_9f3c1a7e5b2d4c6e8a0b1c2d3e4f5a6b"
    let body = Data(#"{"id":"evt_1","object":"event"}"#.utf8)
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    var verifier: StripeSignatureVerifier { StripeSignatureVerifier(secrets: [secret]) }
    var signer: StripeSigner { StripeSigner(secret: secret) }

    func failure(_ header: String?, body: Data? = nil, verifier: StripeSignatureVerifier? = nil) -> StripeSignatureVerifier.Failure? {
        do {
            try (verifier ?? self.verifier).verify(header: header, body: body ?? self.body, now: now)
            return nil
        } catch { return error }
    }

    @Test func validSignature_isAccepted() {
        #expect(failure(signer.header(timestamp: now.secondsSinceEpoch, body: body)) == nil)
    }

    @Test func tamperedBody_isRefused() {
        let header = signer.header(timestamp: now.secondsSinceEpoch, body: body)
        #expect(failure(header, body: Data(#"{"id":"evt_2","object":"event"}"#.utf8)) == .noMatchingSignature)
    }

    @Test func tolerance_is300SecondsInEitherDirection() {
        let t = now.secondsSinceEpoch
        #expect(failure(signer.header(timestamp: t - 300, body: body)) == nil)
        #expect(failure(signer.header(timestamp: t + 300, body: body)) == nil)
        #expect(failure(signer.header(timestamp: t - 301, body: body)) == .timestampOutOfTolerance)
        #expect(failure(signer.header(timestamp: t + 301, body: body)) == .timestampOutOfTolerance)
    }

    @Test func anyMatchingV1_isAccepted_duringARoll() {
        let t = now.secondsSinceEpoch
        let old = StripeSigner(secret: "whsec_old_secret_value").signature(timestamp: t, body: body)
        let new = signer.signature(timestamp: t, body: body)
        #expect(failure("t=\(t),v1=\(old),v1=\(new)") == nil)
        let rolling = StripeSignatureVerifier(secrets: ["whsec_old_secret_value", secret])
        #expect(failure("t=\(t),v1=\(old)", verifier: rolling) == nil)
        #expect(failure("t=\(t),v1=\(old)") == .noMatchingSignature)
    }

    @Test(
        arguments: [
            (nil, StripeSignatureVerifier.Failure.missingHeader), ("", .missingHeader), ("garbage", .malformedHeader),
            ("v1=abc", .malformedHeader), ("t=notanumber,v1=00", .malformedHeader), ("t=1767225600", .noV1Signature),
            ("t=1767225600,v1=zz", .noV1Signature),
        ] as [(String?, StripeSignatureVerifier.Failure)])
    func malformedHeaders_areRefusedWithAReason(header: String?, expected: StripeSignatureVerifier.Failure) {
        #expect(failure(header) == expected)
    }

    /// `abs(now - t)` trapped on these before any signature was checked: one unsigned
    /// request took the instance down (issue 13, finding 1).
    @Test(arguments: [Int64.min, Int64.min + 1, -9_223_372_036_854_775_807, Int64.max, Int64.max - 1, -1, 0])
    func extremeTimestamps_areOutOfTolerance_neverATrap(t: Int64) {
        #expect(failure("t=\(t),v1=\(String(repeating: "0", count: 64))") == .timestampOutOfTolerance)
    }

    @Test func v0Signature_isNeverAccepted() {
        let t = now.secondsSinceEpoch
        #expect(failure("t=\(t),v0=\(signer.signature(timestamp: t, body: body))") == .noV1Signature)
    }

    /// Checks both directions against the `stripe` package from PyPI: headers Stripe's
    /// library makes are accepted, headers Tollgate makes are accepted by Stripe's
    /// library, and tampering is refused on both sides.
    @Test(Peer.pythonVenv.trait)
    func signatures_agreeWithStripesReferenceLibrary() async throws {
        let payloads =
            try ["subscription-created-pro", "invoice-payment-failed-2024", "subscription-created-plan-2017"].map {
                String(
                    decoding: try Data(contentsOf: packageRoot.appendingPathComponent("events/stripe/payloads/\($0).json")), as: UTF8.self)
            } + [#"{"unicode":"Grüße, 東京 ✓"}"#]
        let t = now.secondsSinceEpoch
        let request: JSONValue = .object([
            "secret": .string(secret), "timestamp": .integer(t), "payloads": .array(payloads.map(JSONValue.string)),
            "tollgate_headers": .array(payloads.map { .string(signer.header(timestamp: t, body: Data($0.utf8))) }),
        ])
        let answer = try await PythonPeer.run(script: "stripe_signatures.py", input: request)
        let headerValues = answer["stripe_headers"]?.arrayValue ?? []
        let stripeHeaders = headerValues.compactMap { $0.stringValue }
        #expect(stripeHeaders.count == payloads.count)
        for (payload, header) in zip(payloads, stripeHeaders) {
            #expect(failure(header, body: Data(payload.utf8)) == nil, "Stripe's header for \(payload.prefix(40)) is accepted")
            #expect(failure(header, body: Data((payload + " ").utf8)) == .noMatchingSignature)
        }
        #expect(answer["tollgate_accepted"] == .array(payloads.map { _ in .bool(true) }))
        #expect(answer["tampered_accepted"] == .array(payloads.map { _ in .bool(false) }))
    }
}
