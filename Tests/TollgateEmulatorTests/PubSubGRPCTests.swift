import Foundation
import Testing
import TollgateEmulator
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

/// `tollgate serve`'s gRPC Pub/Sub front, driven by Google's official Python client
/// (google-cloud-pubsub), which is how a team's API service publishes usage events.
@Suite struct PubSubGRPCTests {
    @Test(Peer.pythonVenv.trait)
    func googlesOfficialClient_publishesOverGRPC_withBatching_andGetsPubSubsErrors() async throws {
        let serve = try await ServeProcess([])
        let events = (0..<24).map { index -> JSONValue in
            .object([
                "requestId": .string("req_grpc_\(index)"), "accountId": .string("cus_TgAlpha01"), "keyId": .string("tg_live_AbCd"),
                "time": .string(SystemClock().now().rfc3339), "endpoint": .string("/v1/graphs"), "units": .integer(Int64(index + 1)),
            ])
        }
        // A redelivered event: the client published it twice; the ledger keeps it once.
        let input: JSONValue = .object([
            "project": .string(LocalCloudNames.project), "events": .array(events + [events[0]]), "batchSize": .integer(10),
        ])
        let answer = try await PythonPeer.run(
            script: "pubsub_grpc_client.py", input: input, environment: ["PUBSUB_EMULATOR_HOST": serve.pubsubEmulatorHost])

        let project = "projects/\(LocalCloudNames.project)"
        #expect(answer["getTopic"]?.stringValue == "\(project)/topics/\(Topic.usageEvents)")
        let ids = (answer["messageIds"]?.arrayValue ?? []).compactMap { $0.stringValue }
        #expect(ids.count == 25 && Set(ids).count == 25, "one distinct id per message")
        #expect(answer["created"] == .array([.string("\(project)/topics/python-ordered"), .string("AlreadyExists")]))
        #expect(answer["ordered"]?.arrayValue?.count == 3)
        #expect(answer["unknownTopic"] == .array([.string("NotFound"), .string("NotFound")]))
        let pages = try #require(answer["pages"]?.arrayValue)
        let listed = pages.flatMap { $0.arrayValue ?? [] }.compactMap { $0.stringValue }

        // The client's batching reached the server as Publish calls of at most 10 messages,
        // each one transaction (one publish time); ordering keys and attributes kept.
        let publisher = SQLitePublisher(try SQLiteDatabase(path: serve.state))
        let topics = try await publisher.topics(limit: 1_000)
        #expect(topics.contains("python-ordered"))
        #expect(listed == topics.map { "\(project)/topics/\($0)" }, "ListTopics pages through every topic once, in order")
        #expect(pages.dropLast().allSatisfy { $0.arrayValue?.count == 2 } && pages.count == (topics.count + 1) / 2)
        let published = try await publisher.published()
        let usage = published.filter { $0.topic == Topic.usageEvents }
        // Without an ordering key the client sends its batches concurrently, so they may
        // arrive in any order (as on Pub/Sub): each id must name the message it was
        // returned for, not a position.
        let requestByID = Dictionary(
            usage.map { ($0.messageId, (try? JSONValue.parse(Data($0.message.data)))?["requestId"]?.stringValue ?? "") }
        ) { first, _ in first }
        let sent = (0..<24).map { "req_grpc_\($0)" } + ["req_grpc_0"]
        #expect(ids.map { requestByID[$0] ?? "" } == sent, "each id names the message the client published")
        #expect(Set(usage.map(\.messageId)) == Set(ids))
        #expect(usage.allSatisfy { $0.message.attributes["origin"] == "python-grpc" })
        let calls = Dictionary(grouping: usage, by: \.publishTime).values.map(\.count)
        #expect(calls.count > 1 && calls.allSatisfy { $0 <= 10 }, "25 messages in batches of at most 10: \(calls)")
        let ordered = published.filter { $0.topic == "python-ordered" }
        #expect(ordered.map(\.message.orderingKey) == ["acct_1", "acct_1", "acct_1"])
        #expect(ordered.map { String(decoding: $0.message.data, as: UTF8.self) } == ["step 0", "step 1", "step 2"])

        // Pushed to usage-recorder as any publish is: 24 records, the duplicate once.
        let state = try await serve.waitFor("every usage record") { state in
            (state["documents"]?.objectValue ?? [:]).keys.filter { $0.hasPrefix("usage/cus_TgAlpha01:req_grpc_") }.count == 24
        }
        #expect(state["documents"]?["usageCounters/cus_TgAlpha01"]?["units"]?.integerValue == Int64((1...24).reduce(0, +)))
        #expect(try await serve.stop() == 0)
    }

    /// The REST front follows the same rules (`LocalPubSub`), so both clients see one Pub/Sub.
    @Test func restFront_createsGetsAndListsTopics_withTheGRPCFrontsRules() async throws {
        let serve = try await ServeProcess([])
        let topics = "\(serve.url)/v1/projects/\(LocalCloudNames.project)/topics"
        func call(_ method: String, _ path: String, _ body: String? = nil) async throws -> (Int, JSONValue) {
            let (status, data) = try await send(method, try #require(URL(string: topics + path)), body: body.map { Data($0.utf8) })
            return (status, try JSONValue.parse(data))
        }
        #expect(try await call("PUT", "/rest-made", "{}") == (200, .object(["name": .string(LocalPubSub.resourceName("rest-made"))])))
        #expect(try await call("PUT", "/rest-made", "{}").0 == 409, "ALREADY_EXISTS")
        #expect(try await call("PUT", "/goog-reserved", "{}").0 == 400, "ids never start with goog")
        #expect(try await call("PUT", "/9lives", "{}").0 == 400, "ids start with a letter")
        #expect(try await call("GET", "/rest-made").0 == 200)
        #expect(try await call("GET", "/nowhere").0 == 404)
        let otherProject = try await send("GET", try #require(URL(string: "\(serve.url)/v1/projects/someone-else/topics/usage-events")))
        #expect(otherProject.0 == 404, "the local cloud is one project")
        let (status, page) = try await call("GET", "?pageSize=2")
        #expect(status == 200 && page["topics"]?.arrayValue?.count == 2 && page["nextPageToken"]?.stringValue != nil)
        let mixedKeys = #"{"messages": [{"data": "AQ==", "orderingKey": "a"}, {"data": "AQ==", "orderingKey": "b"}]}"#
        #expect(try await call("POST", "/rest-made:publish", mixedKeys).0 == 400, "one ordering key per publish request")
        let published = try await SQLitePublisher(try SQLiteDatabase(path: serve.state)).published(topic: "rest-made")
        #expect(published.isEmpty, "a refused batch publishes nothing")
        #expect(try await serve.stop() == 0)
    }
}
