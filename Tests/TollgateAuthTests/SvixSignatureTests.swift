import Foundation
import Testing
import TollgateAuth
import TollgateModel
import TollgateTestSupport

/// Svix's scheme as Clerk's webhooks use it: <https://docs.svix.com/receiving/verifying-payloads/how-manual>.
@Suite struct SvixSignatureTests {
    let secret = "whsec_" + Data("tollgate-svix-test-secret-32-byte".utf8).base64EncodedString()
    let body = Data(#"{"data":{"id":"user_1","object":"user"},"object":"event","type":"user.created"}"#.utf8)
    let now = Timestamp(secondsSinceEpoch: 1_767_225_600)
    let id = "msg_2TgTestMessage0001"

    func failure(
        _ headers: [String: String], body: Data? = nil, secrets: [String]? = nil, at time: Timestamp? = nil
    ) -> SvixSignatureVerifier.Failure? {
        do {
            let verifier = try SvixSignatureVerifier(secrets: secrets ?? [secret])
            let lowered = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
            _ = try verifier.verify(header: { lowered[$0.lowercased()] }, body: body ?? self.body, now: time ?? now)
            return nil
        } catch let error as SvixSignatureVerifier.Failure {
            return error
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    func headers(id: String? = nil, timestamp: Int64? = nil, secret: String? = nil, body: Data? = nil) throws -> [String: String] {
        let signer = try SvixSigner(secret: secret ?? self.secret)
        let made = signer.headers(id: id ?? self.id, timestamp: timestamp ?? now.secondsSinceEpoch, body: body ?? self.body)
        return Dictionary(uniqueKeysWithValues: made.map { ($0.name, $0.value) })
    }

    @Test func validSignature_isAccepted_andNamesTheMessage() throws {
        let verifier = try SvixSignatureVerifier(secrets: [secret])
        let sent = try headers()
        let message = try verifier.verify(header: { sent[$0] }, body: body, now: now)
        #expect(message.id == id && message.timestamp == now.secondsSinceEpoch)
    }

    @Test func tamperedBody_id_orTimestamp_isRefused() throws {
        var sent = try headers()
        #expect(failure(sent, body: body + Data(" ".utf8)) == .noMatchingSignature)
        sent["svix-id"] = "msg_other"
        #expect(failure(sent) == .noMatchingSignature)
        sent = try headers()
        sent["svix-timestamp"] = String(now.secondsSinceEpoch + 1)
        #expect(failure(sent) == .noMatchingSignature)
    }

    @Test func tolerance_isFiveMinutesEitherWay() throws {
        let t = now.secondsSinceEpoch
        #expect(failure(try headers(timestamp: t - 300)) == nil)
        #expect(failure(try headers(timestamp: t + 300)) == nil)
        #expect(failure(try headers(timestamp: t - 301)) == .timestampOutOfTolerance)
        #expect(failure(try headers(timestamp: t + 301)) == .timestampOutOfTolerance)
    }

    @Test func anyMatchingV1_isAccepted_andTwoSecretsVerifyWhileRotating() throws {
        let old = "whsec_" + Data("the-previous-svix-secret-bytes!!".utf8).base64EncodedString()
        var sent = try headers()
        let stale = try headers(secret: old)["svix-signature"]!
        sent["svix-signature"] = "\(stale) v2,\(Data(count: 32).base64EncodedString()) \(sent["svix-signature"]!)"
        #expect(failure(sent) == nil)
        #expect(failure(try headers(secret: old)) == .noMatchingSignature)
        #expect(failure(try headers(secret: old), secrets: [secret, old]) == nil)
    }

    @Test func missingHeaders_areRefused() throws {
        for name in ["svix-id", "svix-timestamp", "svix-signature"] {
            var sent = try headers()
            sent[name] = nil
            #expect(failure(sent) == .missingHeaders, "without \(name)")
        }
        #expect(failure([:]) == .missingHeaders)
    }

    @Test(
        arguments: [
            ("v1=abc", SvixSignatureVerifier.Failure.noV1Signature), ("v2,AAAA", .noV1Signature), ("v1,not base64!", .noV1Signature),
            ("v1,AAAA", .noV1Signature), ("", .missingHeaders),
        ])
    func malformedSignatures_areRefusedWithAReason(signature: String, expected: SvixSignatureVerifier.Failure) throws {
        var sent = try headers()
        sent["svix-signature"] = signature
        #expect(failure(sent) == expected)
    }

    /// An attacker picks the timestamp: no value may trap before the signature is checked.
    @Test(arguments: ["9223372036854775807", "-9223372036854775808", "-1", "0", "1e9", "1767225600.5", " "])
    func hostileTimestamps_areRefused_neverATrap(timestamp: String) throws {
        var sent = try headers()
        sent["svix-timestamp"] = timestamp
        let refused = failure(sent)
        #expect(refused == .timestampOutOfTolerance || refused == .malformedTimestamp)
    }

    @Test func unbrandedWebhookHeaders_areRead_asSvixLibrariesDo() throws {
        let sent = try headers()
        let unbranded = Dictionary(uniqueKeysWithValues: sent.map { ("webhook-" + $0.key.dropFirst(5), $0.value) })
        #expect(failure(unbranded) == nil)
    }

    @Test(arguments: ["", "whsec_", "whsec_not base64", "sk_live_abc", "whsec_" + Data("short".utf8).base64EncodedString()])
    func malformedSecrets_areRefusedAtStartUp(secret: String) {
        #expect(throws: TollgateError.self) { try SvixSignatureVerifier(secrets: [secret]) }
    }

    /// Both directions against the `svix` package from PyPI: signatures Svix's library
    /// makes are the ones Tollgate makes (and accepts), Tollgate's headers are accepted by
    /// Svix's library, and tampering is refused by both.
    @Test(Peer.pythonVenv.trait)
    func signatures_agreeWithSvixsReferenceLibrary() async throws {
        let payloads =
            try ["user-created", "organization-deleted", "membership-updated-admin"].map {
                String(
                    decoding: try Data(contentsOf: packageRoot.appendingPathComponent("events/clerk/payloads/\($0).json")), as: UTF8.self)
            } + [#"{"unicode":"Grüße, 東京 ✓"}"#]
        // Svix's library checks the timestamp against the system clock.
        let t = Int64(Date().timeIntervalSince1970)
        let messages: [JSONValue] = try payloads.enumerated().map { index, payload in
            let sent = try headers(id: "msg_cross_\(index)", timestamp: t, body: Data(payload.utf8))
            return .object([
                "id": .string("msg_cross_\(index)"), "payload": .string(payload),
                "tollgate_headers": .object(sent.mapValues(JSONValue.string)),
            ])
        }
        let answer = try await PythonPeer.run(
            script: "svix_signatures.py",
            input: .object(["secret": .string(secret), "timestamp": .integer(t), "messages": .array(messages)]))
        let signatures = (answer["svix_signatures"]?.arrayValue ?? []).compactMap(\.stringValue)
        #expect(signatures.count == payloads.count)
        for (index, (payload, signature)) in zip(payloads, signatures).enumerated() {
            let ours = try SvixSigner(secret: secret).signature(id: "msg_cross_\(index)", timestamp: t, body: Data(payload.utf8))
            #expect(signature == ours, "the same signature for \(payload.prefix(30))")
            let sent = ["svix-id": "msg_cross_\(index)", "svix-timestamp": String(t), "svix-signature": signature]
            #expect(failure(sent, body: Data(payload.utf8), at: Timestamp(secondsSinceEpoch: t)) == nil)
        }
        #expect(answer["tollgate_accepted"] == .array(payloads.map { _ in .bool(true) }))
        #expect(answer["tampered_accepted"] == .array(payloads.map { _ in .bool(false) }))
    }
}
