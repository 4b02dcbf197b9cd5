import Foundation
import Testing
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// A publisher under test, with what the harness can see behind the port.
struct PublisherUnderTest: Sendable {
    let publisher: any Publisher
    /// A topic that exists.
    let topic: String
    /// What reached `topic`, oldest first, read from the backend's own store.
    let received: @Sendable () async throws -> [OutgoingMessage]
}

/// Where the `Publisher` contract runs: the SQLite fake, and the Pub/Sub driver against
/// `tollgate serve`'s Pub/Sub REST front and against Google's Pub/Sub emulator (each what
/// `PUBSUB_EMULATOR_HOST` points Google's clients at). The driver's requests are also
/// checked against Pub/Sub's discovery document in `GoogleDriverTests`.
enum PublisherBackend: String, ContractBackend {
    case sqliteFake
    case pubSubDriverOnLocalCloud
    case pubSubDriverOnPubSubEmulator

    enum Capability: Hashable, Sendable {}

    var testDescription: String { rawValue }
    var capabilities: Set<Capability> { [] }
    var peer: Peer? { self == .pubSubDriverOnPubSubEmulator ? .pubSubEmulator : nil }

    func open() async throws -> ContractInstance<PublisherUnderTest> {
        switch self {
        case .sqliteFake:
            let publisher = SQLitePublisher(try temporaryDatabase())
            try await publisher.createTopic("contract")
            return ContractInstance(
                PublisherUnderTest(publisher: publisher, topic: "contract") {
                    try await publisher.published(topic: "contract").map(\.message)
                })
        case .pubSubDriverOnLocalCloud:
            // A virtual clock: the push to the topic's subscriber waits for time to move.
            let serve = try await ServeProcess(["--clock", "virtual"])
            let host = String(serve.url.dropFirst("http://".count))
            let publisher = try GoogleCloud(environment: ["PUBSUB_EMULATOR_HOST": host]).pubsub("pubsub://\(LocalCloudNames.project)")
            let state = SQLitePublisher(try SQLiteDatabase(path: serve.state))
            let topic = Topic.entitlementsChanged
            return ContractInstance(
                PublisherUnderTest(publisher: publisher, topic: topic) { try await state.published(topic: topic).map(\.message) }
            ) { _ = try? await serve.stop() }
        case .pubSubDriverOnPubSubEmulator:
            let lease = try await GoogleEmulator.pubSub.acquire()
            do {
                let inbox = try await PubSubEmulatorInbox(lease, topic: "contract")
                let publisher = try GoogleCloud(environment: ["PUBSUB_EMULATOR_HOST": lease.host]).pubsub("pubsub://\(lease.project)")
                return ContractInstance(PublisherUnderTest(publisher: publisher, topic: "contract") { try await inbox.pullAll() }) {
                    lease.release()
                }
            } catch {
                lease.release()
                throw error
            }
        }
    }
}

/// The `Publisher` port's contract: Pub/Sub's semantics and limits, on every backend.
@Suite struct PublisherContractTests {
    @Test(arguments: PublisherBackend.supporting())
    func publish_answersAMessageID_andTheMessageArrivesWhole(_ backend: PublisherBackend) async throws {
        try await backend.with { under in
            let sent = [
                OutgoingMessage(data: Array("{\"a\":1}".utf8), attributes: ["origin": "contract", "é": "ü"], orderingKey: "acct_1"),
                OutgoingMessage(data: [0, 255, 10, 13]),
                OutgoingMessage(data: [], attributes: ["only": "attributes"]),
            ]
            var ids: [String] = []
            for message in sent { ids.append(try await under.publisher.publish(message, to: under.topic)) }
            #expect(Set(ids).count == 3 && ids.allSatisfy { !$0.isEmpty }, "each message gets its own id")
            #expect(try await under.received() == sent)
        }
    }

    @Test(arguments: PublisherBackend.supporting())
    func concurrentPublishes_eachGetTheirOwnID_andNoneIsLost(_ backend: PublisherBackend) async throws {
        try await backend.with { under in
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<40 {
                    group.addTask { try await under.publisher.publish(OutgoingMessage(data: Array("m\(index)".utf8)), to: under.topic) }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(Set(ids).count == 40)
            #expect(Set(try await under.received().map(\.data)) == Set((0..<40).map { Array("m\($0)".utf8) }))
        }
    }

    @Test(arguments: PublisherBackend.supporting())
    func publish_toATopicThatDoesNotExist_isNotFound(_ backend: PublisherBackend) async throws {
        try await backend.with { under in
            await expectCode(.notFound) { try await under.publisher.publish(OutgoingMessage(data: [1]), to: "no-such-topic") }
        }
    }

    @Test(arguments: PublisherBackend.supporting())
    func messagesPubSubRefuses_areInvalidArgument_andNothingIsPublished(_ backend: PublisherBackend) async throws {
        try await backend.with { under in
            let refused = [
                OutgoingMessage(data: []),
                OutgoingMessage(data: [1], attributes: ["googReserved": "v"]),
                OutgoingMessage(data: [1], attributes: ["": "v"]),
                OutgoingMessage(data: [1], attributes: [String(repeating: "k", count: 257): "v"]),
                OutgoingMessage(data: [1], attributes: ["k": String(repeating: "v", count: 1_025)]),
                OutgoingMessage(data: [1], attributes: Dictionary(uniqueKeysWithValues: (0...100).map { ("k\($0)", "v") })),
                OutgoingMessage(data: [1], orderingKey: String(repeating: "o", count: 1_025)),
                OutgoingMessage(data: [UInt8](repeating: 1, count: 10_000_001)),
            ]
            for message in refused {
                await expectCode(.invalidArgument) { try await under.publisher.publish(message, to: under.topic) }
            }
            let after = try await under.received()
            #expect(after.isEmpty)
        }
    }
}
