import Foundation
import TollgateHTTP
import TollgateModel

/// Stripe's API over libcurl, for what Tollgate calls: meter events, and the customer and
/// subscription reads a reconciliation needs. Any base URL (Stripe, the emulator's fake,
/// localstripe).
///
/// Error semantics follow Stripe's guidance and its own libraries: connection errors,
/// 409 (lock timeout), 429 and 5xx are retried with the same `Idempotency-Key` after a
/// jittered backoff, `Stripe-Should-Retry` overrides the status when present, and a 4xx
/// validation error is never retried.
public struct StripeClient: Billing {
    public struct Configuration: Sendable {
        public var baseURL: String
        public var apiKey: String
        /// Retries inside one call, after the first attempt (stripe-node's `maxNetworkRetries`).
        public var maxNetworkRetries: Int
        public var timeout: Duration
        public var apiVersion: String?

        public init(
            baseURL: String = "https://api.stripe.com", apiKey: String, maxNetworkRetries: Int = 2, timeout: Duration = .seconds(20),
            apiVersion: String? = nil
        ) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey
            self.maxNetworkRetries = maxNetworkRetries
            self.timeout = timeout
            self.apiVersion = apiVersion
        }
    }

    let configuration: Configuration
    let http: CurlHTTPClient

    public init(configuration: Configuration, http: CurlHTTPClient = CurlHTTPClient()) {
        self.configuration = configuration
        self.http = http
    }

    /// `POST /v1/billing/meter_events`, with the event's identifier as the idempotency key
    /// so a retry of the same report, from this call or from a later task attempt, is
    /// answered with Stripe's first response.
    public func report(_ event: MeterEvent) async throws -> MeterEventReceipt {
        do { return try await sendMeterEvent(event) } catch let error as StripeAPIError { throw error.tollgateError }
    }

    func sendMeterEvent(_ event: MeterEvent) async throws -> MeterEventReceipt {
        let form: [(String, String)] = [
            ("event_name", event.eventName), ("payload[stripe_customer_id]", event.customerId), ("payload[value]", String(event.value)),
            ("identifier", event.identifier), ("timestamp", String(event.timestamp.secondsSinceEpoch)),
        ]
        let body: JSONValue
        do {
            body = try await send("POST", "/v1/billing/meter_events", form: form, idempotencyKey: "meter-event-\(event.identifier)")
        } catch let error as StripeAPIError where error.code == "resource_already_exists" && error.param == "identifier" {
            // Stripe already holds an event with this identifier: this usage is reported.
            return MeterEventReceipt(identifier: event.identifier, livemode: false)
        }
        guard let identifier = body["identifier"]?.stringValue else {
            throw TollgateError(.unavailable, "Stripe answered a meter event without an identifier")
        }
        return MeterEventReceipt(identifier: identifier, livemode: body["livemode"]?.boolValue ?? false)
    }

    /// `POST /v1/customers`.
    /// - Throws: ``StripeAPIError`` for an answer that is not 2xx.
    public func createCustomer(email: String?, metadata: [String: String] = [:], idempotencyKey: String) async throws -> JSONValue {
        var form: [(String, String)] = email.map { [("email", $0)] } ?? []
        form += metadata.sorted { $0.key < $1.key }.map { ("metadata[\($0.key)]", $0.value) }
        return try await send("POST", "/v1/customers", form: form, idempotencyKey: idempotencyKey)
    }

    /// `GET /v1/customers/{id}`.
    public func customer(_ id: String) async throws -> JSONValue {
        try await send("GET", "/v1/customers/\(Self.pathSegment(id))", form: [], idempotencyKey: nil)
    }

    /// `GET /v1/subscriptions?customer=…`: the customer's subscriptions (first page).
    public func subscriptions(customer: String) async throws -> [JSONValue] {
        let list = try await send("GET", "/v1/subscriptions?customer=\(Self.formEncode(customer))&limit=100", form: [], idempotencyKey: nil)
        return list["data"]?.arrayValue ?? []
    }

    /// One call with Stripe's retry rules. - Returns: the decoded JSON body of a 2xx.
    func send(_ method: String, _ path: String, form: [(String, String)], idempotencyKey: String?) async throws -> JSONValue {
        var headers: [(name: String, value: String)] = [
            ("Authorization", "Bearer \(configuration.apiKey)"), ("User-Agent", "Tollgate/1 (libcurl)"),
        ]
        if method == "POST" { headers.append(("Content-Type", "application/x-www-form-urlencoded")) }
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        if let version = configuration.apiVersion { headers.append(("Stripe-Version", version)) }
        let body = Array(form.map { "\(Self.formEncode($0.0))=\(Self.formEncode($0.1))" }.joined(separator: "&").utf8)
        var request = HTTPRequest(
            method: method, url: configuration.baseURL + path, headers: headers, body: body, timeout: configuration.timeout)
        // GETs are safe to retry; POSTs only with an idempotency key.
        let retries = method == "GET" || idempotencyKey != nil ? configuration.maxNetworkRetries : 0
        var attempt = 0
        while true {
            // Within what the request's caller still waits (``Deadline``).
            let left = Deadline.remaining
            if let left, left <= .zero { throw TollgateError(.deadlineExceeded, "Stripe \(method) \(path): the deadline passed") }
            request.timeout = left.map { min(configuration.timeout, $0) } ?? configuration.timeout
            do {
                return try Self.interpret(try await http.send(request), method: method, path: path)
            } catch let error as StripeAPIError {
                guard error.retryable, attempt < retries else { throw error }
            } catch let error as TollgateError where error.isTransient && attempt < retries {
                // A connection error or timeout: nothing was answered.
            }
            attempt += 1
            let pause = Self.backoff(attempt: attempt)
            if let left = Deadline.remaining, pause >= left {
                throw TollgateError(.deadlineExceeded, "Stripe \(method) \(path): no time left to retry before the deadline")
            }
            try await Task.sleep(for: pause)
        }
    }

    /// stripe-node's schedule: 0.5 s doubling, capped at 5 s, with jitter of up to half.
    static func backoff(attempt: Int) -> Duration {
        let base = min(0.5 * Double(1 << min(attempt - 1, 4)), 5)
        return .milliseconds(Int(base * 1_000 * Double.random(in: 0.5...1)))
    }

    static func interpret(_ response: HTTPResponse, method: String, path: String) throws -> JSONValue {
        let json = try? JSONValue.parse(Data(response.body))
        if (200..<300).contains(response.status) {
            guard let json else { throw TollgateError(.unavailable, "Stripe answered \(method) \(path) with a body that is not JSON") }
            return json
        }
        throw StripeAPIError(status: response.status, body: json, shouldRetry: response.header("Stripe-Should-Retry"))
    }

    /// Percent-encoding for `application/x-www-form-urlencoded`, as Stripe's libraries send it.
    static func formEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: "["), UInt8(ascii: "]"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "): out += "+"
            default: out += "%" + Hex.encode([byte]).uppercased()
            }
        }
        return out
    }

    static func pathSegment(_ text: String) -> String { formEncode(text).replacingOccurrences(of: "+", with: "%20") }
}

/// A non-2xx answer from Stripe, with its `error` object.
public struct StripeAPIError: Error, CustomStringConvertible, Sendable {
    public var status: Int
    public var type: String?
    public var code: String?
    public var message: String?
    public var param: String?
    /// `Stripe-Should-Retry`, when Stripe says it.
    public var shouldRetry: Bool?

    init(status: Int, body: JSONValue?, shouldRetry: String?) {
        self.status = status
        let error = body?["error"]
        type = error?["type"]?.stringValue
        code = error?["code"]?.stringValue
        message = error?["message"]?.stringValue
        param = error?["param"]?.stringValue
        self.shouldRetry = shouldRetry.map { $0 == "true" }
    }

    /// Stripe's rule: the header decides when present; else 409, 429 and 5xx.
    public var retryable: Bool { shouldRetry ?? (status == 409 || status == 429 || status >= 500) }

    public var description: String {
        "Stripe \(status) \(type ?? "error")\(code.map { " (\($0))" } ?? ""): \(message ?? "no message")"
    }
}

extension StripeAPIError {
    /// Retryable answers are transient; 401/403 mean our key is wrong (retry once it is
    /// fixed); any other 4xx refuses the request itself.
    public var tollgateError: TollgateError {
        if retryable { return TollgateError(status == 429 ? .resourceExhausted : .unavailable, description) }
        if status == 401 || status == 403 { return TollgateError(.permissionDenied, description) }
        return TollgateError(.invalidArgument, description)
    }
}
