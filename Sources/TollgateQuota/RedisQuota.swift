import Foundation
import Synchronization
import TollgateModel
import TollgateRedis

/// Leases of quota held in Redis (Memorystore) and shared by every instance
/// (`TOLLGATE_QUOTA_STORE=redis://…`, docs/quota-leases.md): Redis holds one lease per
/// account, taken from the window document like any instance's, and admits each request
/// with one atomic script, so instances never hold units of their own and a hot account's
/// document sees about one grant a second however many instances serve it.
///
/// The document store stays the source of truth: every unit Redis spends was counted in
/// the window's `used` when it was granted. Redis keys live under the server process's
/// `run_id`, so a restarted or failed-over server starts empty and never spends a block
/// twice: what the old server held is lost to the window (under-admission by at most one
/// block per account, paid back when the window rolls over).
package final class RedisQuota: Sendable {
    /// The name Redis's leases go by in the window's `leases`.
    static let holder = "memorystore"

    private struct Local {
        /// Accounts in their last units: decided per request until this time.
        var strictUntil: [ExactID: Timestamp] = [:]
        var refills: [ExactID: Task<Void, any Error>] = [:]
        /// Leases the window granted Redis whose install in Redis may have failed (a
        /// command that timed out): the next refill names them, so the window takes back
        /// whichever one Redis never spent from.
        var unconfirmed: [ExactID: [String]] = [:]
    }

    private let redis: RedisClient
    private let book: QuotaBook
    private let strict: QuotaCombiner
    /// Used while Redis cannot be reached: leases held in this instance's memory.
    private let fallback: QuotaLeases
    private let clock: any TollgateModel.Clock
    private let policy: LeasePolicy
    private let spawner: TaskSpawner
    private let local = Mutex(Local())
    private let failures = Mutex((count: 0, last: ""))
    /// The account as Redis last sent it, decoded: a request compares the text, and
    /// decodes only when a grant has changed it (not once per request).
    private let accounts = Mutex<[ExactID: (text: String, account: Account)]>([:])

    package init(
        redis: RedisClient, book: QuotaBook, strict: QuotaCombiner, fallback: QuotaLeases, clock: any TollgateModel.Clock,
        policy: LeasePolicy = LeasePolicy(), spawner: TaskSpawner = .tasks
    ) {
        self.redis = redis
        self.book = book
        self.strict = strict
        self.fallback = fallback
        self.clock = clock
        self.policy = policy
        self.spawner = spawner
    }

    /// Requests decided by the in-memory fallback because Redis failed them.
    package var fallbacks: Int { failures.withLock { $0.count } }
    /// Why Redis last failed a request.
    package var lastFailure: String { failures.withLock { $0.last } }

    package func consume(_ claim: QuotaBook.Claim, accountId: String) async throws -> QuotaBook.Consumption {
        let key = ExactID(accountId)
        let session: RedisClient.Session
        do { session = try await redis.session() } catch { return try await fallBack(claim, accountId: accountId, error) }
        for _ in 0..<3 {
            let now = clock.now()
            if let until = local.withLock({ $0.strictUntil[key] }), now < until {
                return try await strict.consume(claim, accountId: accountId)
            }
            let reply: RESPValue
            do {
                reply = try await session.evaluate(
                    Self.consumeScript, keys: [Self.key(accountId, session)],
                    arguments: [String(claim.cost), String(now.microsecondsSinceEpoch)])
            } catch { return try await fallBack(claim, accountId: accountId, error) }
            if let spent = Spent(reply) {
                guard let account = account(key, from: spent.accountText) else {
                    return try await strict.consume(claim, accountId: accountId)
                }
                guard claim.check(account) else {
                    _ = try? await session.evaluate(
                        Self.refundScript, keys: [Self.key(accountId, session)], arguments: [spent.lease, String(claim.cost)])
                    return .refused(account)
                }
                // Top up in the background before the block runs out (never a timer: Cloud
                // Run gives CPU to requests).
                if spent.remaining * 2 < spent.block {
                    startRefill(accountId, session: session, need: 1, closing: false, check: { _ in true })
                }
                return .admitted(account, spent.window)
            }
            // Nothing (usable) held for this request: one instance closes the lease (its
            // units go back, so the last ones can be decided per request) and takes a new
            // one; the others wait for it.
            let task = startRefill(accountId, session: session, need: claim.cost, closing: true, check: claim.check)
            do { try await task.value } catch RefillError.busy { break } catch {
                return try await fallBack(claim, accountId: accountId, error)
            }
        }
        return try await strict.consume(claim, accountId: accountId)
    }

    private func account(_ key: ExactID, from text: String?) -> Account? {
        guard let text else { return nil }
        if let cached = accounts.withLock({ $0[key] }), cached.text == text { return cached.account }
        guard let account = try? JSONDecoder().decode(Account.self, from: Data(text.utf8)) else { return nil }
        accounts.withLock { $0[key] = (text, account) }
        return account
    }

    private func fallBack(_ claim: QuotaBook.Claim, accountId: String, _ error: any Error) async throws -> QuotaBook.Consumption {
        failures.withLock { $0 = ($0.count + 1, "\(error)") }
        return try await fallback.consume(claim, accountId: accountId)
    }

    enum RefillError: Error { case busy }

    /// The account's refill on this instance: one at a time, and across instances one at a
    /// time by a short Redis lock (another holding it makes this one `busy`).
    @discardableResult
    private func startRefill(
        _ accountId: String, session: RedisClient.Session, need: Int64, closing: Bool, check: @escaping @Sendable (Account) -> Bool
    ) -> Task<Void, any Error> {
        let key = ExactID(accountId)
        return local.withLock { local in
            if let running = local.refills[key] { return running }
            let task = spawner.start {
                defer { self.local.withLock { $0.refills[key] = nil } }
                try await self.refill(accountId, session: session, need: need, closing: closing, check: check)
            }
            local.refills[key] = task
            return task
        }
    }

    private func refill(
        _ accountId: String, session: RedisClient.Session, need: Int64, closing: Bool, check: @escaping @Sendable (Account) -> Bool
    ) async throws {
        let key = Self.key(accountId, session)
        let token = UUID().uuidString
        // One refill at a time across instances, by a lock renewed while its refill runs
        // (and gone 10 s after a crashed holder): two at once would strand one block. Here
        // one request polls for the others.
        var polls = 0
        while try await session.command(["SET", Self.lockKey(accountId, session), token, "NX", "PX", "10000"]) != .simple("OK") {
            polls += 1
            guard polls <= 100 else { throw RefillError.busy }
            try await Task.sleep(for: .milliseconds(10))
            // Done when the lease another instance installed covers this request (a spend of 0).
            let now = clock.now()
            let peek = try await session.evaluate(Self.consumeScript, keys: [key], arguments: ["0", String(now.microsecondsSinceEpoch)])
            if let held = Spent(peek), held.remaining >= need { return }
        }
        let lock = Self.lockKey(accountId, session)
        // Renewed while this refill runs: one stalled past the lock's life (a starved
        // process) would otherwise overlap the next refill, which strands a block.
        let renewal = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(3))
                // A renew that fails (a command past its 500 ms deadline on a loaded machine)
                // is tried again at the next beat: one failure must not end the renewals of a
                // lock that lives 10 s.
                _ = try? await session.evaluate(Self.renewScript, keys: [lock], arguments: [token, "10000"])
            }
        }
        defer {
            renewal.cancel()
            _ = spawner.start { _ = try await session.evaluate(Self.unlockScript, keys: [lock], arguments: [token]) }
        }
        let now = clock.now()
        // Close the lease when asked or when it has expired (its unspent units go back);
        // else top it up.
        let taken = try await session.evaluate(
            Self.takeScript, keys: [key], arguments: [String(now.microsecondsSinceEpoch), closing ? "1" : "0"])
        let held = Taken(taken)
        let lastLasted = held.map { now.seconds(since: $0.refilled) } ?? .infinity
        // Smoothed as the in-memory leases' estimate is (a second's time constant): a burst
        // of a few requests in a millisecond is not a rate of thousands a second.
        let rate = held.map { Double($0.block - max(0, $0.remaining)) / max(1, lastLasted) } ?? 0
        let desired = policy.desired(
            ratePerSecond: rate, holders: 1, need: need, lastBlock: held?.block ?? 0,
            lastLasted: held.map { $0.remaining * 2 < $0.block ? lastLasted * 2 : lastLasted } ?? .infinity)
        let grant: QuotaBook.LeaseGrant
        let unconfirmed = local.withLock { $0.unconfirmed[ExactID(accountId)] ?? [] }
        do {
            grant = try await book.lease(
                accountId: accountId, instance: Self.holder, held: held?.lease, closing: held?.closing ?? false,
                // Settled by what Redis spent of what it was granted: a top-up the window
                // granted whose install in Redis failed goes back too.
                settling: .spent(max(0, (held?.granted ?? 0) - (held?.taken ?? 0))), unconfirmed: unconfirmed.filter { $0 != held?.lease },
                desired: desired, need: need, check: check, policy: policy, now: now)
            local.withLock { $0.unconfirmed[ExactID(accountId)] = nil }
        } catch {
            // The window still counts what was taken for the closed lease: put it back in
            // Redis (still closed), for the next refill to return.
            if let held, held.closing, held.taken > 0 {
                _ = try? await session.evaluate(Self.refundScript, keys: [key], arguments: [held.lease, String(held.taken)])
            }
            throw error
        }

        let fresh = held?.closing != false || held?.lease != grant.lease?.id
        guard let lease = grant.lease, lease.granted - (fresh ? 0 : held?.granted ?? 0) > 0 else {
            // Nothing granted to a waiting request: the account is in its last units (or
            // refused), decided per request for a second. A top-up that got nothing leaves
            // Redis spending what it holds.
            if closing { local.withLock { $0.strictUntil[ExactID(accountId)] = now.adding(seconds: 1) } }
            return
        }
        local.withLock { $0.strictUntil[ExactID(accountId)] = nil }
        let stopsSpending = lease.expires.adding(seconds: -policy.clockMarginSeconds)
        // Until Redis confirms the install, the window's lease may be one Redis never holds.
        local.withLock { $0.unconfirmed[ExactID(accountId), default: []].append(lease.id) }
        _ = try await session.evaluate(
            Self.installScript, keys: [key],
            arguments: [
                lease.id, String(fresh ? now.microsecondsSinceEpoch : held?.born ?? now.microsecondsSinceEpoch), String(lease.granted),
                String(stopsSpending.microsecondsSinceEpoch), String(grant.window.start.microsecondsSinceEpoch),
                String(grant.window.end.microsecondsSinceEpoch), String(grant.window.limit), String(grant.window.used),
                String(decoding: try JSONEncoder().encode(grant.account), as: UTF8.self),
                String(lease.granted - (fresh ? 0 : held?.granted ?? 0)),
                String(now.microsecondsSinceEpoch),
                // The key outlives the lease (a holder coming back returns what is unspent)
                // and ends with the window.
                String(grant.window.end.microsecondsSinceEpoch / 1_000),
            ])
        local.withLock { $0.unconfirmed[ExactID(accountId)]?.removeAll { $0 == lease.id } }
    }

    /// Waits for the refills under way on this instance (for tests and the simulator).
    package func settle() async {
        while let running = local.withLock({ $0.refills.values.first }) { _ = try? await running.value }
    }

    /// Entitlements changed: the next request closes Redis's lease (returning what is
    /// unspent) and reads the account afresh.
    package func invalidate(_ accountId: String) async {
        local.withLock { $0.strictUntil[ExactID(accountId)] = nil }
        fallback.invalidate(accountId)
        guard let session = try? await redis.session() else { return }
        _ = try? await session.evaluate(Self.expireScript, keys: [Self.key(accountId, session)], arguments: [])
    }

    /// SIGTERM: Redis's leases stay with Redis (other instances spend them); the fallback's go back.
    package func returnAll() async { await fallback.returnAll() }

    static func key(_ accountId: String, _ session: RedisClient.Session) -> String {
        "tollgate:\(session.serverRunID):quota:\(accountId)"
    }

    static func lockKey(_ accountId: String, _ session: RedisClient.Session) -> String {
        "tollgate:\(session.serverRunID):refill:\(accountId)"
    }

    /// What a consuming script answered when it spent.
    struct Spent {
        var remaining: Int64
        var lease: String
        /// The account as the last grant read it (JSON).
        var accountText: String?
        var window: QuotaWindow
        var block: Int64

        init?(_ reply: RESPValue) {
            guard let items = reply.array, items.count == 10, items[0].integer == 1, let remaining = items[1].integer,
                let lease = items[2].string, let limit = items[4].integer, let used = items[5].integer, let start = items[6].integer,
                let end = items[7].integer, let block = items[8].integer
            else { return nil }
            self.remaining = remaining
            self.lease = lease
            accountText = items[3].string
            // The window as of Redis's last grant, with what Redis still holds counted as remaining.
            window = QuotaWindow(
                start: Timestamp(microsecondsSinceEpoch: start), end: Timestamp(microsecondsSinceEpoch: end), limit: limit,
                used: max(0, used - remaining))
            self.block = block
        }
    }

    /// What the take script found held.
    struct Taken {
        var lease: String
        var closing: Bool
        var taken: Int64
        var remaining: Int64
        var block: Int64
        var refilled: Timestamp
        var born: Int64
        var granted: Int64

        init?(_ reply: RESPValue) {
            guard let items = reply.array, items.count == 8, let lease = items[0].string, let closing = items[1].integer,
                let taken = items[2].integer, let remaining = items[3].integer, let block = items[4].integer,
                let refilled = items[5].integer, let born = items[6].integer, let granted = items[7].integer
            else { return nil }
            self.lease = lease
            self.closing = closing == 1
            self.taken = taken
            self.remaining = remaining
            self.block = block
            self.refilled = Timestamp(microsecondsSinceEpoch: refilled)
            self.born = born
            self.granted = granted
        }
    }

    // The scripts. Timestamps are microseconds since the epoch (exact in Lua's doubles
    // until the year 2255); every script touches one account's keys only.

    /// Spends `cost` from the lease when it is valid and covers it: {1, remaining, lease,
    /// account, limit, used, start, end, block, refilled}; else {0}. A cost of 0 only looks.
    static let consumeScript = RedisScript(
        """
        local f = redis.call('HMGET', KEYS[1], 'remaining', 'expires', 'end', 'lease', 'account', 'limit', 'used', 'start', 'block', 'refilled')
        if not f[1] then return {0} end
        local now = tonumber(ARGV[2])
        if now >= tonumber(f[2]) or now >= tonumber(f[3]) or tonumber(f[1]) < tonumber(ARGV[1]) then return {0} end
        local remaining = tonumber(f[1])
        if tonumber(ARGV[1]) > 0 then remaining = redis.call('HINCRBY', KEYS[1], 'remaining', '-' .. ARGV[1]) end
        return {1, remaining, f[4], f[5], f[6], f[7], f[8], f[3], f[9], f[10]}
        """)

    /// Gives back a refused request's units, to the lease they came from only.
    static let refundScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'lease') == ARGV[1] then redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[2]) end
        return 0
        """)

    /// Reads the lease held; when it has expired, its window has ended or ARGV[2] is '1',
    /// closes it, taking its unspent units: {lease, closing, taken, remaining, block,
    /// refilled, born, granted}, or {} when nothing is held.
    static let takeScript = RedisScript(
        """
        local f = redis.call('HMGET', KEYS[1], 'lease', 'remaining', 'expires', 'end', 'block', 'refilled', 'born', 'granted')
        if not f[1] then return {} end
        local now = tonumber(ARGV[1])
        local remaining = tonumber(f[2])
        local closing = ARGV[2] == '1' or now >= tonumber(f[3]) or now >= tonumber(f[4])
        local taken = 0
        if closing then
          taken = math.max(0, remaining)
          redis.call('HSET', KEYS[1], 'remaining', 0, 'expires', 0)
        end
        return {f[1], closing and 1 or 0, taken, remaining, tonumber(f[5]), tonumber(f[6]), tonumber(f[7]), tonumber(f[8])}
        """)

    /// Installs a grant: a top-up of the lease held adds only what its total grew by (a
    /// repeated or late install adds nothing); a different lease replaces the one held only
    /// when it was born later (a late install of an older lease must not bring back units
    /// already spent). Returns the units added.
    static let installScript = RedisScript(
        """
        local f = redis.call('HMGET', KEYS[1], 'lease', 'granted', 'born')
        local added
        if f[1] == ARGV[1] then
          added = tonumber(ARGV[3]) - tonumber(f[2])
          if added <= 0 then return 0 end
          redis.call('HINCRBY', KEYS[1], 'remaining', added)
        elseif f[1] and tonumber(f[3]) >= tonumber(ARGV[2]) then
          return 0
        else
          added = tonumber(ARGV[3])
          redis.call('DEL', KEYS[1])
          redis.call('HSET', KEYS[1], 'lease', ARGV[1], 'born', ARGV[2], 'remaining', added)
        end
        redis.call('HSET', KEYS[1], 'granted', ARGV[3], 'expires', ARGV[4], 'start', ARGV[5], 'end', ARGV[6], 'limit', ARGV[7],
          'used', ARGV[8], 'account', ARGV[9], 'block', ARGV[10], 'refilled', ARGV[11])
        redis.call('PEXPIREAT', KEYS[1], ARGV[12])
        return added
        """)

    /// Ends the lease's spending (an invalidation), for the next request to close it;
    /// never creates a key (one without an expiry would stay for ever).
    static let expireScript = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'expires', 0) end
        return 0
        """)

    /// Releases the refill lock only when it is still this refill's.
    /// Extends the refill lock by ARGV[2] ms while it is still ARGV[1]'s.
    static let renewScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
        return 0
        """)

    static let unlockScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)
}
