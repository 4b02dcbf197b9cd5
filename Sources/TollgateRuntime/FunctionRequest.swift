import Foundation
import TollgateModel

/// A request as the runtime sees it, free of the HTTP server's types so that the
/// emulator and the tests can deliver through the same pipeline without sockets.
public struct FunctionRequest: Sendable {
    public var method: String
    /// The path, without the query.
    public var path: String
    /// The query, without its `?` (empty when there is none), as the client sent it.
    public var query: String
    /// Header names are matched case-insensitively.
    public var headers: [(name: String, value: String)]
    public var body: Data

    /// - Parameter path: the request target: the path, and the query after a `?` if any.
    public init(method: String, path: String, headers: [(name: String, value: String)], body: Data) {
        self.method = method
        if let mark = path.firstIndex(of: "?") {
            self.path = String(path[..<mark])
            query = String(path[path.index(after: mark)...])
        } else {
            self.path = path
            query = ""
        }
        self.headers = headers
        self.body = body
    }

    /// The path and the query, as the request line had them.
    public var target: String { query.isEmpty ? path : path + "?" + query }

    public func header(_ name: String) -> String? {
        headers.first { Self.equalIgnoringASCIICase($0.name, name) }?.value
    }

    /// Every value of a header, in the order received.
    public func headerValues(_ name: String) -> [String] {
        headers.filter { Self.equalIgnoringASCIICase($0.name, name) }.map(\.value)
    }

    /// Header names are ASCII; Foundation's locale-aware comparison was a tenth of the
    /// validator's time per request.
    private static func lowercased(_ byte: UInt8) -> UInt8 { (0x41...0x5A).contains(byte) ? byte | 0x20 : byte }

    static func equalIgnoringASCIICase(_ a: String, _ b: String) -> Bool {
        var left = a.utf8.makeIterator()
        var right = b.utf8.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return true
            case (let x?, let y?): if lowercased(x) != lowercased(y) { return false }
            default: return false
            }
        }
    }
}

/// A response: status, headers and body.
public struct FunctionResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A JSON response.
    public static func json(_ status: Int, _ value: JSONValue, headers: [String: String] = [:]) -> FunctionResponse {
        var all = headers
        all["Content-Type"] = "application/json"
        return FunctionResponse(status: status, headers: all, body: Data(value.rendered().utf8))
    }

    /// A refusal with a reason, logged once by the runtime and answered as
    /// `{"error": {"code", "message"}}`. Never dead-lettered.
    public static func rejected(_ status: Int, code: String, _ message: String) -> FunctionResponse {
        json(status, .object(["error": .object(["code": .string(code), "message": .string(message)])]))
    }

    /// 405 with the `Allow` header RFC 9110 (15.5.6) requires: the methods the target takes.
    public static func methodNotAllowed(allow methods: [String], _ message: String) -> FunctionResponse {
        var response = rejected(405, code: "METHOD_NOT_ALLOWED", message)
        response.headers["Allow"] = methods.joined(separator: ", ")
        return response
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}
