import AuthValidator
import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateJOSE
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting
import UsageRecorder

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The key life cycle through the real command line and the real auth-validator.
@Suite(.serialized) struct KeyCommandTests {
    @Test func create_list_revoke_throughTheCommandLine_andTheValidator() async throws {
        let directory = scratchURL("keys")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let pepper = "pepper-for-the-key-command-test-0123456789"
        let environment = ["TOLLGATE_STORE": "sqlite://\(directory.path)/state.db", "TOLLGATE_KEY_PEPPER": pepper]

        let (created, key, note) = try await runTollgate(
            ["keys", "create", "--account", "acct_7", "--name", "ci"], environment: environment)
        #expect(created == 0, "\(note)")
        let plaintext = key.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(APIKeys.isWellFormed(plaintext))
        let state = try await SQLiteDatabase(path: directory.appendingPathComponent("state.db").path).stateDump().rendered()
        #expect(!state.contains(plaintext), "only the keyed hash is stored")

        let (_, listing, _) = try await runTollgate(["keys", "list", "--account", "acct_7"], environment: environment)
        #expect(listing.contains(APIKeys.displayPrefix(of: plaintext)))
        #expect(listing.contains("active"))
        #expect(!listing.contains(plaintext))

        let validator = try await RunningFunction(
            "auth-validator", environment: environment.merging(["TOLLGATE_CACHE_TTL": "0"]) { a, _ in a })
        #expect(try await post(validator.url, body: Data(), headers: ["X-API-Key": plaintext]).0 == 200)

        let (revoked, said, _) = try await runTollgate(["keys", "revoke", APIKeys.displayPrefix(of: plaintext)], environment: environment)
        #expect(revoked == 0)
        #expect(said.contains("revoked"))
        let (status, body) = try await post(validator.url, body: Data(), headers: ["X-API-Key": plaintext])
        #expect(status == 401)
        #expect(try JSONValue.parse(body)["code"] == .string("REVOKED"))
        #expect(try await runTollgate(["keys", "revoke", plaintext], environment: environment).1.contains("already revoked"))
        #expect(try await runTollgate(["keys", "revoke", "tg_live_nope"], environment: environment).0 != 0)
        #expect(!validator.log.contains(plaintext), "keys never reach the log")
        #expect(try await validator.stop() == 0)
    }
}
