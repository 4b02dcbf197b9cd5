import Foundation
import Testing
import TollgateModel
import TollgateTestSupport

@testable import UsageRecorder

/// `docs/usage-event.schema.json` is the usage-events contract for an API service in any
/// language. The schema (read by the jsonschema package, draft 2020-12) and usage-recorder's
/// decoder must agree on every message the fixtures deliver and on a list of malformed
/// ones, so neither can drift from the other.
@Suite struct UsageEventSchemaTests {
    static let schema = packageRoot.appendingPathComponent("docs/usage-event.schema.json")

    /// The `data` of every Pub/Sub step delivered to usage-recorder in `events/`.
    static func fixtureMessages() throws -> [JSONValue] {
        let root = packageRoot.appendingPathComponent("events")
        var messages: [JSONValue] = []
        for case let url as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) ?? .init()
        where url.pathExtension == "json" && !url.path.contains("/payloads/") {
            let fixture = try JSONValue.parse(try Data(contentsOf: url))
            for step in fixture["steps"]?.arrayValue ?? [] {
                let function = step["function"]?.stringValue ?? fixture["function"]?.stringValue
                guard function == "usage-recorder", let data = step["send"]?["pubsub"]?["data"] else { continue }
                if case .object = data { messages.append(data) } else if case .array = data { messages.append(data) }
            }
        }
        return messages
    }

    static let event: [String: JSONValue] = [
        "requestId": .string("req_1"), "accountId": .string("acct_1"), "time": .string("2026-01-01T10:00:00Z"),
        "endpoint": .string("/v1/graphs"), "units": .integer(5),
    ]

    static func with(_ field: String, _ value: JSONValue?) -> JSONValue {
        var copy = event
        copy[field] = value
        return .object(copy)
    }

    static let malformed: [JSONValue] = [
        with("requestId", nil), with("accountId", nil), with("time", nil), with("endpoint", nil), with("units", nil),
        with("requestId", .string("")), with("accountId", .string("a/b")), with("accountId", .string("..")),
        with("accountId", .string("__x__")),
        with("requestId", .string(String(repeating: "r", count: 513))), with("units", .integer(-1)), with("units", .integer(1_000_000_001)),
        with("units", .double(1.5)), with("units", .string("5")), with("nodes", .integer(-2)), with("nodeDimensionUnits", .string("x")),
        with("time", .string("yesterday")),
        with("time", .string("2026-01-01 10:00:00")), with("keyId", .integer(7)), with("endpoint", .string("")), .array([]),
        .array(Array(repeating: .object(event), count: 151)), .object(["events": .array([])]), .object(["events": .string("x")]),
        .string("req_1"), .integer(5),
    ]

    @Test(Peer.pythonVenv.trait)
    func theSchemaAndTheDecoder_agreeOnEveryFixtureMessage_andEveryMalformedOne() async throws {
        let accepted = try Self.fixtureMessages()
        #expect(accepted.count >= 10, "the fixtures deliver usage messages")
        let instances =
            accepted + Self.malformed + [
                Self.with("nodes", .integer(40)), Self.with("keyId", .string("tg_live_AbCd")), .array([.object(Self.event)]),
            ]
        let schema = try JSONValue.parse(try Data(contentsOf: Self.schema))
        let answer = try await PythonPeer.run(script: "json_schema.py", input: .object(["schema": schema, "instances": .array(instances)]))
        let answered = answer["valid"]?.arrayValue ?? []
        let verdicts = answered.compactMap(\.boolValue)
        try #require(verdicts.count == instances.count)
        let now = try #require(Timestamp(rfc3339: "2026-06-01T00:00:00Z"))
        for (instance, schemaSays) in zip(instances, verdicts) {
            let decoderSays = (try? UsageEvents.decode(Data(instance.rendered().utf8), now: now)) != nil
            #expect(schemaSays == decoderSays, "schema \(schemaSays), decoder \(decoderSays): \(instance.rendered().prefix(200))")
        }
        #expect(verdicts.suffix(Self.malformed.count + 3).prefix(Self.malformed.count).allSatisfy { !$0 }, "every malformed one refused")
    }
}
