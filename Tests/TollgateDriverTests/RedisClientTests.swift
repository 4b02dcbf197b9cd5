import Foundation
import Testing
import TollgateModel
import TollgateRedis
import TollgateTestSupport

/// The RESP client against a real redis-server on loopback (Debian's), started and killed
/// by the tests.
@Suite(Peer.redis.trait) struct RedisClientTests {
    /// Commands' deadline where the test is not about deadlines: a machine busy compiling
    /// beside the suite can keep a just-started redis-server from answering in 500 ms.
    static let patient: Duration = .seconds(5)

    @Test func replies_ofEveryKind_decode() async throws {
        let server = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { server.kill() }
        let client = RedisClient(address: try RedisAddress(url: server.url), timeout: Self.patient)
        defer { Task { await client.close() } }
        let session = try await client.session()
        #expect(try await session.command(["SET", "greeting", "héllo\r\nworld"]) == .simple("OK"))
        #expect(try await session.command(["GET", "greeting"]).string == "héllo\r\nworld", "bulk strings are binary-safe")
        #expect(try await session.command(["GET", "absent"]) == .bulk(nil))
        #expect(try await session.command(["INCRBY", "counter", "41"]) == .integer(41))
        _ = try await session.command(["RPUSH", "list", "a", "", "c"])
        #expect(
            try await session.command(["LRANGE", "list", "0", "-1"]) == .array([.bulk(Array("a".utf8)), .bulk([]), .bulk(Array("c".utf8))]))
        await #expect(throws: RedisFailure.self) { try await session.command(["INCR", "greeting"]) }
        #expect(try await session.command(["PING"]) == .simple("PONG"), "an error reply leaves the connection in step")
    }

    /// Replies come back in the order the commands were written, however many are in flight.
    @Test func pipelinedCommands_eachGetTheirOwnReply() async throws {
        let server = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { server.kill() }
        let client = RedisClient(address: try RedisAddress(url: server.url), timeout: Self.patient)
        let session = try await client.session()
        let replies = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<300 {
                group.addTask {
                    _ = try await session.command(["SET", "key:\(index)", "value:\(index)"])
                    return (index, try await session.command(["GET", "key:\(index)"]).string)
                }
            }
            return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        #expect(replies.count == 300)
        #expect(replies.allSatisfy { $0.value == "value:\($0.key)" })
        await client.close()
    }

    @Test func evaluate_sendsTheScriptOnlyWhenTheServerLacksIt() async throws {
        let server = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { server.kill() }
        let client = RedisClient(address: try RedisAddress(url: server.url), timeout: Self.patient)
        let session = try await client.session()
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await session.command(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(0)]))
        #expect(try await session.evaluate(script, keys: ["n"], arguments: ["2"]) == .integer(2))
        #expect(try await session.command(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]), "EVAL loaded it")
        #expect(try await session.evaluate(script, keys: ["n"], arguments: ["3"]) == .integer(5))
        await client.close()
    }

    /// A restarted server is a new process (a new `run_id`) and empty; the client makes a
    /// new connection on its own.
    @Test func aRestartedServer_isReachedAgain_andNamesANewRunID() async throws {
        let server = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { server.kill() }
        let client = RedisClient(address: try RedisAddress(url: server.url), timeout: Self.patient)
        let before = try await client.session()
        _ = try await before.command(["SET", "k", "v"])
        server.kill()
        await #expect(throws: (any Error).self) { try await client.session().command(["GET", "k"]) }
        try await server.start()
        let after = try await client.session()
        #expect(after.serverRunID != before.serverRunID)
        #expect(try await after.command(["GET", "k"]) == .bulk(nil))
        await client.close()
    }

    /// A command that gets no answer in time fails, and its connection is dropped (a late
    /// reply must not be read as the next command's).
    @Test func aCommandWithoutAnAnswerInTime_failsAndTheNextOneWorks() async throws {
        let server = try await RedisServer()
        // Kept alive to the end of the test (its deinit would kill it).
        defer { server.kill() }
        let client = RedisClient(address: try RedisAddress(url: server.url), timeout: .seconds(1))
        let admin = RedisClient(address: try RedisAddress(url: server.url), timeout: Self.patient)
        let session = try await client.session()
        // Paused long enough that a loaded machine cannot send the command after it ends.
        _ = try await admin.session().command(["CLIENT", "PAUSE", "4000", "ALL"])
        await #expect(throws: RedisFailure.timedOut) { try await session.command(["INCR", "paused"]) }
        try await Task.sleep(for: .milliseconds(4_100))
        #expect(try await client.session().command(["PING"]) == .simple("PONG"))
        await client.close()
        await admin.close()
    }

    @Test(arguments: ["redis://", "http://127.0.0.1:6379", "redis://10.0.0.3:6379/16", "redis://10.0.0.3:6379/x", "redis://u:p@host:1"])
    func addresses_otherThanRedisHostPortDB_areRefused(text: String) {
        #expect(throws: TollgateError.self) { try RedisAddress(url: text) }
    }

    @Test func addresses_default6379AndDatabase0() throws {
        #expect(try RedisAddress(url: "redis://10.0.0.3").description == "redis://10.0.0.3:6379/0")
        #expect(try RedisAddress(url: "redis://10.0.0.3:6380/2").description == "redis://10.0.0.3:6380/2")
    }
}
