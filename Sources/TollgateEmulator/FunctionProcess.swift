import Foundation
import Synchronization
import TollgateHTTP
import TollgateModel
import TollgateRuntime

/// A function's own executable, started as Cloud Run starts a container (`PORT`, its
/// environment, the local stand-ins for its secrets) on the local cloud's state file:
/// `tollgate serve --processes` runs exactly what deploys.
public final class FunctionProcess: Sendable {
    public let declaration: FunctionDeclaration
    public let port: Int
    let process: Process
    static let client = CurlHTTPClient()

    /// The environment a function's service has, pointed at the local cloud.
    public static func environment(
        for declaration: FunctionDeclaration, statePath: String, jwksFile: URL, stripeBaseURL: String
    ) throws -> [String: String] {
        var environment = [
            "PORT": "0", "K_SERVICE": declaration.name, "K_REVISION": "\(declaration.name)-local",
            "TOLLGATE_STORE": "sqlite://\(statePath)", "TOLLGATE_LOG_LEVEL": "info",
            "TOLLGATE_AUDIENCE": LocalEnvironment.url(of: declaration.name), "TOLLGATE_INVOKERS": LocalOIDCIssuer.serviceAccount,
            "TOLLGATE_OIDC_ISSUERS": LocalOIDCIssuer.issuer, "TOLLGATE_OIDC_JWKS": jwksFile.absoluteString,
        ]
        let localSecrets = [
            "STRIPE_WEBHOOK_SECRET": LocalEnvironment.webhookSecrets["current"] ?? "", "TOLLGATE_KEY_PEPPER": LocalEnvironment.keyPepper,
            "TOLLGATE_EXPORT_SIGNING_KEY": LocalEnvironment.exportSigningKey, "STRIPE_API_KEY": StripeFakeServer.apiKey,
        ]
        for secret in declaration.secrets {
            guard let value = localSecrets[secret] else {
                throw TollgateError(.internal, "no local stand-in for \(declaration.name)'s secret \(secret)")
            }
            environment[secret] = value
        }
        // The declared settings, with other functions' URLs as the local cloud serves them.
        for (name, value) in declaration.settings {
            environment[name] = value.replacingOccurrences(
                of: #"\{url:([a-z0-9-]+)\}"#, with: LocalEnvironment.url(of: "$1"), options: .regularExpression)
        }
        // What a platform team sets in the cloud: local values.
        if declaration.name == "stripe-webhook" { environment["TOLLGATE_PRICE_TIERS"] = LocalEnvironment.priceTiers }
        // Whoever holds a Stripe key calls the Stripe fake.
        if declaration.secrets.contains("STRIPE_API_KEY") { environment["TOLLGATE_STRIPE_API_BASE"] = stripeBaseURL }
        return environment
    }

    /// Starts `executable` and waits for its `listening` line (up to 20 s); its log lines
    /// go to `logFile`.
    public init(declaration: FunctionDeclaration, executable: URL, environment: [String: String], logFile: URL) async throws {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            throw TollgateError(
                .notFound, "\(executable.path) is not built; run: swift build --product \(declaration.name) (or swift build)")
        }
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: logFile)
        let process = Process()
        process.executableURL = executable
        process.environment = ProcessInfo.processInfo.environment.filter { $0.key == "PATH" || $0.key == "HOME" }
            .merging(environment) { _, given in given }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        let port = Mutex<Int?>(nil)
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            log.write(data)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                guard let entry = try? JSONValue.parse(Data(line.utf8)), entry["message"]?.stringValue == "listening",
                    let found = entry["port"]?.stringValue.flatMap({ Int($0) })
                else { continue }
                port.withLock { $0 = found }
            }
        }
        try process.run()
        let started = ContinuousClock.now
        while port.withLock({ $0 }) == nil {
            guard process.isRunning, ContinuousClock.now - started < .seconds(20) else {
                if process.isRunning { process.terminate() }
                throw TollgateError(.unavailable, "\(declaration.name) did not start; its log: \(logFile.path)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        self.declaration = declaration
        self.port = port.withLock { $0 } ?? 0
        self.process = process
    }

    /// The target the local cloud delivers to: HTTP to the process's port.
    public var target: LocalCloud.Target {
        let port = self.port
        return LocalCloud.Target(declaration: declaration) { request, deadline in
            let http = HTTPRequest(
                method: request.method, url: "http://127.0.0.1:\(port)\(request.path)", headers: request.headers,
                body: [UInt8](request.body),
                timeout: deadline)
            guard let response = try? await Self.client.send(http) else { return nil }
            var headers: [String: String] = [:]
            // Canonical names (`Retry-After`), whatever case the wire had.
            for header in response.headers {
                headers[
                    header.name.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst().lowercased() }.joined(separator: "-")
                ] =
                    header.value
            }
            return FunctionResponse(status: response.status, headers: headers, body: Data(response.body))
        }
    }

    /// SIGTERM, as Cloud Run stops an instance; SIGKILL after 10 s.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = ContinuousClock.now + .seconds(10)
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
