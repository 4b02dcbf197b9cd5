import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A loopback server that accepts every connection and never answers: what a stuck store
/// or API looks like to a client. Connections are held until ``stop()``.
package final class HungServer: Sendable {
    package let port: Int
    private let listener: Int32
    private let accepted = Mutex<[Int32]>([])
    private let stopped = Mutex(false)

    package init() throws {
        #if canImport(Glibc)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(descriptor, raw, length) == 0 && listen(descriptor, 64) == 0 && getsockname(descriptor, raw, &length) == 0
            }
        }
        guard descriptor >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        // The thread holds the server until stop() closes the listener and its accept fails.
        Thread { [self] in
            while !stopped.withLock({ $0 }) {
                let connection = accept(listener, nil, nil)
                guard connection >= 0 else { break }
                accepted.withLock { $0.append(connection) }
            }
        }.start()
    }

    package var hostAndPort: String { "127.0.0.1:\(port)" }

    /// Connections accepted so far: one per attempt of a client that gives up and retries.
    package var connections: Int { accepted.withLock { $0.count } }

    /// Closes the listener and every held connection.
    package func stop() {
        guard
            stopped.withLock({ done in
                defer { done = true }
                return !done
            })
        else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for connection in accepted.withLock({ $0 }) { close(connection) }
    }
}
