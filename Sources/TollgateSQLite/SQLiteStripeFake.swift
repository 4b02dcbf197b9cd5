import Crypto
import Foundation
import GRDB
import TollgateModel

/// The Stripe fake's state: meter events, with Stripe's rules for them (required fields,
/// a whole-number value, a timestamp within the past 35 days or 5 minutes ahead, an
/// identifier unique for at least 24 hours) and Stripe's idempotency keys (the same key
/// with the same request replays the first answer for 24 hours; with another request it
/// is refused). As at Stripe, an answer is saved only once the endpoint has run: a request
/// that failed validation saves nothing, so a corrected retry under the same key succeeds.
public struct SQLiteStripeFake: Sendable {
    let database: SQLiteDatabase

    public init(_ database: SQLiteDatabase) { self.database = database }

    /// An answer: HTTP status and Stripe's JSON body.
    public struct Answer: Sendable {
        public var status: Int
        public var body: JSONValue
    }

    /// `POST /v1/billing/meter_events` with its form fields.
    public func createMeterEvent(_ form: [String: String], idempotencyKey: String?) async throws -> Answer {
        let request = form.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        let now = database.clock.now().secondsSinceEpoch
        return try await database.write { db in
            if let key = idempotencyKey {
                let dayAgo = (now - 86_400) * 1_000_000
                try db.execute(sql: "DELETE FROM stripe_idempotency WHERE created < ?", arguments: [dayAgo])
                if let row = try Row.fetchOne(db, sql: "SELECT * FROM stripe_idempotency WHERE key = ?", arguments: [key]) {
                    guard row["request"] as String == request else {
                        return Self.error(
                            400, type: "idempotency_error", code: nil,
                            "Keys for idempotent requests can only be used with the same parameters they were first used with.")
                    }
                    return Answer(status: row["status"], body: try JSONValue.parse(Data((row["body"] as String).utf8)))
                }
            }
            let answer = try Self.create(form, now: now, db)
            if let key = idempotencyKey, answer.status == 200 {
                try db.execute(
                    sql: "INSERT INTO stripe_idempotency (key, request, status, body, created) VALUES (?, ?, ?, ?, ?)",
                    arguments: [key, request, answer.status, answer.body.rendered(), now * 1_000_000])
            }
            return answer
        }
    }

    static func create(_ form: [String: String], now: Int64, _ db: Database) throws -> Answer {
        func missing(_ name: String) -> Answer {
            error(400, type: "invalid_request_error", code: "parameter_missing", "Missing required param: \(name).", param: name)
        }
        guard let eventName = form["event_name"], !eventName.isEmpty else { return missing("event_name") }
        guard let customer = form["payload[stripe_customer_id]"], !customer.isEmpty else { return missing("payload[stripe_customer_id]") }
        guard let value = form["payload[value]"] else { return missing("payload[value]") }
        guard !value.isEmpty, value.allSatisfy(\.isASCII), Int64(value) != nil else {
            return error(400, type: "invalid_request_error", code: "parameter_invalid_integer", "Invalid value: must be a whole number.")
        }
        let timestamp = form["timestamp"].flatMap { Int64($0) } ?? now
        guard timestamp >= now - 35 * 86_400, timestamp <= now + 300 else {
            return error(
                400, type: "invalid_request_error", code: "timestamp_outside_window",
                "Timestamp must be within the past 35 days and not more than 5 minutes in the future.", param: "timestamp")
        }
        let identifier = form["identifier"] ?? "fake_\(Hex.encode(SHA256.hash(data: Array("\(now)\(form)".utf8)).prefix(12)))"
        guard identifier.utf8.count <= 100, eventName.utf8.count <= 100 else {
            return error(
                400, type: "invalid_request_error", code: "string_too_long", "identifier and event_name are at most 100 characters.")
        }
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM stripe_meter_events WHERE identifier = ?", arguments: [identifier]) == true {
            return error(
                400, type: "invalid_request_error", code: "resource_already_exists",
                "A meter event with identifier \(identifier) already exists.", param: "identifier")
        }
        try db.execute(
            sql: "INSERT INTO stripe_meter_events (identifier, event_name, customer, value, timestamp, created) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [identifier, eventName, customer, value, timestamp, now])
        return Answer(
            status: 200,
            body: .object([
                "object": .string("billing.meter_event"), "created": .integer(now), "event_name": .string(eventName),
                "identifier": .string(identifier), "livemode": .bool(false),
                "payload": .object(["stripe_customer_id": .string(customer), "value": .string(value)]), "timestamp": .integer(timestamp),
            ]))
    }

    public static func error(_ status: Int, type: String, code: String?, _ message: String, param: String? = nil) -> Answer {
        var fields: [String: JSONValue] = ["type": .string(type), "message": .string(message)]
        if let code { fields["code"] = .string(code) }
        if let param { fields["param"] = .string(param) }
        return Answer(status: status, body: .object(["error": .object(fields)]))
    }

    /// Every meter event accepted, by identifier.
    public func meterEvents() async throws -> [(identifier: String, customer: String, eventName: String, value: Int64, timestamp: Int64)] {
        try await database.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM stripe_meter_events ORDER BY identifier").map {
                ($0["identifier"], $0["customer"], $0["event_name"], Int64($0["value"] as String) ?? 0, $0["timestamp"])
            }
        }
    }
}
