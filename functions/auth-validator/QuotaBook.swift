import TollgateModel

/// Reads and consumes quota. Consuming is one transaction over the account and its
/// window, so the limit holds under any concurrency and across processes, and the
/// entitlements used are never stale.
struct QuotaBook: Sendable {
    let store: any DocumentStore
    let period: QuotaPeriod
    let catalog: TierCatalog

    /// Accounts that never subscribed are on Free.
    func defaultAccount(_ id: String) -> Account {
        Account(id: id, tier: .free, entitlements: catalog.entitlements(for: .free))
    }

    func account(_ id: String) async throws -> Account {
        try await store.get(try DocumentPath(collection: Account.collection, id: id))?.decode(Account.self) ?? defaultAccount(id)
    }

    /// The current window without changing it (a window that has ended reads as the next one).
    func window(for account: Account, now: Timestamp) async throws -> QuotaWindow {
        let stored = try await store.get(try DocumentPath(collection: QuotaWindow.collection, id: account.id))?.decode(QuotaWindow.self)
        return Self.current(stored, account: account, period: period, now: now)
    }

    static func current(_ stored: QuotaWindow?, account: Account, period: QuotaPeriod, now: Timestamp) -> QuotaWindow {
        if let stored, now < stored.end { return stored }
        return QuotaWindow.starting(at: now, period: period, account: account)
    }

    enum Consumption: Sendable {
        case admitted(Account, QuotaWindow)
        case exceeded(Account, QuotaWindow)
        case refused(Account)
    }

    /// Consumes `cost` units if they fit; `check` runs on the fresh account first (a
    /// refusal there consumes nothing).
    func consume(_ cost: Int64, accountId: String, now: Timestamp, check: @escaping @Sendable (Account) -> Bool) async throws -> Consumption
    {
        let accountPath = try DocumentPath(collection: Account.collection, id: accountId)
        let quotaPath = try DocumentPath(collection: QuotaWindow.collection, id: accountId)
        let period = self.period
        let fallback = defaultAccount(accountId)
        // Contention is expected on a busy account: retry for longer than the default.
        return try await store.runTransaction(maxAttempts: 30) { transaction in
            let account = try await transaction.get(accountPath)?.decode(Account.self) ?? fallback
            let stored = try await transaction.get(quotaPath)?.decode(QuotaWindow.self)
            guard check(account) else { return .refused(account) }
            var window = Self.current(stored, account: account, period: period, now: now)
            window.limit = window.effectiveLimit(entitlements: account.entitlements)
            guard window.used + cost <= window.limit else {
                if window != stored { try transaction.set(quotaPath, try FieldValueEncoder().encode(window)) }
                return .exceeded(account, window)
            }
            window.used += cost
            try transaction.set(quotaPath, try FieldValueEncoder().encode(window))
            return .admitted(account, window)
        }
    }
}
