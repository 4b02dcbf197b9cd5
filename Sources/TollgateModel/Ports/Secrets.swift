/// Reads secrets by name. In Cloud Run they arrive as environment variables (Secret
/// Manager references); the emulator supplies local values.
public protocol Secrets: Sendable {
    /// - Throws: `NOT_FOUND` when the secret is not configured.
    func secret(_ name: String) async throws -> String
}

/// Secrets from a fixed table: the environment, or the emulator's local values.
public struct StaticSecrets: Secrets {
    private let values: [String: String]
    public init(_ values: [String: String]) { self.values = values }
    public func secret(_ name: String) async throws -> String {
        guard let value = values[name], !value.isEmpty else {
            throw TollgateError(.notFound, "secret \(name) is not set")
        }
        return value
    }
}
