import AuthValidator
import Foundation
import Logging
import Synchronization
import Testing
import TollgateAuth
import TollgateGoogle
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

/// Four auth-validator processes share one SQLite store; many concurrent requests at an
/// account with a limit of 1000 admit exactly 1000.
@Suite(.serialized) struct QuotaConcurrencyTests {
    /// Four auth-validator processes on one fresh SQLite store, and an account with a
    /// limit of 1,000 units and its key.
    struct Cluster {
        let store: any DocumentStore
        let key: String
        let validators: [RunningFunction]
        /// 503s sent again by ``load(_:workers:retrying:)``.
        let retries = Counter()
        var urls: [URL] { validators.map(\.url) }

        /// On a fresh SQLite file, or (`firestore`) on Google's Firestore emulator.
        init(_ name: String, settings: [String: String] = [:], firestore: GoogleEmulator.Lease? = nil) async throws {
            let pepper = "pepper-for-the-concurrency-test-0123456789"
            var environment = ["TOLLGATE_KEY_PEPPER": pepper]
            if let firestore {
                environment["TOLLGATE_STORE"] = "firestore://\(firestore.project)"
                environment["FIRESTORE_EMULATOR_HOST"] = firestore.host
                store = try GoogleCloud(environment: environment).firestore("firestore://\(firestore.project)")
            } else {
                let database = try SQLiteDatabase(path: scratchURL(name).appendingPathComponent("state.db").path)
                environment["TOLLGATE_STORE"] = "sqlite://\(database.path)"
                store = SQLiteDocumentStore(database)
            }
            key = try await seedKeyedAccount(store, id: "acct_load", units: 1_000, pepper: pepper)
            environment.merge(settings) { $1 }
            var validators: [RunningFunction] = []
            for _ in 0..<4 { validators.append(try await RunningFunction("auth-validator", environment: environment)) }
            self.validators = validators
        }

        /// `requests` requests from `workers` workers, round robin over the validators: their
        /// final statuses. With `retrying`, a 503 (contention) is sent again to the next
        /// instance after a pause, as a gateway retries it, up to 100 times.
        func load(_ requests: Int, workers: Int = 32, retrying: Bool = false) async throws -> [Int] {
            let statuses = Recorder<Int>()
            let (urls, key, retries) = (self.urls, self.key, self.retries)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        for index in stride(from: worker, to: requests, by: workers) {
                            var (status, _) = try await post(urls[index % urls.count], body: Data(), headers: ["X-API-Key": key])
                            for attempt in 1...100 where retrying && status == 503 {
                                _ = retries.next()
                                try await Task.sleep(for: .milliseconds(Int.random(in: 20...200)))
                                (status, _) = try await post(
                                    urls[(index + attempt) % urls.count], body: Data(), headers: ["X-API-Key": key])
                            }
                            statuses.append(status)
                        }
                    }
                }
                try await group.waitForAll()
            }
            return statuses.all
        }
    }

    /// Strict mode: a transaction per batch; contention answers 503 and the gateway retries.
    @Test func fourProcesses_inStrictMode_admitExactlyTheLimit() async throws {
        let cluster = try await Cluster("quota", settings: ["TOLLGATE_QUOTA_MODE": "strict"])
        let (store, key, validators, urls) = (cluster.store, cluster.key, cluster.validators, cluster.urls)

        let requests = 1_300
        let statuses = Recorder<Int>()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<32 {
                group.addTask {
                    var index = worker
                    while index < requests {
                        // A gateway retries a 503 (contention) on another instance.
                        var attempt = 0
                        while true {
                            let (status, _) = try await post(
                                urls[(index + attempt) % urls.count], body: Data(), headers: ["X-API-Key": key])
                            statuses.append(status)
                            if status == 503 {
                                attempt += 1
                                continue
                            }
                            break
                        }
                        index += 32
                    }
                }
            }
            try await group.waitForAll()
        }
        let all = statuses.all
        #expect(all.filter { $0 == 200 }.count == 1_000)
        #expect(all.filter { $0 == 429 }.count == 300)
        #expect(all.allSatisfy { [200, 429, 503].contains($0) })
        let window = try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self)
        #expect(window?.used == 1_000, "no consumption lost, none doubled")
        for validator in validators { #expect(try await validator.stop() == 0) }
        print("quota concurrency: 4 processes, \(requests) requests, \(all.filter { $0 == 503 }.count) retries after contention")
    }

    /// The same load in lease mode (the default): blocks held in memory never let the
    /// processes pass the limit, and SIGTERM returns what each still holds, so the window
    /// counts exactly what was admitted.
    @Test func fourProcesses_inLeaseMode_neverPassTheLimit_andReturnTheirLeasesOnSIGTERM() async throws {
        let cluster = try await Cluster("quota-lease")
        let (store, validators) = (cluster.store, cluster.validators)
        let statuses = try await cluster.load(1_300)
        let admitted = Int64(statuses.filter { $0 == 200 }.count)
        #expect(statuses.allSatisfy { [200, 429].contains($0) })
        #expect(admitted <= 1_000)
        let before = try #require(try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self))
        #expect(before.used >= admitted && before.used <= 1_000, "leased units are counted until returned")
        for validator in validators { #expect(try await validator.stop() == 0) }
        let after = try #require(try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self))
        #expect(after.used == admitted, "SIGTERM returned every unspent unit")
        #expect(after.leases?.isEmpty ?? true, "no lease is left")
        print("quota leases: 4 processes, 1300 requests, \(admitted) admitted, \(before.used - admitted) held at the end")
    }

    /// Leases held in Redis (`TOLLGATE_QUOTA_STORE`, a real redis-server): four processes
    /// share one lease, and demand above the limit is admitted exactly to it.
    @Test(Peer.redis.trait)
    func fourProcesses_withRedis_admitExactlyTheLimit() async throws {
        let redis = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { redis.kill() }
        let cluster = try await Cluster("quota-redis", settings: ["TOLLGATE_QUOTA_STORE": redis.url])
        let (store, validators) = (cluster.store, cluster.validators)
        let statuses = try await cluster.load(1_300)
        #expect(statuses.filter { $0 == 200 }.count == 1_000)
        #expect(statuses.filter { $0 == 429 }.count == 300)
        for validator in validators { #expect(try await validator.stop() == 0) }
        let window = try #require(try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self))
        #expect(window.used == 1_000)
    }

    /// Lease mode with Firestore-like round trips (20 ms), two of four processes killed
    /// with SIGKILL mid-load: never past the limit, and what the dead held is all that is
    /// lost.
    @Test func leaseMode_withSlowStore_twoProcessesKilledMidLoad_neverOverAdmit_andLoseAtMostWhatTheyHeld() async throws {
        let cluster = try await Cluster("quota-kill", settings: ["TOLLGATE_QUOTA_MODE": "lease", "TOLLGATE_STORE_LATENCY_MS": "20"])
        let (store, key, validators, urls) = (cluster.store, cluster.key, cluster.validators, cluster.urls)
        let statuses = Recorder<Int>()
        let kills = Counter()
        let all = validators
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<32 {
                group.addTask {
                    for index in stride(from: worker, to: 1_600, by: 32) {
                        // Half-way, two instances die as an out-of-memory kill would end them.
                        if statuses.all.count >= 600, kills.next() == 0 {
                            all[0].kill()
                            all[1].kill()
                        }
                        // A gateway sends a request that found no instance to another one.
                        var attempt = 0
                        while attempt < urls.count {
                            if let (status, _) = try? await post(
                                urls[(index + attempt) % urls.count], body: Data(), headers: ["X-API-Key": key])
                            {
                                statuses.append(status)
                                break
                            }
                            attempt += 1
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(kills.count > 0, "the kill happened mid-load")
        for validator in validators[2...] { #expect(try await validator.stop() == 0) }
        let admitted = Int64(statuses.all.filter { $0 == 200 }.count)
        let window = try #require(try await store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self))
        #expect(admitted <= 1_000 && window.used <= 1_000)
        // The survivors returned theirs on SIGTERM; only the dead instances' leases remain,
        // and the units counted but never admitted are at most what those leases held.
        let orphaned = window.leases ?? [:]
        #expect(orphaned.count <= 2)
        #expect(window.used - admitted <= orphaned.values.map(\.granted).reduce(0, +))
        #expect(window.used >= admitted)
        print("quota leases, slow store, 2 of 4 killed: \(admitted) admitted, \(window.used - admitted) lost with the dead")
    }

    /// The lease burst on Google's Firestore emulator, whose pessimistic locks end two
    /// read-then-write transactions on one document only by a 2 s lock timeout (`ABORTED`):
    /// grants, top-ups and returns take no transaction, so with the gateway retrying 503s
    /// the four processes admit exactly the limit, in seconds.
    @Test(Peer.firestoreEmulator.trait)
    func fourProcesses_inLeaseMode_onTheFirestoreEmulator_admitExactlyTheLimit() async throws {
        let firestore = try await GoogleEmulator.firestore.acquire()
        defer { firestore.release() }
        let cluster = try await Cluster("quota-firestore", firestore: firestore)
        let started = ContinuousClock.now
        let statuses = try await cluster.load(1_300, retrying: true)
        let took = ContinuousClock.now - started
        #expect(statuses.filter { $0 == 200 }.count == 1_000)
        #expect(statuses.filter { $0 == 429 }.count == 300)
        for validator in cluster.validators { #expect(try await validator.stop() == 0) }
        let window = try #require(try await cluster.store.get(path("quotas/acct_load"))?.decode(QuotaWindow.self))
        #expect(window.used == 1_000)
        #expect(window.leases?.isEmpty ?? true, "every lease was returned on SIGTERM")
        print(
            "quota leases on the Firestore emulator: \(statuses.filter { $0 == 200 }.count) admitted in \(took), \(cluster.retries.count) retries"
        )
    }
}
