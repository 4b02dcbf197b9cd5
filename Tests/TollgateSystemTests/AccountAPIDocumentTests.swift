import AccountAPI
import AuthValidator
import Foundation
import Logging
import Testing
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// docs/openapi/account-api.json and the routes stay in step, and what the real function
/// answers fits the document's schemas (checked with the `jsonschema` package, draft
/// 2020-12, which OpenAPI 3.1's schemas are).
@Suite struct AccountAPIDocumentTests {
    static let document = try! JSONValue.parse(
        Data(contentsOf: packageRoot.appendingPathComponent("docs/openapi/account-api.json")))

    @Test func everyRouteIsDocumented_andEveryDocumentedOperationIsARoute() {
        var documented: Set<String> = []
        for (path, item) in Self.document["paths"]?.objectValue ?? [:] {
            for method in (item.objectValue ?? [:]).keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let routes = Set(AccountAPIFunction.routes.flatMap { route in route.methods.map { "\($0) \(route.path)" } })
        #expect(documented == routes)
        #expect(Self.document["openapi"]?.stringValue == "3.1.0")
    }

    /// auth-validator answers at any path and method; its document writes the check at `/`
    /// and the invalidation push at the path the function subscribes with.
    @Test func authValidatorDocument_namesTheFunctionsOperations() throws {
        let document = try JSONValue.parse(Data(contentsOf: packageRoot.appendingPathComponent("docs/openapi/auth-validator.json")))
        var documented: Set<String> = []
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in (item.objectValue ?? [:]).keys { documented.insert("\(method.uppercased()) \(path)") }
        }
        let routes = Set(AuthValidatorFunction.routes.flatMap { route in route.methods.map { "\($0) \(route.path)" } })
        #expect(documented == routes)
        #expect(AuthValidatorFunction.declaration.subscriptions.map(\.path) == [AuthValidatorFunction.invalidationPath])
        // Every verdict code the function has is in the document's enum, and no other.
        let codes = Set(document["components"]?["schemas"]?["Code"]?["enum"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        #expect(codes == Set(Verdict.Code.allCases.map(\.rawValue)))
    }

    @Test(Peer.pythonVenv.trait)
    func answersOfTheRealFunction_fitTheDocumentsSchemas() async throws {
        let clock = VirtualClock(start: Fixture.defaultStart)
        let ports = Ports(sqlite: try temporaryDatabase(clock: clock))
        let clerk = try LocalOIDCIssuer(keyID: "clerk-local-1")
        let function = try EmulatedFunction.make(
            "account-api", ports: ports, issuer: try LocalOIDCIssuer(), clerk: clerk, webhookSecrets: ["current"],
            logger: Logger(label: "account-api-document") { _ in SwiftLogNoOpLogHandler() })
        _ = try await ports.store.set(try DocumentPath("users/user_doc"), ["accountId": .string("user_doc")])
        var senders = Senders(
            issuer: try LocalOIDCIssuer(), clock: clock, fixtureDirectory: packageRoot.appendingPathComponent("events"),
            function: function.declaration)
        senders.clerk = clerk
        func call(_ spec: String) async throws -> (Int, JSONValue?) {
            let request = try senders.request(for: .object(["http": try JSONValue.parse(Data(spec.utf8))]), delivery: 1)
            let response = await function.deliver(request)
            return (response.status, try? JSONValue.parse(response.body))
        }
        let session = #""session": {"user": "user_doc"}"#
        var checks: [(schema: String, status: Int, expected: Int, body: JSONValue?)] = []
        func check(_ schema: String, _ expected: Int, _ spec: String) async throws {
            let (status, body) = try await call(spec)
            checks.append((schema, status, expected, body))
        }
        try await check("Account", 200, #"{"method": "GET", "path": "/v1/account", \#(session)}"#)
        try await check(
            "CreatedKey", 201,
            #"{"method": "POST", "path": "/v1/keys", \#(session), "body": {"name": "doc", "expiresAt": "2027-01-01T00:00:00Z"}}"#)
        try await check("CreatedKey", 201, #"{"method": "POST", "path": "/v1/keys", \#(session), "body": {"name": "second"}}"#)
        try await check("KeyList", 200, #"{"method": "GET", "path": "/v1/keys", \#(session)}"#)
        try await check("Usage", 200, #"{"method": "GET", "path": "/v1/usage", \#(session)}"#)
        try await check("SigningKeys", 200, #"{"method": "GET", "path": "/v1/signing-keys"}"#)
        try await check("Error", 400, #"{"method": "POST", "path": "/v1/keys", \#(session), "body": {"name": ""}}"#)
        try await check("Error", 401, #"{"method": "GET", "path": "/v1/account"}"#)
        try await check("Error", 403, #"{"method": "GET", "path": "/v1/account", "session": {"user": "user_unknown"}}"#)
        try await check("Error", 404, #"{"method": "DELETE", "path": "/v1/keys/tg_live_none", \#(session)}"#)
        for entry in checks { #expect(entry.status == entry.expected, "\(entry.schema): \(String(describing: entry.body))") }

        let components = Self.document["components"] ?? .null
        var schemas = components["schemas"]?.objectValue ?? [:]
        schemas["KeyList"] = Self.document["paths"]?["/v1/keys"]?["get"]?["responses"]?["200"]?["content"]?["application/json"]?["schema"]
        for entry in checks {
            let result = try await PythonPeer.run(
                script: "json_schema.py",
                input: .object([
                    "schema": .object([
                        "$ref": .string("#/components/schemas/\(entry.schema)"), "components": .object(["schemas": .object(schemas)]),
                    ]),
                    "instances": .array([entry.body ?? .null]),
                ]))
            #expect(result["valid"] == .array([.bool(true)]), "\(entry.schema) \(entry.status): \(String(describing: entry.body))")
        }
    }
}
