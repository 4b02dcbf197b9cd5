import Foundation
import TollgateModel

/// Ready-to-replay fixtures for every trigger and the Stripe events Tollgate handles,
/// shaped as the real senders shape them (the Stripe ones from the recorded payloads in
/// `events/stripe/payloads`), the way `stripe trigger` and `sam local generate-event`
/// help their users. `tollgate new-event` writes them.
public enum EventTemplates {
    public struct Kind: Sendable {
        public let name: String
        public let summary: String
        /// Fields the caller may set, with their defaults.
        public let fields: KeyValuePairs<String, String>
        let build: @Sendable ([String: String], URL) throws -> JSONValue
    }

    public static let kinds: [Kind] = [
        subscription("subscription.created", "customer.subscription.created", status: "active"),
        subscription("subscription.updated", "customer.subscription.updated", status: "active"),
        subscription("subscription.deleted", "customer.subscription.deleted", status: "canceled"),
        invoice("invoice.paid", "invoice.payment_succeeded", status: "paid"),
        invoice("invoice.failed", "invoice.payment_failed", status: "open"),
        Kind(
            name: "usage", summary: "a usage event pushed by Pub/Sub to usage-recorder",
            fields: [
                "requestId": "req_local_1", "accountId": "acct_local_1", "units": "1", "time": "2026-01-01T10:00:00Z",
                "endpoint": "/v1/graphs",
            ]
        ) { values, _ in
            guard let units = Int64(values["units"]!), units >= 0 else {
                throw TollgateError(.invalidArgument, "units is a whole number ≥ 0")
            }
            guard Timestamp(rfc3339: values["time"]!) != nil else { throw TollgateError(.invalidArgument, "time is RFC 3339") }
            let data: JSONValue = .object([
                "requestId": .string(values["requestId"]!), "accountId": .string(values["accountId"]!), "units": .integer(units),
                "time": .string(values["time"]!), "endpoint": .string(values["endpoint"]!),
            ])
            return fixture(
                "usage-recorder", "A usage event for \(values["accountId"]!)", send: .object(["pubsub": .object(["data": data])]))
        },
        Kind(
            name: "scheduler", summary: "a Cloud Scheduler tick for quota-reset, usage-export or cleanup",
            fields: ["function": "quota-reset", "day": ""]
        ) { values, _ in
            let function = values["function"]!
            guard ["quota-reset", "usage-export", "cleanup"].contains(function) else {
                throw TollgateError(.invalidArgument, "function is quota-reset, usage-export or cleanup")
            }
            var spec: [String: JSONValue] = [:]
            if let day = values["day"], !day.isEmpty {
                guard function == "usage-export", UTCDay(day) != nil else {
                    throw TollgateError(.invalidArgument, "day (YYYY-MM-DD) is for usage-export only")
                }
                spec["body"] = .object(["day": .string(day)])
                // The emulator's clock starts once the day is over and settled, as a back-fill would run.
                let start = UTCDay(day)!.end.adding(seconds: 600)
                return fixture(
                    function, "A back-fill run of usage-export for \(day)", send: .object(["scheduler": .object(spec)]), start: start)
            }
            return fixture(function, "A scheduled run of \(function)", send: .object(["scheduler": .object(spec)]))
        },
        Kind(
            name: "task", summary: "a Cloud Tasks report task for usage-report",
            fields: ["name": "report-local-1", "day": "2026-01-01", "accountId": "acct_local_1", "units": "1"]
        ) { values, _ in
            guard UTCDay(values["day"]!) != nil else { throw TollgateError(.invalidArgument, "day is YYYY-MM-DD") }
            guard let units = Int64(values["units"]!), units >= 0 else {
                throw TollgateError(.invalidArgument, "units is a whole number ≥ 0")
            }
            let body: JSONValue = .object([
                "day": .string(values["day"]!), "accountId": .string(values["accountId"]!), "units": .integer(units),
            ])
            return fixture(
                "usage-report", "A report task for \(values["accountId"]!) on \(values["day"]!)",
                send: .object(["task": .object(["name": .string(values["name"]!), "body": body])]))
        },
    ]

    /// The fixture for `kind` with `values` over its defaults.
    /// - Parameter payloads: the folder of recorded Stripe payloads the Stripe kinds start from.
    /// - Throws: `INVALID_ARGUMENT` for an unknown kind or field, or a bad value.
    public static func fixture(kind name: String, values: [String: String], payloads: URL) throws -> JSONValue {
        guard let kind = kinds.first(where: { $0.name == name }) else {
            throw TollgateError(.invalidArgument, "no event kind \(name); kinds: \(kinds.map(\.name).joined(separator: ", "))")
        }
        let known = Set(kind.fields.map(\.key))
        if let unknown = values.keys.sorted().first(where: { !known.contains($0) }) {
            throw TollgateError(
                .invalidArgument, "\(name) has no field \(unknown); fields: \(kind.fields.map(\.key).joined(separator: ", "))")
        }
        var all: [String: String] = [:]
        for (key, value) in kind.fields { all[key] = values[key] ?? value }
        return try kind.build(all, payloads)
    }

    static func fixture(_ function: String, _ description: String, send: JSONValue, start: Timestamp? = nil) -> JSONValue {
        var fixture: [String: JSONValue] = [
            "description": .string(description), "function": .string(function),
            "steps": .array([.object(["send": send, "expect": .object(["status": .integer(200)])])]),
        ]
        if let start { fixture["start"] = .string(start.rfc3339) }
        return .object(fixture)
    }

    static func payload(_ file: String, in folder: URL) throws -> JSONValue {
        let url = folder.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw TollgateError(.notFound, "no recorded payload \(url.path): run from the repository, or pass --payloads")
        }
        return try JSONValue.parse(data)
    }

    static func subscription(_ name: String, _ type: String, status: String) -> Kind {
        Kind(
            name: name, summary: "Stripe \(type), signed as Stripe signs it",
            fields: [
                "id": "evt_local_\(name.replacingOccurrences(of: ".", with: "_"))", "customer": "cus_local_1",
                "subscription": "sub_local_1",
                "price": "price_pro_monthly", "status": status, "account": "", "created": "1767225600",
            ]
        ) { values, folder in
            guard let created = Int64(values["created"]!) else { throw TollgateError(.invalidArgument, "created is Unix seconds") }
            var event = try payload("subscription-created-pro.json", in: folder)
            event = event.setting(["id"], .string(values["id"]!)).setting(["type"], .string(type)).setting(["created"], .integer(created))
            var object = event["data"]!["object"]!
            object = object.setting(["id"], .string(values["subscription"]!)).setting(["customer"], .string(values["customer"]!))
                .setting(["status"], .string(values["status"]!))
            if let account = values["account"], !account.isEmpty {
                object = object.setting(["metadata"], .object(["tollgate_account_id": .string(account)]))
            }
            if var items = object["items"]?["data"]?.arrayValue, !items.isEmpty {
                items[0] = items[0].setting(["price", "id"], .string(values["price"]!)).setting(
                    ["subscription"], .string(values["subscription"]!))
                object = object.setting(["items", "data"], .array(items))
            }
            event = event.setting(["data", "object"], object)
            return fixture(
                "stripe-webhook", "Stripe sends \(type) for \(values["customer"]!)", send: .object(["stripe": .object(["event": event])]))
        }
    }

    static func invoice(_ name: String, _ type: String, status: String) -> Kind {
        Kind(
            name: name, summary: "Stripe \(type), signed as Stripe signs it",
            fields: [
                "id": "evt_local_\(name.replacingOccurrences(of: ".", with: "_"))", "invoice": "in_local_1", "customer": "cus_local_1",
                "subscription": "sub_local_1", "created": "1767225600",
            ]
        ) { values, folder in
            guard let created = Int64(values["created"]!) else { throw TollgateError(.invalidArgument, "created is Unix seconds") }
            var event = try payload("invoice-payment-succeeded.json", in: folder)
            event = event.setting(["id"], .string(values["id"]!)).setting(["type"], .string(type)).setting(["created"], .integer(created))
            let object = event["data"]!["object"]!.setting(["id"], .string(values["invoice"]!))
                .setting(["customer"], .string(values["customer"]!)).setting(["status"], .string(status))
                .setting(["parent", "subscription_details", "subscription"], .string(values["subscription"]!))
                .setting(["attempted"], .bool(true)).setting(["attempt_count"], .integer(1))
            event = event.setting(["data", "object"], object)
            return fixture(
                "stripe-webhook", "Stripe sends \(type) for \(values["customer"]!)", send: .object(["stripe": .object(["event": event])]))
        }
    }
}

extension JSONValue {
    /// A copy with the value at `path` (object keys) replaced or added.
    func setting(_ path: ArraySlice<String>, _ value: JSONValue) -> JSONValue {
        guard let key = path.first else { return value }
        var object = objectValue ?? [:]
        object[key] = (object[key] ?? .object([:])).setting(path.dropFirst(), value)
        return .object(object)
    }

    func setting(_ path: [String], _ value: JSONValue) -> JSONValue { setting(path[...], value) }
}
