import TollgateModel

/// Grants, top-ups and returns of a lease written without a transaction (docs/quota-leases.md).
///
/// A transaction that reads the window locks it: two instances granting at once wait on
/// each other (production Firestore aborts one; Google's emulator times one out after
/// 2 s), and every write of the window queues behind them. Here a grant is one write of
/// increments instead: `used` and the lease's `granted` grow by the units asked for, and
/// the write reads back `used`, `limit` and `holders` in the same atomic step. The store
/// serialises writes of one document, so what the window had before this grant is exact,
/// and the grant is judged against it by the same rule a transaction applies
/// (``LeasePolicy/grant(desired:remaining:limit:others:need:)``); what does not fit goes
/// back in a second write. Only the holder writes its own entry of `leases`, so it knows
/// what the entry holds, and every write checks that the entry holds what it expects.
extension QuotaBook {
    /// A lease as its holder knows it, every write of it answered.
    struct KnownLease: Sendable {
        var lease: QuotaLease
        /// Units of `lease.granted` spent by the holder.
        var spent: Int64
        /// The start of the window it was granted in.
        var windowStart: Timestamp
    }

    /// Settles and refills one instance's lease without a transaction: a top-up of `held`
    /// (`topUp`), or a new lease named `newLease` that replaces `held` (returning what it did
    /// not spend) in the same write, or, when nothing can be granted, the return alone.
    ///
    /// Answers nil, having written nothing (a new window aside), when the window must first
    /// be changed by a transaction: ending within the give-back margin
    /// (``LeasePolicy/givesBack(to:at:)``: a return landing in the next window would free
    /// units never counted there), holding leases to sweep, counting holders that disagree
    /// with its leases, or below the limit of the account's entitlements (an upgrade).
    /// - Throws: when a write failed or its answer was lost. What the window holds of this
    ///   lease is then unknown, and the holder's next refill settles it by transaction.
    func leaseWithoutTransaction(
        accountId: String, instance: String, held: KnownLease?, topUp: Bool, newLease: String,
        desired: Int64, need: Int64, check: @escaping @Sendable (Account) -> Bool = { _ in true }, policy: LeasePolicy,
        now: Timestamp
    ) async throws -> LeaseGrant? {
        let path = try DocumentPath(collection: QuotaWindow.collection, id: accountId)
        // Read afresh, without a lock, so that what is asked for fits what the window holds
        // now, not at this holder's last write: a grant that asks too much holds the excess
        // until its second write, and requests deciding the last units meanwhile find it gone.
        async let reading = store.get(path)
        let account = try await self.account(accountId)
        let snapshot = try await reading
        guard let window = try await current(path, read: snapshot, for: account, check: check, now: now) else { return nil }
        // A lease held in a window that has ended stays counted there: the new one knows none.
        let held = held?.windowStart == window.start ? held : nil
        if topUp, held == nil { return nil }
        let leases = window.leases ?? [:]
        let sweepable = leases.values.contains { now >= $0.expires.adding(seconds: policy.sweepAfterSeconds) }
        guard !sweepable, Int64(leases.count) == (window.holders ?? 0), !window.hasEnded(at: now), policy.givesBack(to: window, at: now)
        else { return nil }
        // The window holds of this lease exactly what its holder knows.
        guard leases[instance]?.id == held?.lease.id, leases[instance]?.granted == held?.lease.granted else { return nil }

        // An upgrade raises the window's limit, and every decision must see it: by transaction.
        guard window.limit >= account.entitlements.monthlyQuotaUnits else { return nil }
        let grantable = account.admitsRequests && check(account)
        let unspent = topUp ? 0 : held.map { max(0, $0.lease.granted - $0.spent) } ?? 0
        let holders = max(1, Int(window.holders ?? 0) + (held == nil ? 1 : 0))
        let block = policy.maxBlock(limit: window.limit, need: 1)
        // What the other holders may hold, as a transaction would count it (live leases).
        let others = policy.othersHolding(leases, besides: instance, at: now)
        let asked =
            grantable
            ? policy.grant(
                desired: desired, remaining: window.limit - window.used + unspent, limit: window.limit, others: others, need: need)
            : 0
        let fields = LeaseFields(instance: instance)
        let floor = FieldValue.integer(account.entitlements.monthlyQuotaUnits)

        guard asked > 0 else {
            guard let held else { return LeaseGrant(account: account, window: window, lease: nil, holders: holders) }
            if topUp { return LeaseGrant(account: account, window: window, lease: held.lease, holders: holders) }
            // Nothing to grant: the return alone.
            let read = try await write(
                path, [fields.entry: nil],
                [.increment("used", .integer(-unspent)), .maximum("limit", floor), .increment("holders", .integer(-1))])
            var after = window
            (after.used, after.limit, after.holders) = (read[0], read[1], read[2])
            return LeaseGrant(account: account, window: after, lease: nil, holders: max(1, Int(read[2])))
        }

        let id = topUp ? held!.lease.id : newLease
        let expires = now.adding(seconds: policy.ttlSeconds)
        // A new lease takes the place of the held one: its `granted` starts again from 0.
        let grantedBefore = topUp ? held!.lease.granted : 0
        let read = try await write(
            path, [fields.id: .string(id), fields.expires: .timestamp(expires)],
            [
                .increment("used", .integer(asked - unspent)),
                .increment(fields.granted, .integer(grantedBefore + asked - (held?.lease.granted ?? 0))),
                .maximum("limit", floor), .increment("holders", .integer(held == nil ? 1 : 0)),
            ])
        let (usedAfter, granted, limit, holdersAfter) = (read[0], read[1], read[2], read[3])
        try expect(granted, grantedBefore + asked, lease: instance, on: accountId)
        // Judged again on what the window held just before this write: holders that came
        // since the read count as holding a block each.
        let newcomers = max(0, Int(holdersAfter) - holders)
        let fits = policy.grant(
            desired: asked, remaining: limit - (usedAfter - asked), limit: limit,
            others: others + Array(repeating: block, count: newcomers), need: need)
        var after = window
        (after.used, after.limit, after.holders) = (usedAfter, limit, holdersAfter)
        var lease = QuotaLease(id: id, granted: granted, expires: expires)
        if fits < asked {
            let back = asked - fits
            if fits == 0, !topUp {
                let read = try await write(
                    path, [fields.entry: nil], [.increment("used", .integer(-asked)), .increment("holders", .integer(-1))])
                (after.used, after.holders) = (read[0], read[1])
                return LeaseGrant(account: account, window: after, lease: nil, holders: max(1, Int(read[1])))
            }
            (lease, after.used) = try await trim(accountId: accountId, instance: instance, held: lease, by: back)
        }
        return LeaseGrant(account: account, window: after, lease: lease, holders: max(1, Int(holdersAfter)))
    }

    /// What a holder of `unspent` units may keep of them now: what the window would grant
    /// it if it gave them all back (its share above the reserve, at most a block). nil when
    /// the window is not stored, or too near its end for units to be given back.
    func keepable(accountId: String, instance: String, unspent: Int64, policy: LeasePolicy, now: Timestamp) async throws -> Int64? {
        let path = try DocumentPath(collection: QuotaWindow.collection, id: accountId)
        guard let window = try await store.get(path)?.decode(QuotaWindow.self), policy.givesBack(to: window, at: now) else { return nil }
        return policy.grant(
            desired: unspent, remaining: window.limit - window.used + unspent, limit: window.limit,
            others: policy.othersHolding(window.leases, besides: instance, at: now), need: 1)
    }

    /// Gives `units` of a held lease back to the window without a transaction: `used` and the
    /// lease's `granted` go down together. Its holder has stopped spending them first.
    /// - Throws: when the write failed or its answer was lost (the lease is then settled by
    ///   transaction), or the lease did not hold what its holder knew.
    /// - Returns: the lease, and the window's `used`, after the write.
    func trim(accountId: String, instance: String, held: QuotaLease, by units: Int64) async throws -> (QuotaLease, used: Int64) {
        let path = try DocumentPath(collection: QuotaWindow.collection, id: accountId)
        let fields = LeaseFields(instance: instance)
        let read = try await write(path, [:], [.increment("used", .integer(-units)), .increment(fields.granted, .integer(-units))])
        try expect(read[1], held.granted - units, lease: instance, on: accountId)
        var trimmed = held
        trimmed.granted = read[1]
        return (trimmed, read[0])
    }

    /// A lease whose `granted` is not what its holder wrote was changed by someone else
    /// (a sweep, a roll-over): the holder marks it uncertain and settles it by transaction;
    /// the request waiting on it may try again (503).
    private func expect(_ granted: Int64, _ written: Int64, lease instance: String, on accountId: String) throws {
        guard granted != written else { return }
        throw TollgateError(.unavailable, "the lease of \(instance) on \(accountId) holds \(granted) units, not the \(written) written")
    }

    /// The window in force: the one read, or a new account's first window, or the next
    /// window once the one read has ended, written without a transaction when a request
    /// would count units in it (a refusal alone writes none): a create, or a replacement
    /// on the condition that nobody wrote the ended window since it was read. When another
    /// instance wrote first, its window is read. nil when the request would be refused, or
    /// the window could not be settled this way.
    private func current(_ path: DocumentPath, read: DocumentSnapshot?, for account: Account, check: (Account) -> Bool, now: Timestamp)
        async throws -> QuotaWindow?
    {
        let stored = try read?.decode(QuotaWindow.self)
        if let stored, !stored.hasEnded(at: now) { return stored }
        guard account.admitsRequests, check(account) else { return nil }
        let window = QuotaWindow.current(stored, account: account, period: period, now: now)
        do {
            let fields = try FieldValueEncoder().encode(window)
            try await store.commit([
                read.map { Write(path: path, operation: .set(fields), precondition: .updateTime($0.updateTime)) } ?? .create(path, fields)
            ])
            return window
        } catch let error as TollgateError where error.code == .alreadyExists || error.code == .failedPrecondition {
            let winner = try await store.get(path)?.decode(QuotaWindow.self)
            return winner.flatMap { $0.hasEnded(at: now) ? nil : $0 }
        }
    }

    /// One update of the window (which must exist) and the integers its transforms left.
    private func write(_ path: DocumentPath, _ fields: [FieldPath: FieldValue?], _ transforms: [Write.Transform]) async throws -> [Int64] {
        let result = try await store.commitWithResults([.update(path, fields, transforms: transforms)])
        let values = (result.transformResults.first ?? []).compactMap { value -> Int64? in
            if case .integer(let integer) = value { return integer }
            return nil
        }
        guard values.count == transforms.count else {
            throw TollgateError(.internal, "the window \(path) holds a non-integer used, limit, holders or lease")
        }
        return values
    }
}

/// The field paths of one instance's entry in `leases`: the instance's name is one segment
/// whatever characters it holds.
private struct LeaseFields {
    let entry: FieldPath
    let id: FieldPath
    let granted: FieldPath
    let expires: FieldPath

    init(instance: String) {
        entry = FieldPath(segments: ["leases", instance])
        id = FieldPath(segments: ["leases", instance, "id"])
        granted = FieldPath(segments: ["leases", instance, "granted"])
        expires = FieldPath(segments: ["leases", instance, "expires"])
    }
}
