import Foundation
import Testing
import TollgateGoogle
import TollgateModel
import TollgateSQLite
import TollgateTestSupport

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Where the `BlobStore` contract runs: the SQLite fake, or the Cloud Storage driver
/// against fake-gcs-server. The same assertions hold for both, so they cannot drift apart.
enum BlobBackend: String, ContractBackend {
    case sqliteFake
    case cloudStorageDriver

    enum Capability: Hashable, Sendable {
        /// `ifGenerationMatch` holds on deletes and resumable uploads too. fake-gcs-server
        /// honours it on multipart uploads only; Cloud Storage on all three, and the
        /// discovery-document checks prove the driver sends it.
        case everyPrecondition
    }

    var testDescription: String { rawValue }

    var capabilities: Set<Capability> { self == .sqliteFake ? [.everyPrecondition] : [] }

    var peer: Peer? { self == .cloudStorageDriver ? .fakeGCSServer : nil }

    func open() async throws -> ContractInstance<any BlobStore> {
        switch self {
        case .sqliteFake:
            return ContractInstance(SQLiteBlobStore(try temporaryDatabase()))
        case .cloudStorageDriver:
            let server = try await FakeGCSServer.start(buckets: ["tollgate-contract"])
            let google = GoogleCloud(environment: ["STORAGE_EMULATOR_HOST": server.host])
            return ContractInstance(try google.storage("gs://tollgate-contract")) { server.stop() }
        }
    }
}

/// The `BlobStore` port's contract: Cloud Storage's semantics, on every backend.
@Suite struct BlobStoreContractTests {
    let chunk = 256 * 1_024

    @Test(arguments: BlobBackend.supporting())
    func write_ifGenerationMatchZero_createsOnce_andAGenerationMatchReplaces(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let name = "usage/2026/01/01/part-00000.ndjson.gz"
            let first = try await blobs.write(name, [1, 2], contentType: "application/gzip", ifGenerationMatch: 0)
            await expectCode(.failedPrecondition) {
                try await blobs.write(name, [3], contentType: "application/gzip", ifGenerationMatch: 0)
            }
            await expectCode(.failedPrecondition) {
                try await blobs.write(name, [3], contentType: "application/gzip", ifGenerationMatch: first + 1)
            }
            let second = try await blobs.write(name, [3, 4, 5], contentType: "application/gzip", ifGenerationMatch: first)
            #expect(second != first)
            let object = try await blobs.read(name)
            #expect(object.data == [3, 4, 5] && object.generation == second && object.contentType == "application/gzip")
            let attributes = try #require(try await blobs.attributes(name))
            #expect(attributes.size == 3 && attributes.generation == second && attributes.contentType == "application/gzip")
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func resumableUpload_ofSeveralChunks_isInvisibleUntilFinished_thenWhole(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let upload = try await blobs.upload("a/b", contentType: "application/x-ndjson", ifGenerationMatch: 0)
            let parts = [[UInt8](repeating: 1, count: chunk), [UInt8](repeating: 2, count: 2 * chunk), [UInt8](repeating: 3, count: 10)]
            for part in parts { try await upload.append(part) }
            #expect(try await blobs.attributes("a/b") == nil)
            let generation = try await upload.finish()
            let whole = parts.flatMap { $0 }
            let object = try await blobs.read("a/b")
            #expect(object.data == whole && object.generation == generation && object.contentType == "application/x-ndjson")
            #expect(try await blobs.attributes("a/b")?.size == Int64(whole.count))
            // A range across chunk boundaries, one clamped at the end, one past it.
            #expect(try await blobs.read("a/b", range: Int64(chunk - 2)..<Int64(chunk + 3)) == [1, 1, 2, 2, 2])
            #expect(try await blobs.read("a/b", range: Int64(whole.count - 4)..<Int64(whole.count + 100)) == [3, 3, 3, 3])
            #expect(try await blobs.read("a/b", range: Int64(whole.count + 5)..<Int64(whole.count + 9)) == [])
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func resumableUpload_ofNothing_makesAnEmptyObject(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let upload = try await blobs.upload("empty", contentType: "text/plain", ifGenerationMatch: 0)
            _ = try await upload.finish()
            #expect(try await blobs.read("empty").data == [])
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func uploadChunkNotAMultipleOf256KiB_mustBeTheLast(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let upload = try await blobs.upload("x", contentType: "text/plain", ifGenerationMatch: nil)
            try await upload.append([1, 2, 3])
            await expectCode(.invalidArgument) { try await upload.append([4]) }
        }
    }

    @Test(arguments: BlobBackend.supporting(.everyPrecondition))
    func createOnlyUpload_failsAtFinish_whenTheObjectAppearedMeanwhile(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let upload = try await blobs.upload("x", contentType: "text/plain", ifGenerationMatch: 0)
            try await upload.append([1])
            try await blobs.write("x", [9], contentType: "text/plain", ifGenerationMatch: 0)
            await expectCode(.failedPrecondition) { try await upload.finish() }
            #expect(try await blobs.read("x").data == [9])
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func list_byPrefix_inNameOrder_acrossPages(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let names = ["usage/2026/01/02/b", "usage/2026/01/01/a", "usage/2026/01/01/c", "usage/2026/01/01/b", "other/x"]
            for name in names { try await blobs.write(name, [0], contentType: "text/plain", ifGenerationMatch: 0) }
            var listed: [String] = []
            var token: String?
            var pages = 0
            repeat {
                let page = try await blobs.list(prefix: "usage/2026/01/", pageSize: 2, pageToken: token)
                #expect(page.names.count <= 2)
                listed += page.names
                token = page.nextPageToken
                pages += 1
            } while token != nil && pages < 10
            #expect(listed == ["usage/2026/01/01/a", "usage/2026/01/01/b", "usage/2026/01/01/c", "usage/2026/01/02/b"])
            #expect(pages >= 2)
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func delete_honoursGeneration_andMissingIsNotFound(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let generation = try await blobs.write("d", [1], contentType: "text/plain", ifGenerationMatch: 0)
            if backend.capabilities.contains(.everyPrecondition) {
                await expectCode(.failedPrecondition) { try await blobs.delete("d", ifGenerationMatch: generation + 1) }
            }
            try await blobs.delete("d", ifGenerationMatch: generation)
            #expect(try await blobs.attributes("d") == nil)
            await expectCode(.notFound) { try await blobs.read("d") }
            await expectCode(.notFound) { try await blobs.read("d", range: 0..<1) }
            await expectCode(.notFound) { try await blobs.delete("d", ifGenerationMatch: nil) }
        }
    }

    @Test(arguments: BlobBackend.supporting())
    func objectNames_withSpacesPlusAndUnicode_roundTrip(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let name = "exports/a b+c/é?#%.json"
            try await blobs.write(name, [7], contentType: "application/json", ifGenerationMatch: 0)
            #expect(try await blobs.read(name).data == [7])
            #expect(try await blobs.list(prefix: "exports/a b+c/", pageSize: 10, pageToken: nil).names == [name])
            await expectCode(.invalidArgument) {
                try await blobs.write("bad\nname", [1], contentType: "text/plain", ifGenerationMatch: nil)
            }
        }
    }

    /// A V4 signed URL expires within 1 second to 7 days, as GCS rules; the link names the
    /// object. Against fake-gcs-server (no credentials, no signatures) it is the media link,
    /// and it downloads the object.
    @Test(arguments: BlobBackend.supporting())
    func signedURL_expiresWithinSevenDays_andNamesTheObject(_ backend: BlobBackend) async throws {
        try await backend.with { blobs in
            let name = "usage/2026/01/01/accounts/user_1.receipt.json"
            try await blobs.write(name, Array("{}\n".utf8), contentType: "application/json", ifGenerationMatch: 0)
            let now = Timestamp(Date())
            for seconds: Int64 in [0, 604_801] {
                await expectCode(.invalidArgument) { try await blobs.signedURL(name, expiresInSeconds: seconds, now: now) }
            }
            let link = try await blobs.signedURL(name, expiresInSeconds: 900, now: now)
            switch backend {
            case .sqliteFake:
                #expect(link.hasPrefix("https://\(SQLiteBlobStore.linkHost)/local/\(name)?"))
                #expect(link.contains("X-Goog-Expires=900") && link.contains("X-Goog-Signature="))
            case .cloudStorageDriver:
                let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: link)))
                #expect((response as? HTTPURLResponse)?.statusCode == 200 && Array(data) == Array("{}\n".utf8))
            }
        }
    }
}
