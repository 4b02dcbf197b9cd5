import CCurl
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

/// The HTTP client every outbound driver uses: libcurl, with easy handles kept in a pool
/// and every transfer of the process driven by one thread through libcurl's multi
/// interface (``TransferLoop``), which also shares connections and TLS sessions.
///
/// A transfer waiting on a slow or hung server costs a socket, never a thread: with one
/// blocking `curl_easy_perform` per call on a dispatch queue, 24 calls to a hung store
/// queued for threads and the last started its 1.5 s deadline 7 s late.
///
/// Transport failures are `UNAVAILABLE` (nothing was answered: safe to retry an idempotent
/// call) and timeouts `DEADLINE_EXCEEDED`; any HTTP status is a response, for the caller
/// to interpret with the service's own error semantics.
public final class CurlHTTPClient: HTTPTransport {
    /// Responses larger than this are refused rather than buffered.
    public let maxResponseBytes: Int
    private let idle = Mutex<[Handle]>([])
    private let maxIdle: Int
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK
    private static let loop = TransferLoop()

    public init(maxResponseBytes: Int = 16 << 20, maxIdleConnections: Int = 8) {
        precondition(Self.initialized, "libcurl failed to initialise")
        self.maxResponseBytes = maxResponseBytes
        self.maxIdle = maxIdleConnections
    }

    deinit {
        for handle in idle.withLock({ $0 }) { curl_easy_cleanup(handle.pointer) }
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let handle = idle.withLock({ $0.popLast() }) ?? curl_easy_init().map(Handle.init) else {
            throw TollgateError(.unavailable, "libcurl could not create a handle")
        }
        let transfer = Transfer(request, limit: maxResponseBytes)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        // `Expect: 100-continue` costs a round trip for bodies over 1 KB; no server here needs it.
        for (name, value) in request.headers + [("Expect", "")] {
            headerList = curl_slist_append(headerList, value.isEmpty ? "\(name):" : "\(name): \(value)")
        }
        Self.configure(handle.pointer, for: request, headers: headerList, context: context.toOpaque())
        let code = await Self.loop.perform(handle)
        let result = Self.outcome(of: code, transfer: transfer, handle: handle)
        idle.withLock { handles in
            if handles.count < maxIdle { handles.append(handle) } else { curl_easy_cleanup(handle.pointer) }
        }
        return try result.get()
    }

    /// An easy handle; used by one transfer at a time (it leaves the pool while in use).
    struct Handle: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    /// What the callbacks fill in, reached through the transfer's private pointer.
    private final class Transfer {
        let request: HTTPRequest
        var body: [UInt8] = []
        var headers: [(name: String, value: String)] = []
        var uploaded = 0
        let limit: Int
        var overflowed = false
        init(_ request: HTTPRequest, limit: Int) {
            self.request = request
            self.limit = limit
        }
    }

    private static func configure(
        _ curl: UnsafeMutableRawPointer, for request: HTTPRequest, headers: UnsafeMutablePointer<curl_slist>?,
        context: UnsafeMutableRawPointer
    ) {
        // Reset drops the previous request's options but keeps live connections and caches.
        curl_easy_reset(curl)
        let milliseconds = Int(request.timeout.components.seconds * 1_000 + request.timeout.components.attoseconds / 1_000_000_000_000_000)
        tollgate_curl_set_string(curl, CURLOPT_URL, request.url)
        // Also what keeps a POST a POST when CURLOPT_UPLOAD (which implies PUT) sends the body.
        tollgate_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method)
        tollgate_curl_set_pointer(curl, CURLOPT_HTTPHEADER, headers)
        tollgate_curl_set_long(curl, CURLOPT_TIMEOUT_MS, max(1, milliseconds))
        tollgate_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, max(1, min(milliseconds, 10_000)))
        tollgate_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
        tollgate_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
        tollgate_curl_set_string(curl, CURLOPT_ACCEPT_ENCODING, "")
        tollgate_curl_set_string(curl, CURLOPT_PROTOCOLS_STR, "http,https")
        tollgate_curl_set_pointer(curl, CURLOPT_WRITEDATA, context)
        tollgate_curl_set_callback(curl, CURLOPT_WRITEFUNCTION, receiveBody)
        tollgate_curl_set_pointer(curl, CURLOPT_HEADERDATA, context)
        tollgate_curl_set_callback(curl, CURLOPT_HEADERFUNCTION, receiveHeader)
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method) {
            tollgate_curl_set_long(curl, CURLOPT_UPLOAD, 1)
            tollgate_curl_set_large(curl, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count))
            tollgate_curl_set_pointer(curl, CURLOPT_READDATA, context)
            tollgate_curl_set_callback(curl, CURLOPT_READFUNCTION, sendBody)
        }
    }

    private static func outcome(of code: CURLcode, transfer: Transfer, handle: Handle) -> Result<HTTPResponse, TollgateError> {
        let request = transfer.request
        guard code == CURLE_OK else {
            if transfer.overflowed {
                return .failure(
                    TollgateError(.unavailable, "\(request.method) \(redacted(request.url)): response over \(transfer.limit) bytes"))
            }
            let reason = String(cString: curl_easy_strerror(code))
            let kind: TollgateError.Code = code == CURLE_OPERATION_TIMEDOUT ? .deadlineExceeded : .unavailable
            return .failure(TollgateError(kind, "\(request.method) \(redacted(request.url)): \(reason)"))
        }
        var status = 0
        tollgate_curl_response_code(handle.pointer, &status)
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
        let chunk = min(size * count, transfer.request.body.count - transfer.uploaded)
        transfer.request.body.withUnsafeBytes { source in
            _ = memcpy(buffer!, source.baseAddress! + transfer.uploaded, chunk)
        }
        transfer.uploaded += chunk
        return chunk
    }
}

/// The one thread that runs every transfer: it adds what was submitted to libcurl's multi
/// handle, lets libcurl progress all of them, resumes each caller as its transfer ends, and
/// sleeps in `curl_multi_poll` until a socket is ready, a timer of libcurl's is due (a
/// transfer's timeout among them) or a new transfer wakes it.
private final class TransferLoop: Sendable {
    private struct Submitted: @unchecked Sendable {
        let handle: CurlHTTPClient.Handle
        let continuation: CheckedContinuation<CURLcode, Never>
    }

    private struct Multi: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let multi: Multi
    private let submitted = Mutex<[Submitted]>([])

    init() {
        guard let pointer = curl_multi_init() else { preconditionFailure("libcurl could not create a multi handle") }
        multi = Multi(pointer: pointer)
        let thread = Thread { [self] in run() }
        thread.name = "tollgate.curl"
        thread.start()
    }

    func perform(_ handle: CurlHTTPClient.Handle) async -> CURLcode {
        await withCheckedContinuation { continuation in
            submitted.withLock { $0.append(Submitted(handle: handle, continuation: continuation)) }
            curl_multi_wakeup(multi.pointer)
        }
    }

    private func run() {
        var running: [UnsafeMutableRawPointer: CheckedContinuation<CURLcode, Never>] = [:]
        var stillRunning: Int32 = 0
        while true {
            for new in submitted.withLock({ waiting in
                defer { waiting.removeAll() }
                return waiting
            }) {
                if curl_multi_add_handle(multi.pointer, new.handle.pointer) == CURLM_OK {
                    running[new.handle.pointer] = new.continuation
                } else {
                    new.continuation.resume(returning: CURLE_FAILED_INIT)
                }
            }
            curl_multi_perform(multi.pointer, &stillRunning)
            var result = CURLE_OK
            while let done = tollgate_curl_multi_next_done(multi.pointer, &result) {
                curl_multi_remove_handle(multi.pointer, done)
                running.removeValue(forKey: done)?.resume(returning: result)
            }
            curl_multi_poll(multi.pointer, nil, 0, 1_000, nil)
        }
    }
}
