import Foundation
import Testing
import TollgateModel

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

package func post(_ url: URL, body: Data, headers: [String: String] = [:], session: URLSession = .shared) async throws -> (Int, Data) {
    try await send("POST", url, body: body, headers: headers, session: session)
}

/// A session that opens as many connections to one server as it is asked for (the shared
/// one opens 6 and queues the rest).
package let unqueuedSession: URLSession = {
    let configuration = URLSessionConfiguration.default
    configuration.httpMaximumConnectionsPerHost = 256
    return URLSession(configuration: configuration)
}()

/// Sends one request and answers its status and body (any status: refusals are answers).
package func send(
    _ method: String, _ url: URL, body: Data? = nil, headers: [String: String] = [:], session: URLSession = .shared
) async throws -> (Int, Data) {
    var request = URLRequest(url: url, timeoutInterval: 20)
    request.httpMethod = method
    request.httpBody = body
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await session.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

package func get(_ url: URL) async throws -> (Int, Data) {
    let (data, response) = try await URLSession.shared.data(from: url)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
}

/// Opens a TCP connection to loopback `port`, writes `text` and closes without reading.
package func sendAndHangUp(port: Int, _ text: String) throws {
    try RawConnection(port: port, receiveTimeout: 1).send(text)
}
