import Foundation
import Logging
import TollgateHTTP
import TollgateModel

/// Where one Google API is reached: its production base URL with credentials, or the
/// local emulator a `*_EMULATOR_HOST` variable names, over plain HTTP with none — the
/// convention of Google's own client libraries.
public struct GoogleEndpoint: Sendable {
    /// Scheme and host, no trailing slash: `https://firestore.googleapis.com`.
    public var baseURL: String
    /// Nil when talking to an emulator.
    public var credentials: (any GoogleCredentials)?

    public init(baseURL: String, credentials: (any GoogleCredentials)?) {
        self.baseURL = baseURL
        self.credentials = credentials
    }

    /// The emulator named by `variable` when it is set, else `production` with `credentials()`.
    public static func resolve(
        production: String, emulatorVariable: String, environment: [String: String],
        credentials: () throws -> any GoogleCredentials
    ) rethrows -> GoogleEndpoint {
        if let host = environment[emulatorVariable], !host.isEmpty {
            let base = host.hasPrefix("http://") || host.hasPrefix("https://") ? host : "http://\(host)"
            return GoogleEndpoint(baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base, credentials: nil)
        }
        return GoogleEndpoint(baseURL: production, credentials: try credentials())
    }
}

/// Retry with jittered exponential backoff, as Google's client libraries do: only for
/// calls that are safe to repeat, only on answers that say "try again".
public struct GoogleRetryPolicy: Sendable {
    public var maxAttempts: Int
    public var initialBackoff: Duration
    public var maxBackoff: Duration
    public var multiplier: Double

    public init(
        maxAttempts: Int = 5, initialBackoff: Duration = .milliseconds(100), maxBackoff: Duration = .seconds(10), multiplier: Double = 2
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.maxBackoff = maxBackoff
        self.multiplier = multiplier
    }

    public static let `default` = GoogleRetryPolicy()
    public static let never = GoogleRetryPolicy(maxAttempts: 1)

    /// HTTP statuses Google documents as retryable: request timeout, rate limit, server errors.
    public static func isRetryable(status: Int) -> Bool { [408, 429, 500, 502, 503, 504].contains(status) }

    /// The pause before retry number `retry` (1 for the first): full jitter over an
    /// exponentially growing ceiling, so many clients retrying do not stampede together.
    public func backoff(retry: Int) -> Duration {
        // Doublings past 2^30 cannot matter once capped, and must not overflow Duration.
        let capped = min(initialBackoff * pow(multiplier, Double(min(retry - 1, 30))), maxBackoff)
        return capped * Double.random(in: 0...1)
    }
}

/// The HTTP layer every Google driver shares: authorisation, retries for idempotent calls,
/// Google's error JSON turned into ``TollgateError`` codes, and one debug log line per
/// exchange that names the method, the URL without its query, the status and the time —
/// never a header, so never a token.
public struct GoogleAPIClient: Sendable {
    public let service: String
    public let endpoint: GoogleEndpoint
    let transport: any HTTPTransport
    let retry: GoogleRetryPolicy
    let logger: Logger
    let timeout: Duration

    public init(
        service: String, endpoint: GoogleEndpoint, transport: any HTTPTransport, retry: GoogleRetryPolicy = .default,
        timeout: Duration = .seconds(60), logger: Logger = Logger(label: "tollgate.google")
    ) {
        self.service = service
        self.endpoint = endpoint
        self.transport = transport
        self.retry = retry
        self.timeout = timeout
        self.logger = logger
    }

    /// Sends a request to `url` (absolute) or to a path under the endpoint's base URL.
    /// - Parameter idempotent: whether repeating the call cannot do harm; only then is it
    ///   retried on 429, 5xx or a transport failure.
    /// - Parameter accept: statuses besides 2xx that are answers, not errors (308 for a
    ///   resumable upload's progress).
    /// - Throws: ``TollgateError`` with the code Google's status maps to.
    public func send(
        _ method: String, _ pathOrURL: String, query: [(String, String)] = [], headers: [(name: String, value: String)] = [],
        body: [UInt8] = [], idempotent: Bool, accept: Set<Int> = []
    ) async throws -> HTTPResponse {
        var url = pathOrURL.hasPrefix("http://") || pathOrURL.hasPrefix("https://") ? pathOrURL : endpoint.baseURL + pathOrURL
        if !query.isEmpty {
            url +=
                (url.contains("?") ? "&" : "?")
                + query.map { "\(PercentEncoding.unreserved($0.0))=\(PercentEncoding.unreserved($0.1))" }.joined(separator: "&")
        }
        var attempt = 0
        var refreshedToken = false
        while true {
            attempt += 1
            var allHeaders = headers
            if let credentials = endpoint.credentials {
                allHeaders.append(("Authorization", "Bearer \(try await credentials.accessToken())"))
            }
            // Within what the request's caller still waits (``Deadline``), never past it.
            let left = Deadline.remaining
            if let left, left <= .zero {
                throw TollgateError(.deadlineExceeded, "\(service) \(method): the request's deadline passed before an answer")
            }
            let started = ContinuousClock.now
            let outcome: Result<HTTPResponse, any Error>
            do {
                let attemptTimeout = left.map { min(timeout, $0) } ?? timeout
                outcome = .success(
                    try await transport.send(
                        HTTPRequest(method: method, url: url, headers: allHeaders, body: body, timeout: attemptTimeout)))
            } catch { outcome = .failure(error) }
            let elapsed = ContinuousClock.now - started
            switch outcome {
            case .success(let response):
                logger.debug(
                    "\(service) \(method) \(CurlHTTPClient.redacted(url)) \(response.status)",
                    metadata: [
                        "latencyMs": "\(elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000)"
                    ])
                if (200..<300).contains(response.status) || accept.contains(response.status) { return response }
                // An access token can be revoked or expire early: fetch a new one, once.
                if response.status == 401, let credentials = endpoint.credentials, !refreshedToken {
                    refreshedToken = true
                    await credentials.invalidate()
                    attempt -= 1
                    continue
                }
                let error = GoogleAPIError(response: response, service: service)
                guard idempotent, GoogleRetryPolicy.isRetryable(status: response.status), attempt < retry.maxAttempts else {
                    throw error.tollgateError
                }
                try await pause(error.retryAfter ?? retry.backoff(retry: attempt), orThrow: error.tollgateError)
            case .failure(let failure):
                logger.debug("\(service) \(method) \(CurlHTTPClient.redacted(url)) failed: \(failure)")
                guard idempotent, failure.tollgateCode == .unavailable || failure.tollgateCode == .deadlineExceeded,
                    attempt < retry.maxAttempts
                else { throw failure }
                try await pause(retry.backoff(retry: attempt), orThrow: failure)
            }
        }
    }

    /// Waits before a retry, unless the retry could not start before the deadline: then
    /// the failure stands.
    private func pause(_ duration: Duration, orThrow failure: any Error) async throws {
        if let left = Deadline.remaining, duration >= left { throw failure }
        try await Task.sleep(for: duration)
    }

    /// Sends a JSON body (or none) and parses a JSON answer (an empty body is `{}`).
    public func json(
        _ method: String, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil, idempotent: Bool
    ) async throws -> JSONValue {
        let response = try await send(
            method, path, query: query, headers: body == nil ? [] : [("Content-Type", "application/json")],
            body: body.map { Array($0.rendered().utf8) } ?? [], idempotent: idempotent)
        return try Self.parse(response.body, service: service)
    }

    static func parse(_ body: [UInt8], service: String) throws -> JSONValue {
        if body.isEmpty { return .object([:]) }
        do { return try JSONValue.parse(Data(body)) } catch {
            throw TollgateError(.unavailable, "\(service) answered with a body that is not JSON")
        }
    }
}

/// Google's error body, `{"error": {"code": 409, "status": "ALREADY_EXISTS", "message": …}}`
/// (Cloud Storage's JSON API sends `errors[].reason` and no `status`), decoded.
public struct GoogleAPIError: Error, Sendable, CustomStringConvertible {
    public let service: String
    public let httpStatus: Int
    /// The canonical code name (`ALREADY_EXISTS`), from the body or else from the status.
    public let status: String
    public let message: String
    /// `errors[].reason` (Cloud Storage) and `details[].reason` (ErrorInfo).
    public let reasons: [String]
    /// From `Retry-After` (seconds) or a `RetryInfo` detail.
    public let retryAfter: Duration?

    public init(response: HTTPResponse, service: String) {
        self.service = service
        httpStatus = response.status
        let error = (try? JSONValue.parse(Data(response.body)))?["error"]
        message = error?["message"]?.stringValue ?? String(decoding: response.body.prefix(200), as: UTF8.self)
        status = error?["status"]?.stringValue ?? Self.canonicalStatus(httpStatus: response.status)
        let details = error?["details"]?.arrayValue ?? []
        reasons =
            (error?["errors"]?.arrayValue ?? []).compactMap { $0["reason"]?.stringValue }
            + details.compactMap { $0["reason"]?.stringValue }
        if let seconds = response.header("Retry-After").flatMap({ Int64($0) }) {
            retryAfter = .seconds(seconds)
        } else if let delay = details.first(where: { $0["@type"]?.stringValue?.hasSuffix("google.rpc.RetryInfo") == true })?[
            "retryDelay"]?.stringValue, let seconds = Double(delay.dropLast())
        {
            retryAfter = .milliseconds(Int64(seconds * 1_000))
        } else {
            retryAfter = nil
        }
    }

    /// The canonical code for an HTTP status, as google.rpc.Code maps them.
    static func canonicalStatus(httpStatus: Int) -> String {
        switch httpStatus {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 409: "ABORTED"
        case 412: "FAILED_PRECONDITION"
        case 416: "OUT_OF_RANGE"
        case 429: "RESOURCE_EXHAUSTED"
        case 499: "CANCELLED"
        case 501: "UNIMPLEMENTED"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        case 500..<600: "INTERNAL"
        default: "UNKNOWN"
        }
    }

    /// The Tollgate code the runtime maps to retry or dead-letter. Server-side `INTERNAL`
    /// and `UNKNOWN` are the service's trouble, not ours: retryable, so `UNAVAILABLE`.
    public var tollgateError: TollgateError {
        let code: TollgateError.Code
        switch status {
        case "INVALID_ARGUMENT", "OUT_OF_RANGE": code = .invalidArgument
        case "NOT_FOUND": code = .notFound
        case "ALREADY_EXISTS": code = .alreadyExists
        case "FAILED_PRECONDITION": code = .failedPrecondition
        case "ABORTED": code = .aborted
        case "RESOURCE_EXHAUSTED": code = .resourceExhausted
        case "UNAUTHENTICATED": code = .unauthenticated
        case "PERMISSION_DENIED": code = .permissionDenied
        case "DEADLINE_EXCEEDED", "CANCELLED": code = .deadlineExceeded
        case "UNIMPLEMENTED": code = .internal
        default: code = httpStatus >= 500 || httpStatus == 408 ? .unavailable : .internal
        }
        return TollgateError(code, description)
    }

    public var description: String { "\(service): \(status) (\(httpStatus)): \(message)" }
}
