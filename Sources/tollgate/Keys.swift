import ArgumentParser
import Foundation
import TollgateAuth
import TollgateDrivers
import TollgateEmulator
import TollgateModel
import TollgateRuntime

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys in TOLLGATE_STORE (hashed with TOLLGATE_KEY_PEPPER).",
        subcommands: [Create.self, List.self, Revoke.self])

    /// The store and the hasher every key command needs.
    struct Context {
        let ports: Ports
        let keys: APIKeys

        static func open() async throws -> Context {
            let environment = Environment()
            let ports = try await Ports.open(environment: environment)
            let pepper: String
            if let configured = try? environment.text(AuthSettings.keyPepper) {
                pepper = configured
            } else if (try? environment.required(Ports.Settings.store))?.hasPrefix("sqlite:") ?? true {
                // Local state: the emulator's pepper, so `tollgate replay`/`serve` accept the keys.
                FileHandle.standardError.write(Data("note: TOLLGATE_KEY_PEPPER is unset; using the emulator's local pepper\n".utf8))
                pepper = LocalEnvironment.keyPepper
            } else {
                throw ValidationError("TOLLGATE_KEY_PEPPER is not set")
            }
            do {
                return Context(ports: ports, keys: try APIKeys(pepper: pepper))
            } catch {
                throw ValidationError("TOLLGATE_KEY_PEPPER must be at least 32 bytes")
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it once; only its hash is stored.")

        @Option(help: "The account the key belongs to.") var account: String
        @Option(help: "A name to recognise the key by.") var name: String?
        @Option(help: "When the key stops working: YYYY-MM-DD (UTC midnight) or RFC 3339.") var expires: String?
        @Option(help: "live or test.") var mode: String = "live"

        func run() async throws {
            guard let keyMode = APIKeys.Mode(rawValue: mode) else { throw ValidationError("--mode is live or test") }
            let expiry = try expires.map(parseDate)
            let context = try await Context.open()
            let now = context.ports.clock.now()
            if let expiry, expiry <= now { throw ValidationError("--expires is in the past") }
            _ = try DocumentPath(collection: Account.collection, id: account)
            let key = APIKeys.generate(mode: keyMode)
            let record = APIKeyRecord(
                accountId: account, displayPrefix: APIKeys.displayPrefix(of: key), name: name, created: now, expires: expiry, revoked: nil)
            try await context.ports.store.create(
                try DocumentPath(collection: APIKeyRecord.collection, id: context.keys.hash(key)), try FieldValueEncoder().encode(record))
            FileHandle.standardError.write(Data("Created \(record.displayPrefix)… for \(account). It is shown once; store it now:\n".utf8))
            print(key)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an account's keys (prefixes only; keys are never stored).")

        @Option(help: "The account.") var account: String

        func run() async throws {
            let context = try await Context.open()
            let now = context.ports.clock.now()
            let query = DocumentQuery(collection: APIKeyRecord.collection).filter("accountId", .equal, .string(account)).order(
                by: "created")
            let records = try await context.ports.store.query(query).map { try $0.decode(APIKeyRecord.self) }
            print("PREFIX        STATUS   CREATED               EXPIRES               NAME")
            for record in records {
                let status =
                    record.revoked.map { $0 <= now ? "revoked" : "active" }
                    ?? (record.expires.map { $0 <= now ? "expired" : "active" } ?? "active")
                let columns = [
                    record.displayPrefix.padding(toLength: 13, withPad: " ", startingAt: 0),
                    status.padding(toLength: 8, withPad: " ", startingAt: 0),
                    record.created.rfc3339.padding(toLength: 21, withPad: " ", startingAt: 0),
                    (record.expires?.rfc3339 ?? "-").padding(toLength: 21, withPad: " ", startingAt: 0), record.name ?? "",
                ]
                print(columns.joined(separator: " "))
            }
            if records.isEmpty { FileHandle.standardError.write(Data("no keys for \(account)\n".utf8)) }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a key, named by the key itself or by its display prefix. Takes effect within the cache TTL.")

        @Argument(help: "The key, or its display prefix (tg_live_AbCd).") var keyOrPrefix: String

        func run() async throws {
            let context = try await Context.open()
            let store = context.ports.store
            let path: DocumentPath
            if APIKeys.isWellFormed(keyOrPrefix) {
                path = try DocumentPath(collection: APIKeyRecord.collection, id: context.keys.hash(keyOrPrefix))
            } else {
                let matches = try await store.query(
                    DocumentQuery(collection: APIKeyRecord.collection).filter("displayPrefix", .equal, .string(keyOrPrefix)).limit(2))
                guard matches.count == 1, let only = matches.first else {
                    throw ValidationError(
                        matches.isEmpty ? "no key with prefix \(keyOrPrefix)" : "prefix \(keyOrPrefix) names several keys; give the key")
                }
                path = only.path
            }
            let now = context.ports.clock.now()
            let revoked = try await store.runTransaction { transaction -> Bool in
                guard let record = try await transaction.get(path)?.decode(APIKeyRecord.self) else {
                    throw TollgateError(.notFound, "no such key")
                }
                if record.revoked != nil { return false }
                try transaction.update(path, ["revoked": .timestamp(now)])
                return true
            }
            print(revoked ? "revoked" : "already revoked")
        }
    }
}

func parseDate(_ text: String) throws -> Timestamp {
    if let time = Timestamp(rfc3339: text) { return time }
    if let day = Timestamp(rfc3339: text + "T00:00:00Z") { return day }
    throw ValidationError("'\(text)' is not YYYY-MM-DD or RFC 3339")
}
