import Foundation
import Synchronization
import Testing
import TollgateGoogle
import TollgateHTTP
import TollgateModel
import TollgateTestSupport

/// The Firestore driver's requests, checked against Firestore's discovery document, and
/// its decoding of responses shaped by the same document.
@Suite struct FirestoreDriverTests {
    static let root = "projects/tollgate-test/databases/(default)/documents"

    func store(_ transport: RecordingTransport, pageSize: Int = 1_000) -> FirestoreDocumentStore {
        FirestoreDocumentStore(
            project: "tollgate-test",
            api: GoogleAPIClient(
                service: "firestore", endpoint: GoogleEndpoint(baseURL: "https://firestore.googleapis.com", credentials: nil),
                transport: transport, retry: GoogleRetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1))),
            pageSize: pageSize)
    }

    static let everyType: [String: FieldValue] = [
        "null": .null, "flag": .bool(true), "count": .integer(Int64.max), "ratio": .double(0.25), "nan": .double(.nan),
        "at": .timestamp(Timestamp(microsecondsSinceEpoch: 1_767_225_600_000_123)), "name": .string("ünïcode"),
        "raw": .bytes(Data([0, 255, 7])), "list": .array([.integer(1), .string("two"), .map(["k": .bool(false)])]),
        "nested": .map(["deeper": .map(["n": .integer(-5)])]),
    ]

    static func document(_ path: String, _ fields: [String: FieldValue], updated: String = "2026-01-01T00:00:01.000002Z") -> JSONValue {
        let encoded = try! JSONValue.parse(JSONEncoder().encode(fields))
        return .object([
            "name": .string("\(root)/\(path)"), "fields": encoded, "createTime": .string("2026-01-01T00:00:00Z"),
            "updateTime": .string(updated),
        ])
    }

    static func expectAccepted(_ document: DiscoveryDocument, _ request: HTTPRequest, as method: String) {
        let problems = document.problems(request, as: method)
        #expect(problems.isEmpty, "\(method): \(problems.joined(separator: "; "))")
    }

    @Test(Peer.discoveryDocuments.trait) func get_buildsDocumentsGet_andDecodesEveryValueType() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let answer = Self.document("accounts/a 1", Self.everyType)
        #expect(discovery.problems(response: answer, of: "firestore.projects.databases.documents.get").isEmpty)
        let transport = RecordingTransport { _, _ in .json(answer) }
        let snapshot = try #require(try await store(transport).get(path("accounts/a 1")))
        Self.expectAccepted(discovery, transport.requests[0], as: "firestore.projects.databases.documents.get")
        #expect(transport.requests[0].url.hasSuffix("/documents/accounts/a%201"))
        #expect(snapshot.path == path("accounts/a 1"))
        #expect(snapshot.updateTime == Timestamp(rfc3339: "2026-01-01T00:00:01.000002Z"))
        var expected = Self.everyType
        expected["nan"] = nil
        var decoded = snapshot.fields
        guard case .double(let nan) = decoded.removeValue(forKey: "nan") else {
            Issue.record("NaN lost its type")
            return
        }
        #expect(nan.isNaN)
        #expect(decoded == expected)
    }

    @Test func get_ofAMissingDocument_isNil_andA503IsRetried() async throws {
        let transport = RecordingTransport { _, index in
            index == 0 ? .googleError(503, "UNAVAILABLE", "try again") : .googleError(404, "NOT_FOUND", "Document not found")
        }
        #expect(try await store(transport).get(path("accounts/none")) == nil)
        #expect(transport.requests.count == 2)
    }

    @Test(Peer.discoveryDocuments.trait) func commit_encodesCreateSetUpdateDeleteAndTransforms_asTheAPIAcceptsThem() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        // One result per write; a write with transforms gets each transform's value after it.
        let updated: JSONValue = .object(["updateTime": .string("2026-01-01T00:00:05Z")])
        let response: JSONValue = .object([
            "writeResults": .array([
                updated,
                .object([
                    "updateTime": .string("2026-01-01T00:00:05Z"),
                    "transformResults": .array([.object(["timestampValue": .string("2026-01-01T00:00:05Z")])]),
                ]),
                updated,
                .object([
                    "updateTime": .string("2026-01-01T00:00:05Z"),
                    "transformResults": .array([.object(["integerValue": .string("42")]), .object(["doubleValue": .double(2.5)])]),
                ]),
                .object([:]),
            ]),
            "commitTime": .string("2026-01-01T00:00:05Z"),
        ])
        #expect(discovery.problems(response: response, of: "firestore.projects.databases.documents.commit").isEmpty)
        let transport = RecordingTransport { _, _ in .json(response) }
        let writes: [Write] = [
            .create(path("accounts/a1"), Self.everyType),
            .set(path("accounts/a2"), ["tier": .string("pro")], transforms: [.serverTimestamp("updatedAt")]),
            .update(
                path("accounts/a3"), ["quota.used": .integer(3), "old": nil, "odd key.x": .string("v")],
                precondition: .updateTime(Timestamp(secondsSinceEpoch: 1_767_225_600))),
            Write(
                path: path("counters/c"), operation: .update([:]),
                transforms: [.increment("n", .integer(1)), .maximum("peak", .double(2.5))]),
            .delete(path("accounts/a4"), precondition: .exists(true)),
        ]
        let answer = try await store(transport).commitWithResults(writes)
        #expect(answer.commitTime == Timestamp(rfc3339: "2026-01-01T00:00:05Z"))
        #expect(
            answer.transformResults == [
                [], [.timestamp(Timestamp(rfc3339: "2026-01-01T00:00:05Z")!)], [], [.integer(42), .double(2.5)], [],
            ])
        let request = transport.requests[0]
        Self.expectAccepted(discovery, request, as: "firestore.projects.databases.documents.commit")
        let sent = try #require(request.json?["writes"]?.arrayValue)
        #expect(sent[0]["currentDocument"] == .object(["exists": .bool(false)]))
        #expect(sent[0]["update"]?["fields"]?["count"] == .object(["integerValue": .string("9223372036854775807")]))
        #expect(sent[1]["updateTransforms"]?.arrayValue?.first?["setToServerValue"] == .string("REQUEST_TIME"))
        #expect(sent[2]["updateMask"]?["fieldPaths"] == .array([.string("`odd key`.x"), .string("old"), .string("quota.used")]))
        #expect(
            sent[2]["update"]?["fields"]?["quota"]
                == .object(["mapValue": .object(["fields": .object(["used": .object(["integerValue": .string("3")])])])]))
        #expect(sent[2]["currentDocument"] == .object(["updateTime": .string("2026-01-01T00:00:00Z")]))
        // A transform-only write keeps an empty mask: without one, Firestore would replace the document.
        #expect(sent[3]["updateMask"] == .object(["fieldPaths": .array([])]))
        #expect(sent[4]["delete"] == .string("\(Self.root)/accounts/a4"))
    }

    @Test(arguments: [
        (409, "ALREADY_EXISTS", TollgateError.Code.alreadyExists), (404, "NOT_FOUND", .notFound),
        (400, "FAILED_PRECONDITION", .failedPrecondition), (400, "INVALID_ARGUMENT", .invalidArgument),
        (503, "UNAVAILABLE", .unavailable), (429, "RESOURCE_EXHAUSTED", .resourceExhausted), (403, "PERMISSION_DENIED", .permissionDenied),
    ])
    func commitErrors_mapToPortCodes_andAPlainCommitIsNeverRetried(status: Int, code: String, expected: TollgateError.Code) async throws {
        let transport = RecordingTransport { _, _ in .googleError(status, code, "refused") }
        await expectCode(expected) { try await store(transport).create(path("accounts/a1"), ["x": .integer(1)]) }
        #expect(transport.requests.count == 1)
    }

    /// Firestore's error codes: `ABORTED` on a commit outside a transaction is a conflict
    /// with another request, not applied, and to be sent again; Google's emulator answers it
    /// to concurrent writes of one document ("Transaction lock timeout.").
    @Test func aPlainCommitAborted_isSentAgain_untilItLands() async throws {
        let commits = Counter()
        let transport = RecordingTransport { _, _ in
            commits.next() < 2
                ? .googleError(409, "ABORTED", "Transaction lock timeout.")
                : .json(
                    .object([
                        "commitTime": .string("2026-01-01T00:00:09Z"),
                        "writeResults": .array([.object(["transformResults": .array([.object(["integerValue": .string("1")])])])]),
                    ]))
        }
        try await store(transport).increment(path("counters/c"), "n", by: 1)
        #expect(transport.requests.count == 3)
        #expect(Set(transport.requests.map(\.body)).count == 1, "the same writes each time")
    }

    @Test(Peer.discoveryDocuments.trait)
    func transaction_readsWithItsIDThroughBatchGet_commitsWithIt_andRetriesAbortedWithRetryTransaction() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let commits = Counter()
        let transport = RecordingTransport { request, _ in
            if request.url.hasSuffix(":beginTransaction") {
                let retrying = request.json?["options"]?["readWrite"]?["retryTransaction"] != nil
                return .json(.object(["transaction": .string(retrying ? "dHgy" : "dHgx")]))
            }
            if request.url.hasSuffix(":commit") {
                return commits.next() == 0
                    ? .googleError(409, "ABORTED", "Transaction lock timeout")
                    : .json(.object(["commitTime": .string("2026-01-01T00:00:09Z")]))
            }
            return .json(
                .array([
                    .object(["found": Self.document("accounts/a1", ["used": .integer(4)]), "readTime": .string("2026-01-01T00:00:08Z")])
                ]))
        }
        let used = try await store(transport).runTransaction { transaction in
            let snapshot = try await transaction.get(path("accounts/a1"))
            guard case .integer(let used) = snapshot?.fields["used"] ?? .integer(0) else { throw TollgateError(.internal, "type") }
            try transaction.update(path("accounts/a1"), ["used": .integer(used + 1)])
            return FieldValue.integer(used)
        }
        #expect(used == .integer(4))
        let methods = transport.requests.map { $0.method + " " + String($0.url.split(separator: "/").last!.prefix { $0 != "?" }) }
        #expect(
            methods == [
                "POST documents:beginTransaction", "POST documents:batchGet", "POST documents:commit", "POST documents:beginTransaction",
                "POST documents:batchGet", "POST documents:commit",
            ])
        let requests = transport.requests
        Self.expectAccepted(discovery, requests[0], as: "firestore.projects.databases.documents.beginTransaction")
        // Read as Google's client libraries read inside a transaction: batchGet, the id in the body.
        Self.expectAccepted(discovery, requests[1], as: "firestore.projects.databases.documents.batchGet")
        Self.expectAccepted(discovery, requests[3], as: "firestore.projects.databases.documents.beginTransaction")
        #expect(requests[1].json?["transaction"] == .string("dHgx") && !requests[1].url.contains("?"))
        #expect(requests[4].json?["transaction"] == .string("dHgy"))
        #expect(requests[3].json?["options"]?["readWrite"]?["retryTransaction"] == .string("dHgx"))
        #expect(requests[5].json?["transaction"] == .string("dHgy"))
        Self.expectAccepted(discovery, requests[5], as: "firestore.projects.databases.documents.commit")
    }

    /// The rollback is sent apart from the failed request (its deadline may be what ended
    /// the transaction), so the test waits for it.
    @Test(Peer.discoveryDocuments.trait) func transaction_whoseBodyFails_isRolledBack() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let transport = RecordingTransport { request, _ in
            request.url.hasSuffix(":beginTransaction") ? .json(.object(["transaction": .string("dHgx")])) : .json(.object([:]))
        }
        await expectCode(.invalidArgument) {
            try await store(transport).runTransaction { _ in throw TollgateError(.invalidArgument, "poison") }
        }
        for _ in 0..<200 where transport.requests.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
        let rollback = try #require(transport.requests.last)
        #expect(rollback.url.hasSuffix(":rollback"))
        Self.expectAccepted(discovery, rollback, as: "firestore.projects.databases.documents.rollback")
    }

    @Test(Peer.discoveryDocuments.trait) func query_encodesFiltersOrdersAndLimit_andPagesWithANameCursor() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let pages: [[JSONValue]] = [
            [Self.document("accounts/a1/keys/k1", ["n": .integer(1)]), Self.document("accounts/a1/keys/k2", ["n": .integer(2)])],
            [Self.document("accounts/a1/keys/k3", ["n": .integer(3)])],
        ]
        for item in pages.flatMap({ $0 }) {
            let problems = discovery.problems(
                response: .object(["document": item, "readTime": .string("2026-01-01T00:00:00Z")]),
                of: "firestore.projects.databases.documents.runQuery")
            #expect(problems.isEmpty, "\(problems)")
        }
        let transport = RecordingTransport { _, index in
            .json(.array(pages[min(index, 1)].map { .object(["document": $0, "readTime": .string("2026-01-01T00:00:00Z")]) }))
        }
        let query = DocumentQuery(collection: "accounts/a1/keys").filter("n", .greaterThan, .integer(0))
            .filter("state", .in, .array([.string("active"), .string("new")])).filter("revoked", .equal, .null)
            .filter("tags", .arrayContains, .string("x")).order(by: "n")
        let results = try await store(transport, pageSize: 2).query(query)
        #expect(results.map(\.path.id) == ["k1", "k2", "k3"])
        #expect(transport.requests.count == 2)
        for request in transport.requests { Self.expectAccepted(discovery, request, as: "firestore.projects.databases.documents.runQuery") }
        let first = try #require(transport.requests[0].json?["structuredQuery"])
        #expect(transport.requests[0].url.hasSuffix("/documents/accounts/a1:runQuery"))
        #expect(first["from"] == .array([.object(["collectionId": .string("keys")])]))
        #expect(first["where"]?["compositeFilter"]?["filters"]?.arrayValue?.count == 4)
        #expect(first["where"]?["compositeFilter"]?["filters"]?.arrayValue?[2]["unaryFilter"]?["op"] == .string("IS_NULL"))
        #expect(first["limit"] == .integer(2))
        let second = try #require(transport.requests[1].json?["structuredQuery"])
        #expect(
            second["startAt"]
                == .object([
                    "before": .bool(false),
                    "values": .array([
                        .object(["integerValue": .string("2")]), .object(["referenceValue": .string("\(Self.root)/accounts/a1/keys/k2")]),
                    ]),
                ]))
    }

    @Test(Peer.discoveryDocuments.trait) func query_overATopLevelCollection_hasTheDocumentsRootAsParent() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let transport = RecordingTransport { _, _ in .json(.array([.object(["readTime": .string("2026-01-01T00:00:00Z")])])) }
        let results = try await store(transport).query(
            DocumentQuery(collection: "usage").filter("recorded", .lessThan, .timestamp(Timestamp(secondsSinceEpoch: 1))).limit(10))
        #expect(results.isEmpty)
        Self.expectAccepted(discovery, transport.requests[0], as: "firestore.projects.databases.documents.runQuery")
        #expect(
            transport.requests[0].url.hasSuffix("/databases/(default)/documents:runQuery")
                || transport.requests[0].url.hasSuffix("/databases/%28default%29/documents:runQuery"))
    }

    @Test(Peer.discoveryDocuments.trait) func batchGet_returnsFoundAndMissing_inTheOrderAsked() async throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let answer: JSONValue = .array([
            .object(["missing": .string("\(Self.root)/accounts/b"), "readTime": .string("2026-01-01T00:00:00Z")]),
            .object(["found": Self.document("accounts/a", ["n": .integer(1)]), "readTime": .string("2026-01-01T00:00:00Z")]),
        ])
        for item in answer.arrayValue! {
            #expect(discovery.problems(response: item, of: "firestore.projects.databases.documents.batchGet").isEmpty)
        }
        let transport = RecordingTransport { _, _ in .json(answer) }
        let found = try await store(transport).batchGet([path("accounts/a"), path("accounts/b")])
        #expect(found.map { $0?.fields["n"] } == [.integer(1), nil])
        Self.expectAccepted(discovery, transport.requests[0], as: "firestore.projects.databases.documents.batchGet")
    }

    /// The checker itself must be able to fail, or every check above proves nothing.
    @Test(Peer.discoveryDocuments.trait) func discoveryCheck_refusesWhatTheAPIDoesNot() throws {
        let discovery = try DiscoveryDocument.load("firestore.v1")
        let commit = "https://firestore.googleapis.com/v1/\(Self.root.dropLast("/documents".count)):commit"
        func problems(_ method: String, _ url: String, _ body: JSONValue?, as id: String) -> [String] {
            discovery.problems(HTTPRequest(method: method, url: url, body: body.map { Array($0.rendered().utf8) } ?? []), as: id)
        }
        let id = "firestore.projects.databases.documents.commit"
        #expect(!problems("POST", commit, .object(["writes": .array([])]), as: id).isEmpty, "wrong path suffix")
        let good = "https://firestore.googleapis.com/v1/projects/p/databases/d/documents:commit"
        #expect(problems("POST", good, .object(["writes": .array([])]), as: id).isEmpty)
        #expect(!problems("GET", good, .object(["writes": .array([])]), as: id).isEmpty, "wrong HTTP method")
        #expect(!problems("POST", good + "?pageSize=x", .object([:]), as: id).isEmpty, "undeclared query parameter")
        #expect(!problems("POST", good, .object(["write": .array([])]), as: id).isEmpty, "unknown field")
        let badValue: JSONValue = .object([
            "writes": .array([.object(["update": .object(["fields": .object(["n": .object(["integerValue": .string("x")])])])])])
        ])
        #expect(!problems("POST", good, badValue, as: id).isEmpty, "int64 that is not a number")
        let badTime: JSONValue = .object(["writes": .array([.object(["currentDocument": .object(["updateTime": .string("yesterday")])])])])
        #expect(!problems("POST", good, badTime, as: id).isEmpty, "a timestamp that is not RFC 3339")
        let get = "firestore.projects.databases.documents.get"
        #expect(
            !problems("GET", "https://firestore.googleapis.com/v1/projects/p/databases/d/documents/accounts", nil, as: get).isEmpty,
            "a collection is not a document")
    }

    @Test func firestoreURL_namesProjectAndDatabase() throws {
        let api = GoogleAPIClient(
            service: "firestore", endpoint: GoogleEndpoint(baseURL: "http://127.0.0.1:1", credentials: nil), transport: CurlHTTPClient())
        let named = try FirestoreDocumentStore(url: "firestore://proj/ledger", api: api)
        #expect(named.project == "proj" && named.database == "ledger")
        #expect(try FirestoreDocumentStore(url: "firestore://proj", api: api).database == "(default)")
        #expect(throws: TollgateError.self) { try FirestoreDocumentStore(url: "firestore://", api: api) }
        #expect(throws: TollgateError.self) { try FirestoreDocumentStore(url: "firestore://a/b/c", api: api) }
    }
}
