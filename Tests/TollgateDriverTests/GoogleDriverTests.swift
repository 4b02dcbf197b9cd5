import Foundation
import Testing
import TollgateEmulator
import TollgateGoogle
import TollgateHTTP
import TollgateModel
import TollgateRuntime
import TollgateTestSupport

func googleClient(_ service: String, _ base: String, _ transport: RecordingTransport) -> GoogleAPIClient {
    GoogleAPIClient(
        service: service, endpoint: GoogleEndpoint(baseURL: base, credentials: nil), transport: transport,
        retry: GoogleRetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(1)))
}

func expectAccepted(_ document: DiscoveryDocument, _ request: HTTPRequest, as method: String, upload: String? = nil) {
    let problems = document.problems(request, as: method, upload: upload)
    #expect(problems.isEmpty, "\(method): \(problems.joined(separator: "; "))")
}

/// The Pub/Sub, Cloud Tasks, Secret Manager and Cloud Storage drivers' requests, checked
/// against each API's discovery document, and Google's error bodies decoded.
@Suite struct GoogleDriverTests {
    // MARK: Pub/Sub

    /// Pub/Sub's answer to a publish: an id per message, in order (`m0`, `m1` …).
    static func publishAnswer(_ request: HTTPRequest) -> HTTPResponse {
        let count = request.json?["messages"]?.arrayValue?.count ?? 0
        return .json(.object(["messageIds": .array((0..<count).map { .string("m\($0)") })]))
    }

    @Test(Peer.discoveryDocuments.trait) func publish_batchesConcurrentMessages_intoOneTopicsPublish_andHandsEachItsID() async throws {
        let discovery = try DiscoveryDocument.load("pubsub.v1")
        let transport = RecordingTransport { request, _ in Self.publishAnswer(request) }
        let publisher = PubSubPublisher(
            project: "tollgate-test", api: googleClient("pubsub", "https://pubsub.googleapis.com", transport),
            batching: .init(maxMessages: 100, maxBytes: 1_000_000, delay: .milliseconds(200)))
        let messages = [
            OutgoingMessage(data: Array("one".utf8), attributes: ["account": "a1"], orderingKey: "a1"),
            OutgoingMessage(data: Array("two".utf8)), OutgoingMessage(data: [], attributes: ["only": "attributes"]),
        ]
        let ids = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (index, message) in messages.enumerated() {
                group.addTask { (index, try await publisher.publish(message, to: "usage-events")) }
            }
            return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
        }
        #expect(transport.requests.count == 1)
        let request = try #require(transport.requests.first)
        expectAccepted(discovery, request, as: "pubsub.projects.topics.publish")
        let sent = try #require(request.json?["messages"]?.arrayValue)
        #expect(Set(ids.values) == ["m0", "m1", "m2"])
        // Each caller gets the id of its own message: the position it was sent in.
        for (index, message) in messages.enumerated() {
            let position = try #require(Int(ids[index]!.dropFirst()))
            #expect(sent[position]["data"]?.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? [] == message.data)
        }
        #expect(sent.contains { $0["orderingKey"] == .string("a1") && $0["attributes"]?["account"] == .string("a1") })
        #expect(discovery.problems(response: .object(["messageIds": .array([.string("1")])]), of: "pubsub.projects.topics.publish").isEmpty)
    }

    @Test func publish_flushesAtTheCountThreshold_andFailsEveryWaiterOfAFailedBatch() async throws {
        let transport = RecordingTransport { request, _ in
            if request.url.contains("/topics/missing:") { return .googleError(404, "NOT_FOUND", "Resource not found") }
            return Self.publishAnswer(request)
        }
        let publisher = PubSubPublisher(
            project: "p", api: googleClient("pubsub", "https://pubsub.googleapis.com", transport),
            batching: .init(maxMessages: 2, maxBytes: 1_000_000, delay: .seconds(60)))
        // A delay of a minute: only the count threshold can send these.
        try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<4 { group.addTask { try await publisher.publish(OutgoingMessage(data: [UInt8(index)]), to: "t") } }
            for try await _ in group {}
        }
        #expect(transport.requests.count == 2)
        await withTaskGroup(of: TollgateError.Code?.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do {
                        _ = try await publisher.publish(OutgoingMessage(data: [1]), to: "missing")
                        return nil
                    } catch { return error.tollgateCode }
                }
            }
            for await code in group { #expect(code == .notFound) }
        }
    }

    @Test func publish_flushesAtTheByteThreshold_beforeTheDelay() async throws {
        let transport = RecordingTransport { request, _ in Self.publishAnswer(request) }
        let publisher = PubSubPublisher(
            project: "p", api: googleClient("pubsub", "https://pubsub.googleapis.com", transport),
            batching: .init(maxMessages: 100, maxBytes: 10, delay: .seconds(2)))
        // 8 bytes each: the second would pass 10, so the first batch goes alone at once.
        let first = Task { try await publisher.publish(OutgoingMessage(data: Array("12345678".utf8)), to: "t") }
        try await Task.sleep(for: .milliseconds(50))
        let second = Task { try await publisher.publish(OutgoingMessage(data: Array("abcdefgh".utf8)), to: "t") }
        _ = try await first.value
        #expect(transport.requests.count == 1)
        _ = try await second.value
        #expect(transport.requests.count == 2, "the second left with the delay")
    }

    @Test func retryBackoff_isJitteredUnderAnExponentialCeiling_cappedAtTheMaximum() {
        let policy = GoogleRetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(100), maxBackoff: .seconds(2), multiplier: 2)
        for retry in 1...6 {
            let ceiling = min(Duration.milliseconds(100) * (1 << (retry - 1)), .seconds(2))
            for _ in 0..<50 { #expect((.zero...ceiling).contains(policy.backoff(retry: retry))) }
        }
        #expect(policy.backoff(retry: 10_000) <= .seconds(2), "a long retry run stays at the cap, with no overflow")
    }

    @Test func publish_refusesAnInvalidMessage_beforeAnyRequest() async throws {
        let transport = RecordingTransport { _, _ in .json(.object([:])) }
        let publisher = PubSubPublisher(project: "p", api: googleClient("pubsub", "https://pubsub.googleapis.com", transport))
        await expectCode(.invalidArgument) { try await publisher.publish(OutgoingMessage(data: [], attributes: [:]), to: "t") }
        #expect(transport.requests.isEmpty)
    }

    // MARK: Cloud Tasks

    @Test(Peer.discoveryDocuments.trait) func enqueue_buildsTasksCreate_withNameScheduleAndOIDC_andAlreadyExistsIsReported() async throws {
        let discovery = try DiscoveryDocument.load("cloudtasks.v2")
        let transport = RecordingTransport { _, index in
            index == 0
                ? .json(.object(["name": .string("projects/p/locations/europe-west1/queues/usage-reports/tasks/report-1")]))
                : .googleError(409, "ALREADY_EXISTS", "Requested entity already exists")
        }
        let queue = try CloudTasksQueue(
            url: "cloudtasks://projects/p/locations/europe-west1?serviceAccount=invoker%40p.iam.gserviceaccount.com", credentials: nil,
            api: googleClient("cloudtasks", "https://cloudtasks.googleapis.com", transport))
        let task = HTTPTask(
            name: "report-1", url: "https://usage-report-abc.a.run.app/", body: Array(#"{"day":"2026-01-01"}"#.utf8),
            scheduleTime: Timestamp(secondsSinceEpoch: 1_767_225_600))
        try await queue.enqueue(task, queue: "usage-reports")
        await expectCode(.alreadyExists) { try await queue.enqueue(task, queue: "usage-reports") }
        let request = transport.requests[0]
        expectAccepted(discovery, request, as: "cloudtasks.projects.locations.queues.tasks.create")
        let sent = try #require(request.json?["task"])
        #expect(sent["name"] == .string("projects/p/locations/europe-west1/queues/usage-reports/tasks/report-1"))
        #expect(sent["scheduleTime"] == .string("2026-01-01T00:00:00Z"))
        #expect(sent["httpRequest"]?["oidcToken"]?["serviceAccountEmail"] == .string("invoker@p.iam.gserviceaccount.com"))
        #expect(sent["httpRequest"]?["oidcToken"]?["audience"] == .string("https://usage-report-abc.a.run.app"))
        #expect(sent["httpRequest"]?["body"] == .string(Data(task.body).base64EncodedString()))
        // A named task may be retried safely; the second create was answered, not repeated.
        #expect(transport.requests.count == 2)
    }

    @Test func cloudTasksURL_mustNameProjectAndLocation() {
        let api = googleClient("cloudtasks", "https://cloudtasks.googleapis.com", RecordingTransport { _, _ in .json(.object([:])) })
        #expect(throws: TollgateError.self) { try CloudTasksQueue(url: "cloudtasks://projects/p", credentials: nil, api: api) }
        #expect(throws: TollgateError.self) { try CloudTasksQueue(url: "cloudtasks://p/l", credentials: nil, api: api) }
    }

    // MARK: Secret Manager

    @Test(Peer.discoveryDocuments.trait) func secretAccess_checksCRC32C_cachesForItsTTL_andRefusesACorruptPayload() async throws {
        let discovery = try DiscoveryDocument.load("secretmanager.v1")
        let payload = Array("whsec_rotated_value".utf8)
        let corrupt = Counter()
        let transport = RecordingTransport { request, _ in
            let good = !request.url.contains("/secrets/corrupt/") || corrupt.next() < 0
            return .json(
                .object([
                    "name": .string("projects/p/secrets/s/versions/3"),
                    "payload": .object([
                        "data": .string(Data(payload).base64EncodedString()),
                        "dataCrc32c": .string(String(CRC32C.checksum(payload) ^ (good ? 0 : 1))),
                    ]),
                ]))
        }
        let clock = VirtualClock(start: Timestamp(secondsSinceEpoch: 1_767_225_600))
        let manager = SecretManagerClient(
            api: googleClient("secretmanager", "https://secretmanager.googleapis.com", transport), clock: clock, ttlSeconds: 60)
        #expect(try await manager.access("sm://projects/p/secrets/s") == "whsec_rotated_value")
        #expect(try await manager.access("sm://projects/p/secrets/s") == "whsec_rotated_value")
        #expect(transport.requests.count == 1)
        clock.advance(seconds: 61)
        _ = try await manager.access("sm://projects/p/secrets/s")
        #expect(transport.requests.count == 2)
        expectAccepted(discovery, transport.requests[0], as: "secretmanager.projects.secrets.versions.access")
        #expect(transport.requests[0].url.hasSuffix("/v1/projects/p/secrets/s/versions/latest:access"))
        await expectCode(.unavailable) { try await manager.access("sm://projects/p/secrets/corrupt/versions/2") }
    }

    @Test func startup_resolvesDeclaredSecretReferences_throughADCAndSecretManager() async throws {
        let transport = RecordingTransport { request, _ in
            if request.url.contains("/computeMetadata/") {
                return .json(.object(["access_token": .string("ya29.startup"), "expires_in": .integer(3_599)]))
            }
            let value = Array("whsec_from_secret_manager".utf8)
            return .json(
                .object([
                    "payload": .object([
                        "data": .string(Data(value).base64EncodedString()), "dataCrc32c": .string(String(CRC32C.checksum(value))),
                    ])
                ]))
        }
        let declaration = FunctionDeclaration(
            name: "f", trigger: .http(authenticated: false, retryingSender: false), secrets: ["HOOK", "PLAIN"])
        let environment = Environment(["HOOK": "sm://projects/p/secrets/hook/versions/4", "PLAIN": "literal", "OTHER": "sm://not/declared"])
        let resolved = try await Environment.resolvingSecrets(
            of: declaration, in: environment, google: GoogleCloud(environment: environment.values, transport: transport))
        #expect(
            resolved.values["HOOK"] == "whsec_from_secret_manager" && resolved.values["PLAIN"] == "literal"
                && resolved.values["OTHER"] == "sm://not/declared")
        let access = try #require(transport.requests.last)
        #expect(access.url == "https://secretmanager.googleapis.com/v1/projects/p/secrets/hook/versions/4:access")
        #expect(access.headers.contains { $0.name == "Authorization" && $0.value == "Bearer ya29.startup" })
        #expect(transport.requests.first?.headers.contains { $0.name == "Metadata-Flavor" && $0.value == "Google" } == true)
    }

    @Test func crc32c_matchesTheCastagnoliCheckValue() {
        // The standard check value of CRC-32C over "123456789".
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test(arguments: ["sm://projects/p/secrets", "sm://projects/p/secrets/s/versions/", "sm://p/s", "projects/p/secrets/s"])
    func secretReference_malformed_isInvalidArgument(_ reference: String) {
        #expect(throws: TollgateError.self) { try SecretManagerClient.versionName(reference) }
    }

    // MARK: Cloud Storage

    @Test(Peer.discoveryDocuments.trait) func storageRequests_areTheJSONAPIs() async throws {
        let discovery = try DiscoveryDocument.load("storage.v1")
        let object: JSONValue = .object([
            "name": .string("usage/a b.gz"), "bucket": .string("exports"), "size": .string("3"), "generation": .string("17"),
            "contentType": .string("application/gzip"),
        ])
        let transport = RecordingTransport { request, _ in
            request.url.contains("/o?") && request.method == "GET"
                ? .json(.object(["items": .array([object]), "nextPageToken": .string("t")])) : .json(object)
        }
        let blobs = CloudStorageBlobStore(bucket: "exports", api: googleClient("storage", "https://storage.googleapis.com", transport))
        #expect(try await blobs.write("usage/a b.gz", [1, 2, 3], contentType: "application/gzip", ifGenerationMatch: 0) == 17)
        #expect(try await blobs.attributes("usage/a b.gz")?.size == 3)
        #expect(try await blobs.list(prefix: "usage/", pageSize: 2, pageToken: "s").nextPageToken == "t")
        try await blobs.delete("usage/a b.gz", ifGenerationMatch: 17)
        let requests = transport.requests
        expectAccepted(discovery, requests[0], as: "storage.objects.insert", upload: "simple")
        #expect(requests[0].url.contains("ifGenerationMatch=0"))
        expectAccepted(discovery, requests[1], as: "storage.objects.get")
        #expect(requests[1].url.hasSuffix("/o/usage%2Fa%20b.gz"))
        expectAccepted(discovery, requests[2], as: "storage.objects.list")
        expectAccepted(discovery, requests[3], as: "storage.objects.delete")
        #expect(requests[3].url.hasSuffix("?ifGenerationMatch=17"))
        #expect(discovery.problems(response: object, of: "storage.objects.get").isEmpty)
    }

    // MARK: Errors

    @Test func googleErrorBodies_decodeToStatusReasonAndRetryDelay() {
        let firestore = GoogleAPIError(
            response: .json(
                .object([
                    "error": .object([
                        "code": .integer(429), "status": .string("RESOURCE_EXHAUSTED"), "message": .string("Quota exceeded"),
                        "details": .array([
                            .object([
                                "@type": .string("type.googleapis.com/google.rpc.ErrorInfo"), "reason": .string("RATE_LIMIT_EXCEEDED"),
                            ]),
                            .object(["@type": .string("type.googleapis.com/google.rpc.RetryInfo"), "retryDelay": .string("1.5s")]),
                        ]),
                    ])
                ]), status: 429), service: "firestore")
        #expect(firestore.status == "RESOURCE_EXHAUSTED" && firestore.reasons == ["RATE_LIMIT_EXCEEDED"])
        #expect(firestore.retryAfter == .milliseconds(1_500))
        #expect(firestore.tollgateError.code == .resourceExhausted)
        let storage = GoogleAPIError(
            response: .json(
                .object([
                    "error": .object([
                        "code": .integer(412), "message": .string("Precondition failed"),
                        "errors": .array([.object(["reason": .string("conditionNotMet")])]),
                    ])
                ]), status: 412), service: "storage")
        #expect(storage.status == "FAILED_PRECONDITION" && storage.reasons == ["conditionNotMet"])
        #expect(storage.tollgateError.code == .failedPrecondition)
        let html = GoogleAPIError(response: HTTPResponse(status: 502, body: Array("<html>Bad Gateway</html>".utf8)), service: "pubsub")
        #expect(html.tollgateError.code == .unavailable)
    }

    @Test func retries_onlyIdempotentCalls_andHonourRetryAfter() async throws {
        let transport = RecordingTransport { _, index in
            index < 2 ? HTTPResponse(status: 503, headers: [("Retry-After", "0")]) : .json(.object(["ok": .bool(true)]))
        }
        let api = googleClient("x", "https://x.googleapis.com", transport)
        #expect(try await api.json("GET", "/v1/thing", idempotent: true)["ok"] == .bool(true))
        #expect(transport.requests.count == 3)
        let once = RecordingTransport { _, _ in HTTPResponse(status: 503) }
        await expectCode(.unavailable) {
            try await googleClient("x", "https://x.googleapis.com", once).json("POST", "/v1/thing", idempotent: false)
        }
        #expect(once.requests.count == 1)
        let always = RecordingTransport { _, _ in HTTPResponse(status: 500) }
        await expectCode(.unavailable) {
            try await googleClient("x", "https://x.googleapis.com", always).json("GET", "/v1/thing", idempotent: true)
        }
        #expect(always.requests.count == 3)
    }
}
