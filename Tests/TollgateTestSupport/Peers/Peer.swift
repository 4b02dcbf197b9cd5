import Foundation
import Testing

/// A real third-party program a test runs against, on loopback, and whether it is here.
///
/// A test that needs one carries ``trait``: without the peer it is reported as skipped,
/// unless `TOLLGATE_REQUIRE_PEERS=1` (set by `./dev test` and CI), where it runs and the
/// peer's starter fails it with ``missing``. Tests never pass by returning early.
package enum Peer: String, CaseIterable, Sendable {
    /// The project's Python venv: the stripe package, google-api-python-client and the
    /// metadata-server stand-in run from it.
    case pythonVenv = "the Python venv (.venv)"
    /// Google's discovery documents, shipped inside google-api-python-client.
    case discoveryDocuments = "Google's discovery documents (google-api-python-client)"
    case fakeGCSServer = "fake-gcs-server"
    case localstripe = "localstripe"
    case nginx = "nginx"
    case redis = "redis-server"
    case nm = "nm (binutils)"
    /// Google's Firestore emulator (google-cloud-cli-firestore-emulator, with Java 17).
    case firestoreEmulator = "the Firestore emulator (google-cloud-cli-firestore-emulator)"
    /// Google's Pub/Sub emulator (google-cloud-cli-pubsub-emulator, with Java 17).
    case pubSubEmulator = "the Pub/Sub emulator (google-cloud-cli-pubsub-emulator)"

    /// `./dev test` sets `TOLLGATE_REQUIRE_PEERS=1`, so a missing peer fails the run.
    package static var required: Bool { ProcessInfo.processInfo.environment["TOLLGATE_REQUIRE_PEERS"] == "1" }

    package var isInstalled: Bool {
        switch self {
        case .pythonVenv: PythonPeer.available
        case .discoveryDocuments: DiscoveryDocument.folder != nil
        case .fakeGCSServer: FakeGCSServer.binary != nil
        case .localstripe: FileManager.default.isExecutableFile(atPath: Localstripe.binary.path)
        case .nginx: Self.firstExecutable(Self.nginxPaths) != nil
        case .redis: RedisServer.binary != nil
        case .nm: Self.firstExecutable(Self.nmPaths) != nil
        case .firestoreEmulator: GoogleEmulator.firestore.isInstalled
        case .pubSubEmulator: GoogleEmulator.pubSub.isInstalled
        }
    }

    /// Runs the test when the peer is here or peers are required; otherwise skips it.
    package var trait: ConditionTrait {
        .enabled(if: isInstalled || Self.required, "\(rawValue) is not installed: ./dev test installs it")
    }

    /// The error a starter throws when a required peer is absent.
    package var missing: any Error { PeerMissing(peer: self) }

    package static let nginxPaths = ["/usr/sbin/nginx", "/usr/bin/nginx"]
    package static let nmPaths = ["/usr/bin/nm", "/usr/local/bin/nm"]

    package static func firstExecutable(_ candidates: [String]) -> String? {
        candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

package struct PeerMissing: Error, CustomStringConvertible {
    package let peer: Peer
    package var description: String { "\(peer.rawValue) is not installed: run ./dev test, which installs every peer" }
}
