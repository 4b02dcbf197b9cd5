import ArgumentParser
import Foundation
import TollgateEmulator
import TollgateGoogle
import TollgateHTTP
import TollgateModel
import TollgateRuntime
import TollgateSQLite

/// `--url`: a running `tollgate serve` (else `TOLLGATE_SERVE_URL`, else port 8080 here).
struct LocalCloudAddress: ParsableArguments {
    @Option(help: "The local cloud's URL (default: TOLLGATE_SERVE_URL, else http://127.0.0.1:8080).")
    var url: String?

    var base: String {
        let chosen = url ?? (try? Environment().required(LocalEnvironment.serveURLSetting)) ?? "http://127.0.0.1:8080"
        return chosen.hasSuffix("/") ? String(chosen.dropLast()) : chosen
    }

    /// Sends a request; answers the decoded JSON body, or throws with Google's error message.
    func call(_ method: String, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        let request = HTTPRequest(
            method: method, url: base + path, headers: [(name: "Content-Type", value: "application/json")],
            body: body.map { [UInt8]($0.rendered().utf8) } ?? [], timeout: .seconds(3_600))
        let response: HTTPResponse
        do { response = try await CurlHTTPClient().send(request) } catch {
            throw LocalCloudUnreachable(base: base)
        }
        let answer = try? JSONValue.parse(Data(response.body))
        guard (200..<300).contains(response.status) else {
            let message = answer?["error"]?["message"]?.stringValue ?? "HTTP \(response.status)"
            FileHandle.standardError.write(Data("\(message)\n".utf8))
            throw ExitCode(response.status == 404 || response.status == 400 ? 64 : 1)
        }
        return answer ?? .null
    }
}

struct LocalCloudUnreachable: Error, CustomStringConvertible {
    let base: String
    var description: String { "no local cloud answers at \(base): start one with `swift run tollgate serve`" }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a message to a topic of a running local cloud, through the Pub/Sub driver the functions use.")

    @Argument(help: "The topic, such as usage-events.")
    var topic: String

    @Option(help: "A file holding the message data ('-' for standard input).")
    var data: String

    @Option(name: .customLong("attribute"), help: "An attribute, name=value; repeatable.")
    var attributes: [String] = []

    @Option(help: "An ordering key.")
    var orderingKey: String?

    @OptionGroup var cloud: LocalCloudAddress

    func run() async throws {
        let bytes: Data
        if data == "-" {
            bytes = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let read = FileManager.default.contents(atPath: data) else { throw ValidationError("cannot read \(data)") }
            bytes = read
        }
        let attributes = try nameValuePairs(attributes, option: "--attribute")
        let message = OutgoingMessage(data: [UInt8](bytes), attributes: attributes, orderingKey: orderingKey)
        do { try message.validate() } catch let error as TollgateError { throw ValidationError(error.message) }
        // Tollgate's own Pub/Sub driver, pointed at the local cloud as at any emulator.
        let host = cloud.base.replacingOccurrences(of: "http://", with: "")
        let publisher = try GoogleCloud(environment: ["PUBSUB_EMULATOR_HOST": host]).pubsub("pubsub://\(LocalCloudNames.project)")
        do {
            print(try await publisher.publish(message, to: topic))
        } catch let error as TollgateError where error.code == .notFound || error.code == .invalidArgument {
            FileHandle.standardError.write(Data("\(error.message)\n".utf8))
            throw ExitCode(64)
        } catch let error as TollgateError where error.code == .unavailable {
            throw LocalCloudUnreachable(base: cloud.base)
        }
    }
}

struct Trigger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Cloud Scheduler job of a running local cloud now, as `gcloud scheduler jobs run` does.")

    @Argument(help: "The job: quota-reset, usage-export or cleanup.")
    var job: String

    @OptionGroup var cloud: LocalCloudAddress

    func run() async throws {
        let answer = try await cloud.call("POST", "/v1/projects/\(LocalCloudNames.project)/locations/local/jobs/\(job):run")
        if let code = answer["status"]?["code"]?.integerValue, code != 0 {
            print("\(job): failed (\(answer["status"]?["message"]?.stringValue ?? "code \(code)"))")
            throw ExitCode.failure
        }
        print("\(job): ran at \(answer["lastAttemptTime"]?.stringValue ?? "?")")
    }
}

struct ClockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clock", abstract: "Show or move the clock of a running local cloud.", subcommands: [Show.self, Advance.self],
        defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the local cloud's time.")
        @OptionGroup var cloud: LocalCloudAddress
        func run() async throws {
            let answer = try await cloud.call("GET", "/_emulator/clock")
            print("\(answer["now"]?.stringValue ?? "?") (\(answer["mode"]?.stringValue ?? "?"))")
        }
    }

    struct Advance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move the virtual clock forward, running every job, push and task that falls due on the way.")

        @Argument(help: "How far: 90s, 10m, 2h, 30d.")
        var duration: String

        @OptionGroup var cloud: LocalCloudAddress

        func run() async throws {
            guard let seconds = Self.seconds(duration) else {
                throw ValidationError("\(duration) is not a duration such as 90s, 10m, 2h or 30d")
            }
            let answer = try await cloud.call("POST", "/_emulator/clock", body: .object(["advanceSeconds": .integer(seconds)]))
            print(answer["now"]?.stringValue ?? "?")
        }

        static func seconds(_ text: String) -> Int64? {
            guard let unit = text.last, let value = Int64(text.dropLast()), value >= 0 else { return nil }
            switch unit {
            case "s": return value
            case "m": return value * 60
            case "h": return value * 3_600
            case "d": return value * 86_400
            default: return nil
            }
        }
    }
}

struct Outage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a function of a running local cloud answer an error for its next deliveries, to watch retries and dead letters.")

    @Argument(help: "The function, such as usage-recorder.")
    var function: String

    @Option(help: "The status it answers.")
    var status = 503

    @Option(help: "How many deliveries fail.")
    var deliveries = 1

    @OptionGroup var cloud: LocalCloudAddress

    func run() async throws {
        _ = try await cloud.call(
            "POST", "/_emulator/outages",
            body: .object(["function": .string(function), "status": .integer(Int64(status)), "deliveries": .integer(Int64(deliveries))]))
        print("\(function): the next \(deliveries) deliveries answer \(status)")
    }
}

struct Session: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a Clerk session token of a running local cloud's Clerk instance, to call account-api as a signed-in user.",
        discussion: """
            The user needs an account first: a Clerk user.created delivered to clerk-webhook (or users/{id} written). \
            Call with: curl -H "Authorization: Bearer $(tollgate session --user user_1)" http://127.0.0.1:8080/account-api/v1/account
            """)

    @Option(help: "The Clerk user id (sub).")
    var user: String

    @Option(help: "An active organization: the session acts for its account.")
    var organization: String?

    @Option(help: "The member's role in the organization: org:admin manages keys.")
    var role = "org:member"

    @Option(help: "Clerk's session-token claims version: 2 (o.id, o.rol) or 1 (org_id, org_role).")
    var claimsVersion = 2

    @Option(help: "Seconds until the token expires, on the local cloud's clock.")
    var expiresIn = 3_600

    @OptionGroup var cloud: LocalCloudAddress

    func run() async throws {
        var body: [String: JSONValue] = ["user": .string(user), "expiresIn": .integer(Int64(expiresIn))]
        if let organization {
            body["organization"] = .string(organization)
            body["role"] = .string(role)
            body["version"] = .integer(Int64(claimsVersion))
        }
        let answer = try await cloud.call("POST", "/_emulator/clerk/sessions", body: .object(body))
        print(answer["token"]?.stringValue ?? "")
    }
}
