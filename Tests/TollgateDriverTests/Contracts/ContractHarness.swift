import Foundation
import Testing
import TollgateTestSupport

/// One backend of a port's contract suite, in the manner of gocloud.dev's `drivertest`:
/// it makes a fresh instance, says what it can do, and closes it. Every case of the
/// suite runs on every backend through the port alone and asserts error codes; a
/// backend that lacks a capability is left out of the cases that need it — by
/// capability, never by backend name.
protocol ContractBackend: CaseIterable, CustomTestStringConvertible, Sendable {
    associatedtype Instance: Sendable
    associatedtype Capability: Hashable & Sendable

    /// What this backend does beyond the port's common ground.
    var capabilities: Set<Capability> { get }
    /// The third-party program the backend runs against, if any.
    var peer: Peer? { get }
    /// A fresh, empty instance.
    func open() async throws -> ContractInstance<Instance>
}

/// An opened backend: the port (and whatever the harness offers to look behind it),
/// and how to close it.
struct ContractInstance<Instance: Sendable>: Sendable {
    let port: Instance
    let close: @Sendable () async -> Void

    init(_ port: Instance, close: @escaping @Sendable () async -> Void = {}) {
        self.port = port
        self.close = close
    }
}

extension ContractBackend {
    /// The backends a case runs on: those with every capability it needs, and a peer
    /// that is installed (or required, so that a missing one fails the run).
    static func supporting(_ needed: Capability...) -> [Self] {
        allCases.filter { backend in
            Set(needed).isSubset(of: backend.capabilities) && backend.peer.map { $0.isInstalled || Peer.required } ?? true
        }
    }

    /// Opens a fresh instance, runs `body` on it and closes it, also when `body` throws.
    func with(_ body: (Instance) async throws -> Void) async throws {
        let opened = try await open()
        do {
            try await body(opened.port)
            await opened.close()
        } catch {
            await opened.close()
            throw error
        }
    }
}
