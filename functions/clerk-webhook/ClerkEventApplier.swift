import Foundation
import Logging
import TollgateModel
import TollgateRuntime

/// Applies one verified Clerk event exactly once: the user, organization or membership
/// record, the account it owns, the revocation of a closed account's keys, the event's
/// dedupe marker and (when an account closes) an `entitlements-changed` outbox entry
/// commit in one transaction.
///
/// Svix redelivers for days in no particular order, so every record keeps the stamp of
/// the last event applied (``ClerkEventStamp``) and an older event leaves it alone.
/// Deleting a user or an organization is final whatever order the events arrive in:
/// Clerk never reuses an id, and a closed account never reopens.
public struct ClerkEventApplier: Sendable {
    public enum Outcome: String, Sendable {
        case applied
        /// A newer event (or the deletion) was already applied; only the marker was written.
        case stale
        case duplicate
        /// A type Tollgate does not act on; nothing was written.
        case ignored
    }

    /// The keys one event revokes at most: a commit holds 500 writes. A closed account
    /// admits no request whatever its keys say, so a key past this bound still cannot
    /// be used; it stays unrevoked on the record (the log line says how many).
    static let revocationsPerEvent = 450

    let store: any DocumentStore
    let publisher: any Publisher
    let catalog: TierCatalog

    public init(store: any DocumentStore, publisher: any Publisher, catalog: TierCatalog = .standard) {
        self.store = store
        self.publisher = publisher
        self.catalog = catalog
    }

    func apply(_ event: ClerkEvent, messageId: String, logger: Logger) async throws -> Outcome {
        guard let change = event.change else { return .ignored }
        let markerPath = try DocumentPath(collection: ClerkEventMarker.collection, id: messageId)
        let outboxPath = try DocumentPath(collection: OutboxEntry.collection, id: messageId)
        let marker = try FieldValueEncoder().encode(ClerkEventMarker(type: event.type, timestamp: event.timestamp, subject: event.subject))
        let applier = self

        let (outcome, pending) = try await store.runTransaction { transaction -> (Outcome, OutboxEntry?) in
            if try await transaction.get(markerPath) != nil {
                // Already applied; finish a publish a crash may have cut short.
                return (.duplicate, try await transaction.get(outboxPath)?.decode(OutboxEntry.self))
            }
            let (outcome, entry) = try await applier.applying(change, event: event, messageId: messageId, in: transaction, logger: logger)
            try transaction.create(markerPath, marker)
            guard let entry else { return (outcome, nil) }
            try transaction.create(outboxPath, try FieldValueEncoder().encode(entry))
            return (outcome, entry)
        }
        if let pending { try await pending.publish(through: publisher, clearing: outboxPath, in: store, logger: logger) }
        return outcome
    }

    /// The event's writes. - Returns: the outcome, and what to publish once they commit:
    /// the account it closed; else, for a deleted user or a changed membership, the
    /// sessions auth-validator must stop taking from its cache.
    private func applying(
        _ change: ClerkEvent.Change, event: ClerkEvent, messageId: String, in transaction: any DocumentTransaction, logger: Logger
    ) async throws -> (Outcome, OutboxEntry?) {
        let cause = ("clerkEventId", messageId)
        let stamp = ClerkEventStamp(timestamp: event.timestamp, deletion: change.isDeletion, messageId: messageId)
        switch change {
        case .user(let id, let deleted):
            let path = try DocumentPath(collection: UserRecord.collection, id: id)
            let current = try await transaction.get(path)?.decode(UserRecord.self)
            guard Self.supersedes(stamp, deleted: current?.deleted, last: current?.lastEvent) else { return (.stale, nil) }
            var record = UserRecord(accountId: current?.accountId ?? id, lastEvent: stamp, deleted: deleted ? stamp.time : nil)
            // Firestore reads everything before it writes anything in a transaction.
            let settled = try await settleAccount(
                record.accountId, owner: AccountOwner(kind: .user, id: id), closing: record.deleted, in: transaction, logger: logger)
            let linkedAccount = record.accountId
            // A teammate linked to someone else's account leaves it as it is: only the link goes.
            if deleted, !settled.owned { record.accountId = id }
            try transaction.set(path, try FieldValueEncoder().encode(record))
            if let closed = settled.closed { return (.applied, try OutboxEntry.entitlementsChanged(closed, cause: cause, userId: id)) }
            guard deleted else { return (.applied, nil) }
            return (.applied, OutboxEntry.sessionsChanged(accountId: linkedAccount, userId: id, organizationId: nil, cause: cause))
        case .organization(let id, let deleted):
            let path = try DocumentPath(collection: OrganizationRecord.collection, id: id)
            let current = try await transaction.get(path)?.decode(OrganizationRecord.self)
            guard Self.supersedes(stamp, deleted: current?.deleted, last: current?.lastEvent) else { return (.stale, nil) }
            var record = OrganizationRecord(accountId: current?.accountId ?? id, lastEvent: stamp, deleted: deleted ? stamp.time : nil)
            let settled = try await settleAccount(
                record.accountId, owner: AccountOwner(kind: .organization, id: id), closing: record.deleted, in: transaction,
                logger: logger)
            if deleted, !settled.owned { record.accountId = id }
            try transaction.set(path, try FieldValueEncoder().encode(record))
            return (.applied, try settled.closed.map { try OutboxEntry.entitlementsChanged($0, cause: cause) })
        case .membership(let organization, let user, let role, let deleted):
            let path = try DocumentPath(collection: OrganizationRecord.memberships(of: organization), id: user)
            let current = try await transaction.get(path)?.decode(MembershipRecord.self)
            // A member removed and invited again is a member again: only order decides.
            if let current, stamp <= current.lastEvent { return (.stale, nil) }
            let record = MembershipRecord(role: role, lastEvent: stamp, removed: deleted ? stamp.time : nil)
            try transaction.set(path, try FieldValueEncoder().encode(record))
            // A removal or another role: the member's cached sessions must not outlive it.
            guard deleted || current.map({ $0.role != role || $0.removed != nil }) == true else { return (.applied, nil) }
            return (
                .applied, OutboxEntry.sessionsChanged(accountId: organization, userId: user, organizationId: organization, cause: cause)
            )
        }
    }

    /// Whether an event stamped `stamp` changes a user or organization record: never after
    /// its deletion; a deletion always; anything else when newer than the last applied.
    static func supersedes(_ stamp: ClerkEventStamp, deleted: Timestamp?, last: ClerkEventStamp?) -> Bool {
        if deleted != nil { return false }
        if stamp.deletion { return true }
        return last.map { $0 < stamp } ?? true
    }

    /// Makes sure the owner's account exists (Free until Stripe says otherwise) and names
    /// its owner; on `closing`, closes it and revokes its keys as of the deletion, but only
    /// when `owner` owns it: a linked teammate's deletion never closes the owner's account.
    /// - Returns: the account when this closed it, and whether `owner` owns it.
    private func settleAccount(
        _ accountId: String, owner: AccountOwner, closing: Timestamp?, in transaction: any DocumentTransaction, logger: Logger
    ) async throws -> (closed: Account?, owned: Bool) {
        let path = try DocumentPath(collection: Account.collection, id: accountId)
        let current = try await transaction.get(path)?.decode(Account.self)
        // Another's account is never created, claimed or closed on this one's behalf.
        if let current, let other = current.owner, other != owner { return (nil, false) }
        var account = current ?? Account(id: accountId, tier: .free, entitlements: catalog.entitlements(for: .free))
        // An account an operator or Stripe made first gets its owner; one already owned keeps it.
        if account.owner == nil { account.owner = owner }
        var revocations: [(DocumentPath, APIKeyRecord)] = []
        if let closing, account.closed == nil {
            account.closed = closing
            let keys = try await transaction.query(
                DocumentQuery(collection: APIKeyRecord.collection).filter("accountId", .equal, .string(accountId)))
            for key in keys {
                var record = try key.decode(APIKeyRecord.self)
                guard record.revoked.map({ $0 > closing }) ?? true else { continue }
                record.revoked = closing
                revocations.append((key.path, record))
            }
            if revocations.count > Self.revocationsPerEvent {
                logger.warning(
                    "closed account has more keys than one commit can revoke; the rest are refused by the closing alone",
                    metadata: ["accountId": "\(accountId)", "keys": "\(revocations.count)"])
                revocations.removeLast(revocations.count - Self.revocationsPerEvent)
            }
        }
        guard account != current else { return (nil, true) }
        try transaction.set(path, try FieldValueEncoder().encode(account))
        for (keyPath, record) in revocations { try transaction.set(keyPath, try FieldValueEncoder().encode(record)) }
        return (current?.closed == nil && account.closed != nil ? account : nil, true)
    }
}

extension ClerkEvent.Change {
    var isDeletion: Bool {
        switch self {
        case .user(_, let deleted), .organization(_, let deleted): deleted
        case .membership(_, _, _, let deleted): deleted
        }
    }
}
