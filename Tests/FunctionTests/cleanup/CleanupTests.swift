import Foundation
import Testing
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

@testable import Cleanup

/// cleanup deletes each kind of record once it is past its retention, and only then; a
/// dry run counts the same and deletes nothing; pages end anywhere consistently; a ledger
/// day that was never exported is kept whatever its age.
@Suite struct CleanupTests {
    static let now = Timestamp(rfc3339: "2026-12-07T03:15:00Z")!
    static func daysAgo(_ days: Int64) -> Timestamp { now.adding(seconds: -days * 86_400) }

    struct Seeded {
        let store: SQLiteDocumentStore
        let cleanup: CleanupFunction

        init(pageSize: Int = 500) async throws {
            let database = try temporaryDatabase()
            store = SQLiteDocumentStore(database)
            cleanup = CleanupFunction(
                store: store, blobs: SQLiteBlobStore(database), layout: .init(), retention: Retention(), pageSize: pageSize)
        }

        func put(_ collection: String, _ id: String, _ fields: [String: FieldValue]) async throws {
            try await store.set(try DocumentPath(collection: collection, id: id), fields)
        }

        func exists(_ collection: String, _ id: String) async throws -> Bool {
            try await store.get(try DocumentPath(collection: collection, id: id)) != nil
        }
    }

    /// One record of each kind just past its retention (defaults: keys 90 days, markers
    /// and dead letters 30) and one just inside it.
    func seed(_ seeded: Seeded) async throws {
        try await seeded.put("sessions", "gone", ["expires": .timestamp(Self.now.adding(seconds: -1))])
        try await seeded.put("sessions", "kept", ["expires": .timestamp(Self.now.adding(seconds: 60))])
        try await seeded.put(APIKeyRecord.collection, "expired", ["expires": .timestamp(Self.daysAgo(91))])
        try await seeded.put(APIKeyRecord.collection, "expiredRecently", ["expires": .timestamp(Self.daysAgo(89))])
        try await seeded.put(APIKeyRecord.collection, "revoked", ["revoked": .timestamp(Self.daysAgo(91))])
        try await seeded.put(APIKeyRecord.collection, "revokedRecently", ["revoked": .timestamp(Self.daysAgo(89))])
        try await seeded.put(StripeEventMarker.collection, "evt_old", ["created": .integer(Self.daysAgo(31).secondsSinceEpoch)])
        try await seeded.put(StripeEventMarker.collection, "evt_new", ["created": .integer(Self.daysAgo(29).secondsSinceEpoch)])
        try await seeded.put(
            ClerkEventMarker.collection, "msg_old", ["timestamp": .integer(Self.daysAgo(31).microsecondsSinceEpoch / 1_000)])
        try await seeded.put(
            ClerkEventMarker.collection, "msg_new", ["timestamp": .integer(Self.daysAgo(29).microsecondsSinceEpoch / 1_000)])
        try await seeded.put(DeadLetter.collection, "old", ["received": .timestamp(Self.daysAgo(31))])
        try await seeded.put(DeadLetter.collection, "new", ["received": .timestamp(Self.daysAgo(29))])
    }

    static let gone = [
        ("sessions", "gone"), (APIKeyRecord.collection, "expired"), (APIKeyRecord.collection, "revoked"),
        (StripeEventMarker.collection, "evt_old"), (ClerkEventMarker.collection, "msg_old"), (DeadLetter.collection, "old"),
    ]
    static let kept = [
        ("sessions", "kept"), (APIKeyRecord.collection, "expiredRecently"), (APIKeyRecord.collection, "revokedRecently"),
        (StripeEventMarker.collection, "evt_new"), (ClerkEventMarker.collection, "msg_new"), (DeadLetter.collection, "new"),
    ]

    func counts(_ counts: CleanupFunction.Counts) -> [String: Int] {
        Dictionary(uniqueKeysWithValues: counts.byCategory.map { ($0.0, $0.1) })
    }

    @Test func eachKind_goesOncePastItsRetention_andNotBefore() async throws {
        let seeded = try await Seeded()
        try await seed(seeded)
        let counted = counts(try await seeded.cleanup.run(now: Self.now, dryRun: false))
        #expect(
            counted == [
                "sessions": 1, "expiredKeys": 1, "revokedKeys": 1, "stripeEvents": 1, "clerkEvents": 1, "deadLetters": 1,
                "ledgerEntries": 0, "ledgerDaysUnverified": 0, "exportObjects": 0,
            ])
        for (collection, id) in Self.gone { #expect(try await !seeded.exists(collection, id), "\(collection)/\(id) is past retention") }
        for (collection, id) in Self.kept { #expect(try await seeded.exists(collection, id), "\(collection)/\(id) is within retention") }
        let again = counts(try await seeded.cleanup.run(now: Self.now, dryRun: false))
        #expect(again.values.allSatisfy { $0 == 0 }, "a second run finds nothing: \(again)")
    }

    @Test func aDryRun_countsWhatWouldGo_andDeletesNothing() async throws {
        let seeded = try await Seeded(pageSize: 2)
        try await seed(seeded)
        for index in 0..<5 { try await seeded.put("sessions", "gone-\(index)", ["expires": .timestamp(Self.daysAgo(1))]) }
        let counted = counts(try await seeded.cleanup.run(now: Self.now, dryRun: true))
        #expect(counted["sessions"] == 6, "pages of 2 walk past each other without deleting")
        #expect(counted["deadLetters"] == 1)
        for (collection, id) in Self.gone + Self.kept { #expect(try await seeded.exists(collection, id)) }
    }

    @Test func pagesSmallerThanWhatGoes_deleteItAll() async throws {
        let seeded = try await Seeded(pageSize: 2)
        for index in 0..<5 { try await seeded.put("sessions", "gone-\(index)", ["expires": .timestamp(Self.daysAgo(1))]) }
        let counted = counts(try await seeded.cleanup.run(now: Self.now, dryRun: false))
        #expect(counted["sessions"] == 5)
        for index in 0..<5 { #expect(try await !seeded.exists("sessions", "gone-\(index)")) }
    }

    /// The ledger goes only for a day that was exported and verifies: a day older than the
    /// retention that nobody exported keeps every entry.
    @Test func aLedgerDayNeverExported_isKept_whateverItsAge() async throws {
        let seeded = try await Seeded()
        let old = Self.daysAgo(500)
        let record = UsageRecord(
            requestId: "req_old", accountId: "acct_1", keyId: nil, time: old, endpoint: "/v1/run", units: 3, recorded: old)
        let path = try DocumentPath(collection: UsageRecord.collection, id: UsageRecord.ledgerID(accountId: "acct_1", requestId: "req_old"))
        try await seeded.store.set(path, try FieldValueEncoder().encode(record))
        let counted = counts(try await seeded.cleanup.run(now: Self.now, dryRun: false))
        #expect(counted["ledgerEntries"] == 0)
        #expect(try await seeded.store.get(path) != nil)
    }
}
