import Foundation
import Logging
import TollgateModel
import TollgateRuntime
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// account-api as the emulator builds it, over a fresh SQLite state on a virtual clock,
/// called as the dashboard calls it: with a session token of the local Clerk instance.
struct LocalAccountAPI {
    let clock = VirtualClock(start: Fixture.defaultStart)
    let ports: Ports
    let function: EmulatedFunction
    let senders: Senders

    init() throws {
        ports = Ports(sqlite: try temporaryDatabase(clock: clock))
        let clerk = try LocalOIDCIssuer(keyID: "clerk-local-1")
        function = try EmulatedFunction.make(
            "account-api", ports: ports, issuer: try LocalOIDCIssuer(), clerk: clerk, webhookSecrets: ["current"],
            logger: Logger(label: "account-api") { _ in SwiftLogNoOpLogHandler() })
        var senders = Senders(
            issuer: try LocalOIDCIssuer(), clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"),
            function: function.declaration)
        senders.clerk = clerk
        self.senders = senders
    }

    /// The request `method path` as `user`'s signed-in dashboard sends it (with no session
    /// when `user` is nil).
    func request(_ method: String, _ path: String, as user: String?, body: JSONValue? = nil) throws -> FunctionRequest {
        var http: [String: JSONValue] = ["method": .string(method), "path": .string(path)]
        if let user { http["session"] = .object(["user": .string(user)]) }
        if let body { http["body"] = body }
        return try senders.request(for: .object(["http": .object(http)]), delivery: 1)
    }

    /// The status and JSON body of `method path` as `user`.
    func call(_ method: String, _ path: String, as user: String?, body: JSONValue? = nil) async throws -> (Int, JSONValue) {
        let response = await function.deliver(try request(method, path, as: user, body: body))
        return (response.status, try JSONValue.parse(response.body))
    }
}
