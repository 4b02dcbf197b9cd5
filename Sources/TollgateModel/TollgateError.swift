/// The one error type of Tollgate: a growable code, a message, and where it was thrown.
///
/// Errors are compared by ``code``, never by message. Drivers translate each backend's
/// errors into these codes; the runtime maps a code to an HTTP status and to
/// retry-or-dead-letter in one place (`FunctionHost` in TollgateRuntime).
public struct TollgateError: Error, Sendable, CustomStringConvertible {
    /// A machine-readable error code, named after the gRPC codes Google's services use.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The input is malformed or breaks a documented limit. Permanent.
        public static let invalidArgument = Code("INVALID_ARGUMENT")
        /// The named thing does not exist.
        public static let notFound = Code("NOT_FOUND")
        /// A create found the thing already there.
        public static let alreadyExists = Code("ALREADY_EXISTS")
        /// A precondition (exists, update time, generation) did not hold.
        public static let failedPrecondition = Code("FAILED_PRECONDITION")
        /// A transaction lost a race with another writer; retry it.
        public static let aborted = Code("ABORTED")
        /// The backing service cannot be reached now; retry later.
        public static let unavailable = Code("UNAVAILABLE")
        /// A rate or size limit was hit.
        public static let resourceExhausted = Code("RESOURCE_EXHAUSTED")
        /// The caller is not who it must be.
        public static let unauthenticated = Code("UNAUTHENTICATED")
        /// The caller is known but not allowed.
        public static let permissionDenied = Code("PERMISSION_DENIED")
        /// The deadline passed before the work finished; retry later.
        public static let deadlineExceeded = Code("DEADLINE_EXCEEDED")
        /// A bug or an unexpected state.
        public static let `internal` = Code("INTERNAL")

        /// The HTTP status Google's REST APIs answer this code with.
        public var httpStatus: Int {
            switch self {
            case .invalidArgument, .failedPrecondition: 400
            case .unauthenticated: 401
            case .permissionDenied: 403
            case .notFound: 404
            case .alreadyExists, .aborted: 409
            case .resourceExhausted: 429
            case .unavailable: 503
            case .deadlineExceeded: 504
            default: 500
            }
        }
    }

    public let code: Code
    public let message: String
    /// Where it was made: what an error report points at.
    public let file: String
    public let line: Int
    public let function: String

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line, function: String = #function) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.function = function
    }

    public var description: String { "\(code): \(message)" }

    /// Whether retrying the same call later may succeed.
    public var isTransient: Bool {
        [.aborted, .unavailable, .deadlineExceeded, .resourceExhausted].contains(code)
    }
}

extension Error {
    /// The Tollgate code of any error; errors from outside Tollgate are `INTERNAL`.
    public var tollgateCode: TollgateError.Code {
        (self as? TollgateError)?.code ?? .internal
    }
}
