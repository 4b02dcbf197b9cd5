import TollgateModel

/// How a consuming request's units are decided, chosen once at start-up
/// (docs/quota-leases.md): a transaction per batch (``QuotaCombiner``, strict mode), leases
/// held in memory (``QuotaLeases``, the default) or leases held in Redis (``RedisQuota``).
package protocol QuotaEngine: Sendable {
    func consume(_ claim: QuotaBook.Claim, accountId: String) async throws -> QuotaBook.Consumption
    /// Entitlements changed: nothing held for the account is spent before it is read afresh.
    func invalidate(_ accountId: String) async
    /// SIGTERM: what this instance holds goes back to the windows.
    func returnAll() async
}

extension QuotaCombiner: QuotaEngine {
    /// Strict mode holds nothing between requests.
    package func invalidate(_ accountId: String) async {}
    package func returnAll() async {}
}

extension QuotaLeases: QuotaEngine {}
extension RedisQuota: QuotaEngine {}
