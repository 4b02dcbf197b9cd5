import Logging
import TollgateModel

/// An error event as Cloud Error Reporting reads it from a structured log line: the
/// fields of `ReportedErrorEvent` (clouderrorreporting v1beta1) beside the line's
/// `message`, which carries the error. A line with this `@type` is an error event
/// whatever its text; Swift prints no stack Error Reporting could parse, so the event
/// names where the error was thrown (`context.reportLocation`).
/// <https://cloud.google.com/error-reporting/docs/formatting-error-messages>
public struct ReportedErrorEvent: Sendable, Hashable {
    public static let type = "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"

    /// The service and revision, as Cloud Run names them (`K_SERVICE`, `K_REVISION`).
    public struct ServiceContext: Sendable, Hashable {
        public var service: String
        public var version: String?

        public init(service: String, version: String?) {
            self.service = service
            self.version = version
        }
    }

    /// Where the error was thrown: a file of Tollgate's, a line, a function.
    public struct Location: Sendable, Hashable {
        public var filePath: String
        public var lineNumber: Int
        public var functionName: String

        public init(filePath: String, lineNumber: Int, functionName: String) {
            self.filePath = filePath
            self.lineNumber = lineNumber
            self.functionName = functionName
        }
    }

    public var serviceContext: ServiceContext
    public var location: Location
    /// The request the error answered, as Error Reporting shows it.
    public var method: String
    public var status: Int

    public init(serviceContext: ServiceContext, location: Location, method: String, status: Int) {
        self.serviceContext = serviceContext
        self.location = location
        self.method = method
        self.status = status
    }

    /// The fields a log line carries to be read as this event.
    public var metadata: Logger.Metadata {
        var service: Logger.Metadata = ["service": .string(serviceContext.service)]
        if let version = serviceContext.version { service["version"] = .string(version) }
        return [
            "@type": .string(Self.type),
            "serviceContext": .dictionary(service),
            "context": .dictionary([
                "reportLocation": .dictionary([
                    "filePath": .string(location.filePath), "lineNumber": .stringConvertible(location.lineNumber),
                    "functionName": .string(location.functionName),
                ]),
                "httpRequest": .dictionary(["method": .string(method), "responseStatusCode": .stringConvertible(status)]),
            ]),
        ]
    }
}
