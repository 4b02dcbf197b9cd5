import Foundation
import Logging
import Synchronization
import TollgateModel

/// Writes one JSON object a line in Cloud Logging's structured format (`severity`,
/// `message`, `logging.googleapis.com/trace`, `logging.googleapis.com/labels`), or
/// readable text when the output is a terminal.
/// <https://cloud.google.com/logging/docs/structured-logging#special-payload-fields>
public struct CloudLoggingHandler: LogHandler {
    public enum Format: Sendable { case json, text }

    /// Metadata keys lifted into Cloud Logging's special fields.
    public static let traceKey = "trace"
    public static let labelKeys: Set<String> = ["function", "trigger"]

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let format: Format
    let project: String?
    let sink: LogSink

    public init(label: String, format: Format, project: String?, sink: LogSink = .standardOutput) {
        self.format = format
        self.project = project
        self.sink = sink
    }

    /// Bootstraps swift-log for a function process: JSON unless stdout is a terminal.
    public static func bootstrap(level: Logger.Level, project: String?) {
        let format: Format = isatty(STDOUT_FILENO) == 1 ? .text : .json
        LoggingSystem.bootstrap { label in
            var handler = CloudLoggingHandler(label: label, format: format, project: project)
            handler.logLevel = level
            return handler
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        // Whatever reached the line (a path, a header, an error), no key or secret leaves it.
        sink.write(SecretRedaction.redact(render(level: event.level, message: "\(event.message)", metadata: all)) + "\n")
    }

    func render(level: Logger.Level, message: String, metadata: Logger.Metadata) -> String {
        switch format {
        case .text:
            let fields = metadata.keys.sorted().map { "\($0)=\(metadata[$0]!)" }.joined(separator: " ")
            return "\(level.rawValue.uppercased()) \(message)\(fields.isEmpty ? "" : " " + fields)"
        case .json:
            var object: [String: JSONValue] = ["severity": .string(Self.severity(level)), "message": .string(message)]
            var labels: [String: JSONValue] = [:]
            for (key, value) in metadata {
                if key == Self.traceKey {
                    let trace = "\(value)"
                    object["logging.googleapis.com/trace"] = .string(project.map { "projects/\($0)/traces/\(trace)" } ?? trace)
                } else if Self.labelKeys.contains(key) {
                    labels[key] = .string("\(value)")
                } else {
                    object[key] = Self.json(value)
                }
            }
            if !labels.isEmpty { object["logging.googleapis.com/labels"] = .object(labels) }
            return JSONValue.object(object).rendered()
        }
    }

    static func severity(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    static func json(_ value: Logger.MetadataValue) -> JSONValue {
        switch value {
        case .string(let s): .string(s)
        // Whole numbers stay numbers (Error Reporting's lineNumber is an integer).
        case .stringConvertible(let c as Int): .integer(Int64(c))
        case .stringConvertible(let c): .string(c.description)
        case .array(let values): .array(values.map(json))
        case .dictionary(let fields): .object(fields.mapValues(json))
        }
    }
}

/// Where log lines go: standard output, or a buffer in tests.
public final class LogSink: Sendable {
    private let lines = Mutex<[String]?>(nil)

    public static let standardOutput = LogSink(capturing: false)

    public init(capturing: Bool) {
        if capturing { lines.withLock { $0 = [] } }
    }

    func write(_ line: String) {
        let captured = lines.withLock { lines -> Bool in
            guard lines != nil else { return false }
            lines!.append(line)
            return true
        }
        if !captured { FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    /// The lines written so far (capturing sinks only).
    public var captured: [String] { lines.withLock { $0 ?? [] } }
}

/// The trace id of a request, from W3C `traceparent` or `X-Cloud-Trace-Context`.
public func traceID(traceparent: String?, cloudTraceContext: String?) -> String? {
    if let traceparent {
        let parts = traceparent.split(separator: "-")
        if parts.count == 4, parts[1].count == 32, parts[1].allSatisfy(\.isHexDigit) { return String(parts[1]) }
    }
    if let context = cloudTraceContext, let id = context.split(separator: "/").first, id.count == 32, id.allSatisfy(\.isHexDigit) {
        return String(id)
    }
    return nil
}
