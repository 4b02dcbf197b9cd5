import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateModel
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

/// The package's root folder, found from this file's location.
package let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// The folder of this test process's scratch files, removed when the process exits. Each
/// run also first removes the folders of runs whose process has ended (one that crashed).
package let scratchRoot: URL = {
    let files = FileManager.default
    let prefix = "tollgate-test-run-"
    EndedProcessFolders.remove(prefix: prefix)
    let root = files.temporaryDirectory.appendingPathComponent("\(prefix)\(getpid())")
    try? files.createDirectory(at: root, withIntermediateDirectories: true)
    atexit {
        let files = FileManager.default
        try? files.removeItem(at: files.temporaryDirectory.appendingPathComponent("tollgate-test-run-\(getpid())"))
    }
    return root
}()

/// A fresh path under ``scratchRoot``: `name-UUID`, with `extension` when given.
package func scratchURL(_ name: String, extension suffix: String? = nil) -> URL {
    scratchRoot.appendingPathComponent("\(name)-\(UUID().uuidString)" + (suffix.map { ".\($0)" } ?? ""))
}

/// A fresh SQLite file in a scratch folder.
package func temporaryDatabase(clock: any TollgateModel.Clock = SystemClock()) throws -> SQLiteDatabase {
    try SQLiteDatabase(path: scratchURL("db").appendingPathComponent("state.db").path, clock: clock)
}

package func path(_ text: String) -> DocumentPath { try! DocumentPath(text) }

/// A logger whose lines the test can read.
package func capturingLogger(format: CloudLoggingHandler.Format = .json) -> (Logger, LogSink) {
    let sink = LogSink(capturing: true)
    let logger = Logger(label: "test") { label in CloudLoggingHandler(label: label, format: format, project: "tollgate-test", sink: sink) }
    return (logger, sink)
}

/// Expects `body` to throw a TollgateError with `code`; returns the error.
@discardableResult
package func expectCode<T>(_ code: TollgateError.Code, _ body: () async throws -> T) async -> TollgateError? {
    do {
        _ = try await body()
        Issue.record("expected \(code), but nothing was thrown")
        return nil
    } catch let error as TollgateError {
        if error.code != code { Issue.record("expected \(code), got \(error.code): \(error.message)") }
        return error
    } catch {
        Issue.record("expected \(code), got \(error)")
        return nil
    }
}

/// An account billed by Stripe customer `cus_{index}`: what usage-report reports for.
package func seedBilledAccount(_ store: any DocumentStore, index: Int) async throws {
    var account = Account(id: "acct_\(index)", tier: .pro, entitlements: TierCatalog.standard.entitlements(for: .pro))
    account.billing = BillingState(
        customerId: "cus_\(index)", subscriptionId: "sub_\(index)", priceId: nil, status: .active, currentPeriodStart: nil,
        currentPeriodEnd: nil, cancelAtPeriodEnd: false, trialEnd: nil, lastEventCreated: 0, lastEventId: "evt_0")
    try await store.create(try DocumentPath(collection: Account.collection, id: account.id), try FieldValueEncoder().encode(account))
}

/// An enterprise account with a monthly quota of `units`, and one API key for it
/// (stored as its keyed hash); returns the key.
package func seedKeyedAccount(_ store: any DocumentStore, id: String, units: Int64, pepper: String) async throws -> String {
    let key = APIKeys.generate(mode: .test)
    let entitlements = Entitlements(features: [], monthlyQuotaUnits: units, maxNodes: 1, maxDimensions: 1)
    try await store.set(
        try DocumentPath(collection: Account.collection, id: id),
        try FieldValueEncoder().encode(Account(id: id, tier: .enterprise, entitlements: entitlements)))
    let record = APIKeyRecord(
        accountId: id, displayPrefix: APIKeys.displayPrefix(of: key), name: nil, created: Timestamp(Date()), expires: nil, revoked: nil)
    try await store.create(
        try DocumentPath(collection: APIKeyRecord.collection, id: try APIKeys(pepper: pepper).hash(key)),
        try FieldValueEncoder().encode(record))
    return key
}

/// A thread-safe counter: answering closures, a load's progress.
package final class Counter: Sendable {
    private let value = Mutex(0)
    package init() {}
    package func next() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
    /// The count so far, without counting.
    package var count: Int { value.withLock { $0 } }
}

/// What a test handler received, safe to share across tasks.
package final class Recorder<Element: Sendable>: Sendable {
    package init() {}
    private let items = Mutex<[Element]>([])
    package func append(_ item: Element) { items.withLock { $0.append(item) } }
    package var all: [Element] { items.withLock { $0 } }
}
