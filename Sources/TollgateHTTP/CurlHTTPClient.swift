import CCurl
import Dispatch
import Foundation
import Synchronization
import TollgateModel

/// An HTTP request for ``CurlHTTPClient``.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The whole exchange, connecting included.
    public var timeout: Duration

    public init(
        method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Duration = .seconds(30)
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// Header names as the server sent them; look up with ``header(_:)``.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Sends one HTTP exchange. The drivers take any transport, so tests can capture the
/// exact requests a driver builds; in production it is always ``CurlHTTPClient``.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// The HTTP client every outbound driver uses: libcurl's easy interface, with handles kept
/// in a pool so connections (and TLS sessions) are reused across requests, each transfer
/// run off the Swift concurrency pool because `curl_easy_perform` blocks.
///
/// Transport failures are `UNAVAILABLE` (nothing was answered: safe to retry an idempotent
/// call) and timeouts `DEADLINE_EXCEEDED`; any HTTP status is a response, for the caller
/// to interpret with the service's own error semantics.
public final class CurlHTTPClient: HTTPTransport {
    /// Responses larger than this are refused rather than buffered.
    public let maxResponseBytes: Int
    private let idle = Mutex<[Handle]>([])
    private let maxIdle: Int
    private static let queue = DispatchQueue(label: "tollgate.curl", attributes: .concurrent)
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

    public init(maxResponseBytes: Int = 16 << 20, maxIdleConnections: Int = 8) {
        precondition(Self.initialized, "libcurl failed to initialise")
        self.maxResponseBytes = maxResponseBytes
        self.maxIdle = maxIdleConnections
    }

    deinit {
        for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let handle = idle.withLock { $0.popLast() } ?? Handle(pointer: curl_easy_init())
        let limit = maxResponseBytes
        let result: Result<HTTPResponse, TollgateError> = await withCheckedContinuation { continuation in
            Self.queue.async { continuation.resume(returning: Self.perform(request, on: handle.pointer, limit: limit)) }
        }
        idle.withLock { handles in
            guard handle.pointer != nil else { return }
            if handles.count < maxIdle { handles.append(handle) } else { curl_easy_cleanup(handle.pointer) }
        }
        return try result.get()
    }

    /// An easy handle; used by one transfer at a time (it leaves the pool while in use).
    private struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer?
    }

    /// What the callbacks fill in, reached through the transfer's private pointer.
    private final class Transfer {
        var body: [UInt8] = []
        var headers: [(name: String, value: String)] = []
        var upload: [UInt8]
        var uploaded = 0
        let limit: Int
        var overflowed = false
        init(upload: [UInt8], limit: Int) {
            self.upload = upload
            self.limit = limit
        }
    }

    private static func perform(_ request: HTTPRequest, on curl: UnsafeMutableRawPointer?, limit: Int) -> Result<
        HTTPResponse, TollgateError
    > {
        guard let curl else { return .failure(TollgateError(.unavailable, "libcurl could not create a handle")) }
        // Reset drops the previous request's options but keeps live connections and caches.
        curl_easy_reset(curl)
        let transfer = Transfer(upload: request.body, limit: limit)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        // `Expect: 100-continue` costs a round trip for bodies over 1 KB; no server here needs it.
        for (name, value) in request.headers + [("Expect", "")] {
            headerList = curl_slist_append(headerList, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        let milliseconds = Int(request.timeout.components.seconds * 1_000 + request.timeout.components.attoseconds / 1_000_000_000_000_000)
        tollgate_curl_set_string(curl, CURLOPT_URL, request.url)
        // Also what keeps a POST a POST when CURLOPT_UPLOAD (which implies PUT) sends the body.
        tollgate_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        tollgate_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headerList)
        tollgate_curl_set_long(curl, CURLOPT_TIMEOUT_MS, max(1, milliseconds))
        tollgate_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, max(1, min(milliseconds, 10_000)))
        tollgate_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        tollgate_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        tollgate_curl_set_string(curl, CURLOPT_ACCEPT_ENCODING, "")
        tollgate_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        tollgate_curl_set_pointer(curl, CURLOPT_WRITEDATA, context.toOpaque())
        tollgate_curl_set_callback(curl, CURLOPT_WRITEFUNCTION, receiveBody)
        tollgate_curl_set_pointer(curl, CURLOPT_HEADERDATA, context.toOpaque())
        tollgate_curl_set_callback(curl, CURLOPT_HEADERFUNCTION, receiveHeader)
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            tollgate_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            tollgate_curl_set_large(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count))
            tollgate_curl_set_pointer(curl, CURLOPT_READDATA, context.toOpaque())
            tollgate_curl_set_callback(curl, CURLOPT_READFUNCTION, sendBody)
        }
        let code = curl_easy_perform(curl)
        guard code == CURLE_OK else {
            if transfer.overflowed {
                return .failure(TollgateError(.unavailable, "\(request.method) \(redacted(request.url)): response over \(limit) bytes"))
            }
            let reason = String(cString: curl_easy_strerror(code))
            let kind: TollgateError.Code = code == CURLE_OPERATION_TIMEDOUT ? .deadlineExceeded : .unavailable
            return .failure(TollgateError(kind, "\(request.method) \(redacted(request.url)): \(reason)"))
        }
        var status = 0
        tollgate_curl_response_code(curl, &status)
        return .success(HTTPResponse(status: status, headers: transfer.headers, body: transfer.body))
    }

    /// The URL without its query, which may carry signatures or tokens.
    public static func redacted(_ url: String) -> String { String(url.prefix { $0 != "?" }) }

    private static let receiveBody: tollgate_curl_data_callback = { data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let bytes = size * count
        guard transfer.body.count + bytes <= transfer.limit else {
            transfer.overflowed = true
            return 0
        }
        data!.withMemoryRebound(to: UInt8.self, capacity: bytes) {
            transfer.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: bytes))
        }
        return bytes
    }

    private static let receiveHeader: tollgate_curl_data_callback = { data, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let bytes = size * count
        let line = data!.withMemoryRebound(to: UInt8.self, capacity: bytes) {
            String(decoding: UnsafeBufferPointer(start: $0, count: bytes), as: UTF8.self)
        }
        // A new status line (after a redirect or 100 Continue) starts a new header set.
        if line.hasPrefix("HTTP/") { transfer.headers.removeAll() }
        if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            transfer.headers.append((name, value))
        }
        return bytes
    }

    private static let sendBody: tollgate_curl_data_callback = { buffer, size, count, context in
        let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
        let chunk = min(size * count, transfer.upload.count - transfer.uploaded)
        transfer.upload.withUnsafeBytes { source in
            _ = memcpy(buffer!, source.baseAddress! + transfer.uploaded, chunk)
        }
        transfer.uploaded += chunk
        return chunk
    }
}
