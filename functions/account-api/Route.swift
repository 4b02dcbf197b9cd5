import Foundation
import TollgateModel
import TollgateRuntime

/// A refusal in the one shape every answer of account-api has:
/// `{"error": {"code": "…", "message": "…"}}`, `code` machine-readable.
struct APIError: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    /// The methods the target takes, for a 405's `Allow`.
    var allow: [String] = []

    init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    static func methodNotAllowed(_ path: String, allow: [String]) -> APIError {
        var error = APIError(405, "METHOD_NOT_ALLOWED", "\(path.prefix(100)) takes \(allow.joined(separator: " or "))")
        error.allow = allow
        return error
    }

    var response: FunctionResponse {
        allow.isEmpty ? .rejected(status, code: code, message) : .methodNotAllowed(allow: allow, message)
    }
}

/// The routes, parsed from the method and the request target.
enum Route: Sendable, Equatable {
    case account
    case listKeys
    case createKey
    case revokeKey(prefix: String)
    case usage(UsageQuery)
    case export(day: UTCDay)
    case checkoutReference
    /// The public keys that sign usage receipts: public, answered without a session.
    case signingKeys

    /// The routes as the OpenAPI document names them, with their methods.
    static let table: [(path: String, methods: [String])] = [
        ("/v1/account", ["GET"]), ("/v1/keys", ["GET", "POST"]), ("/v1/keys/{prefix}", ["DELETE"]), ("/v1/usage", ["GET"]),
        ("/v1/exports/{day}", ["GET"]), ("/v1/checkout-references", ["POST"]), ("/v1/signing-keys", ["GET"]),
    ]

    /// - Throws: 404 for a path that is no route, 405 for a method the route does not take,
    ///   400 for a malformed query.
    init(method: String, path: String, query: String) throws {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        func require(_ allowed: String) throws {
            guard method == allowed else { throw APIError.methodNotAllowed(path, allow: [allowed]) }
        }
        switch segments {
        case ["", "v1", "account"]:
            try require("GET")
            self = .account
        case ["", "v1", "keys"]:
            guard method == "GET" || method == "POST" else { throw APIError.methodNotAllowed(path, allow: ["GET", "POST"]) }
            self = method == "GET" ? .listKeys : .createKey
        case let s where s.count == 4 && s[0] == "" && s[1] == "v1" && s[2] == "keys":
            try require("DELETE")
            guard Self.isPrefix(s[3]) else {
                throw APIError(400, "INVALID_PREFIX", "a key prefix is tg_live_ or tg_test_ and four letters or digits")
            }
            self = .revokeKey(prefix: s[3])
        case ["", "v1", "usage"]:
            try require("GET")
            self = .usage(try UsageQuery(query))
        case let s where s.count == 4 && s[0] == "" && s[1] == "v1" && s[2] == "exports":
            try require("GET")
            guard let day = UTCDay(s[3]) else { throw APIError(400, "INVALID_DATE", "the day is a date as YYYY-MM-DD") }
            self = .export(day: day)
        case ["", "v1", "checkout-references"]:
            try require("POST")
            self = .checkoutReference
        case ["", "v1", "signing-keys"]:
            try require("GET")
            self = .signingKeys
        default:
            throw APIError(404, "NOT_FOUND", "no route \(path.prefix(100))")
        }
    }

    static func isPrefix(_ text: String) -> Bool {
        let utf8 = Array(text.utf8)
        guard utf8.count == 12, text.hasPrefix("tg_live_") || text.hasPrefix("tg_test_") else { return false }
        return utf8[8...].allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }
}

/// `GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD`: whole UTC days, both ends included, at
/// most 92 of them; without `from` and `to`, the last 30 days up to today.
struct UsageQuery: Sendable, Equatable {
    static let maxDays = 92
    static let firstDay = UTCDay("0001-01-01")!
    var from: UTCDay?
    var to: UTCDay?

    init(from: UTCDay? = nil, to: UTCDay? = nil) {
        self.from = from
        self.to = to
    }

    init(_ query: String) throws {
        for item in query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard pair.count == 2, pair[0] == "from" || pair[0] == "to" else {
                throw APIError(400, "INVALID_QUERY", "usage takes from and to (YYYY-MM-DD) only")
            }
            guard let day = UTCDay(pair[1]) else { throw APIError(400, "INVALID_DATE", "\(pair[0]) must be a date as YYYY-MM-DD") }
            if pair[0] == "from" {
                guard from == nil else { throw APIError(400, "INVALID_QUERY", "from is given twice") }
                from = day
            } else {
                guard to == nil else { throw APIError(400, "INVALID_QUERY", "to is given twice") }
                to = day
            }
        }
    }

    /// The days asked for, checked against `today`.
    func days(today: UTCDay) throws -> ClosedRange<Int> {
        let last = to ?? today
        let first = from ?? UTCDay(daysSinceEpoch: last.daysSinceEpoch - 29)
        guard first <= last else { throw APIError(400, "INVALID_RANGE", "from is after to") }
        // Every day answered is written as YYYY-MM-DD: none before year 1.
        guard first >= Self.firstDay else { throw APIError(400, "INVALID_RANGE", "the range starts before 0001-01-01") }
        guard last.daysSinceEpoch - first.daysSinceEpoch < Self.maxDays else {
            throw APIError(400, "INVALID_RANGE", "at most \(Self.maxDays) days at once")
        }
        return first.daysSinceEpoch...last.daysSinceEpoch
    }
}

/// Which browser origins may call (`TOLLGATE_DASHBOARD_ORIGINS`): the dashboard's only.
struct CORSPolicy: Sendable {
    let origins: Set<String>

    func decorate(_ response: FunctionResponse, origin: String?) -> FunctionResponse {
        var response = response
        response.headers["Vary"] = "Origin"
        response.headers["Cache-Control"] = "no-store"
        if let origin, origins.contains(origin) { response.headers["Access-Control-Allow-Origin"] = origin }
        return response
    }

    /// A preflight: 204 with what the routes allow, for a configured origin; 403 otherwise.
    func preflight(origin: String?, requestedMethod: String?) -> FunctionResponse {
        guard let origin, origins.contains(origin) else {
            return decorate(.rejected(403, code: "ORIGIN_NOT_ALLOWED", "this origin may not call account-api"), origin: nil)
        }
        guard let requestedMethod, ["GET", "POST", "DELETE"].contains(requestedMethod) else {
            return decorate(.methodNotAllowed(allow: ["GET", "POST", "DELETE"], "account-api takes GET, POST and DELETE"), origin: origin)
        }
        var response = FunctionResponse(status: 204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
        return decorate(response, origin: origin)
    }
}
