import Foundation
import TollgateModel

/// A fixture: real-shaped payloads as each sender sends them, the trigger, optional
/// starting state, and what must be true afterwards. A scenario is a fixture with
/// several steps on the virtual clock.
///
/// ```json
/// {"description": "…", "function": "stripe-webhook", "start": "2026-01-01T00:00:00Z",
///  "given": {"documents": {"accounts/a1": {…}}},
///  "steps": [{"advance": 60, "send": {"stripe": {"file": "payloads/x.json"}}, "expect": {"status": 200}}],
///  "expect": {"documents": {…}, "absent": […], "counts": {…}, "published": […], "deadLetters": 0}}
/// ```
public struct Fixture: Sendable {
    public var name: String
    public var url: URL
    public var description: String
    public var function: String
    public var start: Timestamp
    public var given: [DocumentPath: [String: FieldValue]]
    public var webhookSecrets: [String]
    /// API keys to create before the first step; fixtures name them by `ref`, never by value.
    public var apiKeys: [APIKeySeed]
    public var quotaPeriod: QuotaPeriod
    public var steps: [Step]
    public var expect: JSONValue

    public struct Step: Sendable {
        public var index: Int
        /// Seconds the virtual clock moves before this step; a step that advances starts
        /// a new group, and `--shuffle` reorders only within a group.
        public var advance: Int64
        /// The function this step is sent to (the fixture's by default).
        public var function: String?
        public var send: JSONValue
        public var expectedStatus: Int?
        /// Fields the response's JSON body must have.
        public var expectedBody: JSONValue?

        public init(
            index: Int, advance: Int64, function: String? = nil, send: JSONValue, expectedStatus: Int?, expectedBody: JSONValue? = nil
        ) {
            self.index = index
            self.advance = advance
            self.function = function
            self.send = send
            self.expectedStatus = expectedStatus
            self.expectedBody = expectedBody
        }
    }

    /// A key the harness creates with the real key code, so no key is written in a fixture.
    public struct APIKeySeed: Sendable {
        public var ref: String
        public var account: String
        public var mode: String
        public var expires: Timestamp?
        public var revoked: Timestamp?
    }

    public static let defaultStart = Timestamp(secondsSinceEpoch: 1_767_225_600)  // 2026-01-01T00:00:00Z

    /// Loads a fixture file.
    /// - Throws: `INVALID_ARGUMENT` naming the file and what is wrong in it.
    public init(url: URL, name: String) throws {
        let contents: Data
        do { contents = try Data(contentsOf: url) } catch { throw TollgateError(.invalidArgument, "\(name): \(error)") }
        try self.init(json: contents, url: url, name: name)
    }

    /// Parses a fixture's text; `url` locates the files it names.
    public init(json contents: Data, url: URL, name: String) throws {
        func fail(_ message: String) -> TollgateError { TollgateError(.invalidArgument, "\(name): \(message)") }
        let root: JSONValue
        do { root = try JSONValue.parse(contents) } catch { throw fail("\(error)") }
        guard let function = root["function"]?.stringValue else { throw fail("no \"function\"") }
        guard let steps = root["steps"]?.arrayValue, !steps.isEmpty else { throw fail("no \"steps\"") }
        self.name = name
        self.url = url
        self.function = function
        description = root["description"]?.stringValue ?? ""
        if let start = root["start"]?.stringValue {
            guard let parsed = Timestamp(rfc3339: start) else { throw fail("\"start\" is not RFC 3339") }
            self.start = parsed
        } else {
            self.start = Self.defaultStart
        }
        var given: [DocumentPath: [String: FieldValue]] = [:]
        for (path, document) in root["given"]?["documents"]?.objectValue ?? [:] {
            guard case .map(let fields) = Self.fieldValue(document) else { throw fail("given document \(path) is not an object") }
            do { given[try DocumentPath(path)] = fields } catch { throw fail("\(error)") }
        }
        self.given = given
        webhookSecrets = root["webhookSecrets"]?.arrayValue?.compactMap(\.stringValue) ?? ["current"]
        apiKeys = try (root["given"]?["apiKeys"]?.arrayValue ?? []).map { seed in
            guard let ref = seed["ref"]?.stringValue, let account = seed["account"]?.stringValue else {
                throw fail("given.apiKeys entries need \"ref\" and \"account\"")
            }
            func time(_ field: String) throws -> Timestamp? {
                guard let text = seed[field]?.stringValue else { return nil }
                guard let time = Timestamp(rfc3339: text) else { throw fail("apiKeys \(ref).\(field) is not RFC 3339") }
                return time
            }
            return APIKeySeed(
                ref: ref, account: account, mode: seed["mode"]?.stringValue ?? "live", expires: try time("expires"),
                revoked: try time("revoked"))
        }
        let period = root["quotaPeriod"]?.stringValue ?? "month"
        guard let quotaPeriod = QuotaPeriod(rawValue: period) else { throw fail("quotaPeriod is month, day or billing-period") }
        self.quotaPeriod = quotaPeriod
        self.steps = try steps.enumerated().map { index, step in
            guard let send = step["send"], send.objectValue?.count == 1 else { throw fail("step \(index + 1) needs one \"send\"") }
            return Step(
                index: index + 1, advance: step["advance"]?.integerValue ?? 0, function: step["function"]?.stringValue, send: send,
                expectedStatus: step["expect"]?["status"]?.integerValue.map(Int.init), expectedBody: step["expect"]?["body"])
        }
        expect = root["expect"] ?? .object([:])
    }

    /// Plain JSON to a document value; strings in RFC 3339 form become timestamps.
    static func fieldValue(_ json: JSONValue) -> FieldValue {
        switch json {
        case .null: .null
        case .bool(let b): .bool(b)
        case .integer(let i): .integer(i)
        case .double(let d): .double(d)
        case .string(let s): Timestamp(rfc3339: s).map(FieldValue.timestamp) ?? .string(s)
        case .array(let values): .array(values.map(fieldValue))
        case .object(let fields): .map(fields.mapValues(fieldValue))
        }
    }

    /// Every fixture under the given files or folders, sorted by name. Files under a
    /// `payloads` folder are bodies that fixtures refer to, not fixtures.
    public static func discover(_ paths: [String]) throws -> [(url: URL, name: String)] {
        var found: [(URL, String)] = []
        for path in paths {
            let url = URL(fileURLWithPath: path)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw TollgateError(.notFound, "no such fixture or folder: \(path)")
            }
            if !isDirectory.boolValue {
                found.append((url, url.lastPathComponent))
                continue
            }
            let base = url.standardizedFileURL.path
            let enumerator = FileManager.default.enumerator(at: url, includingPropertiesForKeys: nil)
            while let file = enumerator?.nextObject() as? URL {
                let relative = String(file.standardizedFileURL.path.dropFirst(base.count + 1))
                if file.pathExtension == "json", !relative.split(separator: "/").contains("payloads") {
                    found.append((file, relative))
                }
            }
        }
        return found.sorted { $0.1 < $1.1 }
    }
}
