import Foundation
import Logging
import Testing
import TollgateAuth
import TollgateModel
import TollgateSQLite
import TollgateTestSupport
import TollgateTesting

@testable import TollgateEmulator

/// `POST /v1/keys` counts the account's active keys and creates the new one in one
/// transaction: concurrent creates never leave more than 50 active. (On the SQLite store;
/// the Firestore driver runs the same transaction, whose query Firestore locks.)
@Suite struct AccountAPIKeyLimitTests {
    @Test func concurrentCreates_neverPassTheActiveKeyLimit() async throws {
        let api = try LocalAccountAPI()
        let (clock, ports) = (api.clock, api.ports)
        try await ports.store.set(try DocumentPath("users/user_a"), ["accountId": .string("acct_a")])
        // 40 active keys already: 10 more fit.
        let hasher = try APIKeys(pepper: LocalEnvironment.keyPepper)
        for index in 0..<40 {
            let key = APIKeys.generate(mode: .live)
            let record = APIKeyRecord(
                accountId: "acct_a", displayPrefix: APIKeys.displayPrefix(of: key), name: "k\(index)", created: clock.now(),
                expires: nil, revoked: nil)
            try await ports.store.create(
                try DocumentPath(collection: APIKeyRecord.collection, id: hasher.hash(key)), try FieldValueEncoder().encode(record))
        }
        let requests = try (0..<20).map { _ in
            try api.request("POST", "/v1/keys", as: "user_a", body: .object(["name": .string("concurrent")]))
        }
        let function = api.function
        // Transactions that keep colliding end in 503 with Retry-After, which the dashboard
        // retries; every create ends in 201 or 409.
        let statuses = await withTaskGroup(of: Int.self) { group in
            for request in requests {
                group.addTask {
                    var status = await function.deliver(request).status
                    for _ in 0..<50 where status == 503 { status = await function.deliver(request).status }
                    return status
                }
            }
            return await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 201 }.count == 10, "\(statuses.sorted())")
        #expect(statuses.filter { $0 == 409 }.count == 10, "\(statuses.sorted())")
        let stored = try await ports.store.query(
            DocumentQuery(collection: APIKeyRecord.collection).filter("accountId", .equal, .string("acct_a")))
        #expect(stored.count == 50, "exactly the limit, never past it")
    }
}
