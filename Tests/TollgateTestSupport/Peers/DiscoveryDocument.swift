import Foundation
import Synchronization
import Testing
import TollgateHTTP
import TollgateModel

/// A Google API's machine-readable description (the discovery documents that
/// `google-api-python-client` ships), used to check that a request a driver built is one
/// the real API accepts: method, path template and its patterns, query parameters and
/// their types, and every field of the body against the request schema.
package struct DiscoveryDocument {
    package let name: String
    package let document: JSONValue
    package let schemas: [String: JSONValue]
    /// `https://firestore.googleapis.com/` + the service path.
    package let base: String

    /// The documents folder in the project's venv; nil when the peer is not installed.
    package static var folder: URL? {
        let lib = packageRoot.appendingPathComponent(".venv/lib")
        let pythons = (try? FileManager.default.contentsOfDirectory(atPath: lib.path)) ?? []
        return pythons.sorted().map { lib.appendingPathComponent("\($0)/site-packages/googleapiclient/discovery_cache/documents") }
            .first { FileManager.default.fileExists(atPath: $0.path) }
    }

    /// - Throws: ``PeerMissing`` when the documents are not installed (a test that loads
    ///   one carries `Peer.discoveryDocuments.trait`, so it is skipped instead).
    package static func load(_ name: String) throws -> DiscoveryDocument {
        guard let folder else { throw Peer.discoveryDocuments.missing }
        let document = try JSONValue.parse(try Data(contentsOf: folder.appendingPathComponent("\(name).json")))
        return DiscoveryDocument(
            name: name, document: document, schemas: document["schemas"]?.objectValue ?? [:],
            base: (document["rootUrl"]?.stringValue ?? "") + (document["servicePath"]?.stringValue ?? ""))
    }

    /// Every method by its id (`firestore.projects.databases.documents.get`).
    package var methods: [String: JSONValue] {
        var found: [String: JSONValue] = [:]
        func walk(_ resource: JSONValue) {
            for (_, method) in resource["methods"]?.objectValue ?? [:] {
                if let id = method["id"]?.stringValue { found[id] = method }
            }
            for (_, child) in resource["resources"]?.objectValue ?? [:] { walk(child) }
        }
        walk(document)
        return found
    }

    /// Bindings the proto's `additional_bindings` add and the discovery format drops: a
    /// query over a top-level collection has the documents root as its parent.
    package static let extraPatterns: [String: [String: String]] = [
        "firestore.projects.databases.documents.runQuery": ["parent": "^projects/[^/]+/databases/[^/]+/documents$"]
    ]

    /// The problems with `request` as a call of `methodID`; empty when the API accepts it.
    /// `upload` names a media-upload protocol (`simple`) whose path replaces the method's.
    package func problems(_ request: HTTPRequest, as methodID: String, upload: String? = nil) -> [String] {
        guard let method = methods[methodID] else { return ["\(name) has no method \(methodID)"] }
        var problems: [String] = []
        if method["httpMethod"]?.stringValue != request.method {
            problems.append("HTTP method \(request.method), the API wants \(method["httpMethod"]?.stringValue ?? "?")")
        }
        guard let components = URLComponents(string: request.url), let host = components.host else { return ["unparseable URL"] }
        let root = document["rootUrl"]?.stringValue ?? ""
        guard root.contains(host) else { return ["host \(host) is not \(root)"] }
        var template = (document["servicePath"]?.stringValue ?? "") + (method["path"]?.stringValue ?? "")
        if let upload, let path = method["mediaUpload"]?["protocols"]?[upload]?["path"]?.stringValue { template = String(path.dropFirst()) }
        let parameters = method["parameters"]?.objectValue ?? [:]
        let path = String(components.percentEncodedPath.dropFirst())
        guard let values = Self.match(path: path, template: template) else {
            return problems + ["path /\(path) does not match \(template)"]
        }
        for (parameter, value) in values {
            let extra = Self.extraPatterns[methodID]?[parameter]
            if let pattern = parameters[parameter]?["pattern"]?.stringValue,
                value.range(of: pattern, options: .regularExpression) == nil,
                extra.map({ value.range(of: $0, options: .regularExpression) == nil }) ?? true
            {
                problems.append("path parameter \(parameter)=\(value) does not match \(pattern)")
            }
        }
        let standard = document["parameters"]?.objectValue ?? [:]
        for item in components.queryItems ?? [] {
            guard let spec = parameters[item.name].flatMap({ $0["location"]?.stringValue == "query" ? $0 : nil }) ?? standard[item.name]
            else {
                problems.append("query parameter \(item.name) is not in the API")
                continue
            }
            problems += check(.string(item.value ?? ""), against: spec, at: "?\(item.name)", fromQuery: true)
        }
        for (parameter, spec) in parameters where spec["required"]?.boolValue == true && spec["location"]?.stringValue == "query" {
            if !(components.queryItems ?? []).contains(where: { $0.name == parameter }) {
                problems.append("required query parameter \(parameter) is missing")
            }
        }
        if let reference = method["request"]?["$ref"]?.stringValue, upload == nil {
            guard let body = try? JSONValue.parse(Data(request.body)) else { return problems + ["the body is not JSON"] }
            problems += check(body, against: .object(["$ref": .string(reference)]), at: "body")
        } else if upload == nil, !request.body.isEmpty {
            problems.append("a body, where the API takes none")
        }
        return problems
    }

    /// The problems with `value` as an instance of a response schema.
    package func problems(response value: JSONValue, of methodID: String) -> [String] {
        guard let reference = methods[methodID]?["response"]?["$ref"]?.stringValue else { return ["\(methodID) has no response schema"] }
        return check(value, against: .object(["$ref": .string(reference)]), at: "response")
    }

    /// Path parameters by name, when `path` fits `template` (`{+name}` spans slashes).
    package static func match(path: String, template: String) -> [String: String]? {
        var pattern = "^"
        var names: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            pattern += NSRegularExpression.escapedPattern(for: String(rest[..<open]))
            var name = String(rest[rest.index(after: open)..<close])
            if name.hasPrefix("+") {
                name.removeFirst()
                pattern += "(.+)"
            } else {
                pattern += "([^/]+)"
            }
            names.append(name)
            rest = rest[rest.index(after: close)...]
        }
        pattern += NSRegularExpression.escapedPattern(for: String(rest)) + "$"
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let found = regex.firstMatch(in: path, range: NSRange(path.startIndex..., in: path))
        else { return nil }
        var values: [String: String] = [:]
        for (index, name) in names.enumerated() {
            let range = Range(found.range(at: index + 1), in: path)!
            values[name] = String(path[range]).removingPercentEncoding ?? String(path[range])
        }
        return values
    }

    /// JSON Schema, as the discovery format has it: `$ref`, `type` with `format`,
    /// `properties`, `additionalProperties`, `items`, `enum`.
    package func check(_ value: JSONValue, against spec: JSONValue, at location: String, fromQuery: Bool = false) -> [String] {
        if let reference = spec["$ref"]?.stringValue {
            guard let schema = schemas[reference] else { return ["\(location): unknown schema \(reference)"] }
            return check(value, against: schema, at: location)
        }
        let type = spec["type"]?.stringValue ?? "any"
        let format = spec["format"]?.stringValue
        if spec["repeated"]?.boolValue == true, !fromQuery, case .array(let items) = value {
            return items.flatMap { check($0, against: spec.removing("repeated"), at: location) }
        }
        switch (type, value) {
        case ("any", _):
            return []
        case ("object", .object(let fields)):
            var problems: [String] = []
            let properties = spec["properties"]?.objectValue ?? [:]
            for (key, field) in fields {
                if let property = properties[key] {
                    problems += check(field, against: property, at: "\(location).\(key)")
                } else if let additional = spec["additionalProperties"] {
                    problems += check(field, against: additional, at: "\(location).\(key)")
                } else {
                    problems.append("\(location).\(key) is not a field of \(spec["id"]?.stringValue ?? "the object")")
                }
            }
            return problems
        case ("array", .array(let items)):
            guard let itemSpec = spec["items"] else { return [] }
            return items.enumerated().flatMap { check($1, against: itemSpec, at: "\(location)[\($0)]") }
        case ("boolean", .bool), ("boolean", .string("true")), ("boolean", .string("false")):
            return []
        case ("integer", .integer):
            return []
        case ("integer", .string(let text)) where fromQuery && Int64(text) != nil:
            return []
        case ("number", .integer), ("number", .double):
            return []
        case ("number", .string(let text)) where ["NaN", "Infinity", "-Infinity"].contains(text) || (fromQuery && Double(text) != nil):
            return []
        case ("string", .string(let text)):
            if let allowed = spec["enum"]?.arrayValue?.compactMap(\.stringValue), !allowed.contains(text) {
                return ["\(location): \(text) is not one of \(allowed)"]
            }
            switch format {
            case "int64", "uint64": return Int64(text) != nil || UInt64(text) != nil ? [] : ["\(location): \(text) is not an \(format!)"]
            case "byte": return Data(base64Encoded: text) != nil ? [] : ["\(location): not base64"]
            case "google-datetime": return Timestamp(rfc3339: text) != nil ? [] : ["\(location): \(text) is not RFC 3339"]
            default: return []
            }
        case ("string", .null) where spec["enum"]?.arrayValue == [.string("NULL_VALUE")]:
            // google.protobuf.NullValue is written as JSON null.
            return []
        default:
            return ["\(location): \(value.rendered()) is not a \(type)\(format.map { " (\($0))" } ?? "")"]
        }
    }
}

extension JSONValue {
    fileprivate func removing(_ key: String) -> JSONValue {
        guard case .object(var fields) = self else { return self }
        fields[key] = nil
        return .object(fields)
    }
}

/// A transport that answers from a closure and keeps every request: how the driver tests
/// see exactly what a driver sends, without a network.
package final class RecordingTransport: HTTPTransport {
    private let recorded = Mutex<[HTTPRequest]>([])
    private let answer: @Sendable (HTTPRequest, Int) throws -> HTTPResponse

    /// `answer` gets each request and its index (0 for the first).
    package init(_ answer: @escaping @Sendable (HTTPRequest, Int) throws -> HTTPResponse) { self.answer = answer }

    package var requests: [HTTPRequest] { recorded.withLock { $0 } }

    package func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let index = recorded.withLock { requests in
            requests.append(request)
            return requests.count - 1
        }
        return try answer(request, index)
    }
}

extension HTTPResponse {
    package static func json(_ value: JSONValue, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")], body: Array(value.rendered().utf8))
    }

    /// Google's error body for a canonical status.
    package static func googleError(_ status: Int, _ code: String, _ message: String) -> HTTPResponse {
        .json(
            .object(["error": .object(["code": .integer(Int64(status)), "status": .string(code), "message": .string(message)])]),
            status: status)
    }
}

extension HTTPRequest {
    package var json: JSONValue? { try? JSONValue.parse(Data(body)) }
}
