import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization
import TollgateDrivers
import TollgateEmulator
import TollgateJOSE
import TollgateModel
import TollgatePubSubGRPC
import TollgateRuntime
import TollgateSQLite
import TollgateTesting

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run every function as the cloud wires them: Pub/Sub pushes, Scheduler jobs, Cloud Tasks, on one state file.",
        discussion: """
            Each function is served under its own path (http://HOST:PORT/usage-recorder/), or on its own port with --ports.
            Published messages are pushed to the declared subscriptions with Pub/Sub's ack codes, backoff and dead-letter
            topics; jobs fire on their cron schedules; queued tasks run by their queue's RetryConfig. Drive it with
            `tollgate publish`, `tollgate trigger`, `tollgate clock advance` and `tollgate outage`; inspect it with
            `tollgate state` and `tollgate dead-letters`.
            """)

    enum ClockChoice: String, ExpressibleByArgument, CaseIterable {
        case wall, virtual
    }

    @Option(help: "The port of the front (every function under its path, and the control API); 0 picks a free one.")
    var port = 8080

    @Option(
        help: """
            The port of Pub/Sub's gRPC front, for Google's client libraries (PUBSUB_EMULATOR_HOST); default 8085, as \
            Google's emulator, or a free one with --port 0.
            """)
    var pubsubPort: Int?

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Flag(help: "Also serve each function on its own port: PORT+1, PORT+2, … in the banner's order.")
    var ports = false

    @Option(help: "The SQLite state file every function shares.")
    var state = ".tollgate/state.db"

    @Option(help: "wall: real time. virtual: time stands still until `tollgate clock advance` moves it.")
    var clock: ClockChoice = .wall

    @Option(
        help: """
            Where the clock starts (RFC 3339; default: now). On the wall clock time then moves as usual, in serve and in \
            every process (TOLLGATE_CLOCK_OFFSET_SECONDS).
            """)
    var start: String?

    @Flag(help: "Run the real function executables as separate processes on the state file (wall clock only).")
    var processes = false

    @Option(
        help: """
            With --processes: the functions' store instead of the state file, such as firestore://PROJECT (with \
            FIRESTORE_EMULATOR_HOST for Google's emulator). Tasks stay on serve's queue.
            """)
    var store: String?

    @Option(
        help: """
            With --processes: the functions' Pub/Sub, pubsub://PROJECT on Google's emulator (PUBSUB_EMULATOR_HOST). \
            serve creates the declared topics and push subscriptions there and signs the emulator's pushes.
            """)
    var pubsub: String?

    @Option(help: "With --processes: the functions' blob store, such as gs://BUCKET (with STORAGE_EMULATOR_HOST).")
    var blobs: String?

    @Flag(help: "No live log of deliveries.")
    var quiet = false

    /// The emulator hosts and credentials the drivers read, handed to every process.
    static let passedThrough = [
        "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
    ]

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port takes 0 to 65535") }
        if let pubsubPort, !(0...65_535).contains(pubsubPort) { throw ValidationError("--pubsub-port takes 0 to 65535") }
        if processes, clock == .virtual {
            throw ValidationError("--processes runs the real executables, which keep the wall clock; drop --clock virtual")
        }
        if !processes, store != nil || pubsub != nil || blobs != nil {
            throw ValidationError("--store, --pubsub and --blobs give the executables other ports; add --processes")
        }
        if let store, !store.hasPrefix("firestore://"), !store.hasPrefix("sqlite:") {
            throw ValidationError("--store takes a firestore:// or sqlite: URL")
        }
        if let pubsub {
            guard pubsub.hasPrefix("pubsub://"), pubsub.count > "pubsub://".count else {
                throw ValidationError("--pubsub takes pubsub://PROJECT")
            }
            guard TollgateModel.Environment().isSet(Ports.Settings.pubsubEmulator) else {
                throw ValidationError("--pubsub wires Google's Pub/Sub emulator: set PUBSUB_EMULATOR_HOST")
            }
        }
        if let blobs, !blobs.hasPrefix("gs://"), !blobs.hasPrefix("sqlite:") {
            throw ValidationError("--blobs takes a gs:// or sqlite: URL")
        }
        if let start, Timestamp(rfc3339: start) == nil { throw ValidationError("--start \(start) is not RFC 3339") }
    }

    func run() async throws {
        let startsAt = start.flatMap { Timestamp(rfc3339: $0) }
        // A start on the wall clock is a fixed offset from it, the same in every process.
        let offsetSeconds = startsAt.map { ($0.microsecondsSinceEpoch - SystemClock().now().microsecondsSinceEpoch) / 1_000_000 } ?? 0
        let clock: any TollgateModel.Clock =
            self.clock == .virtual
            ? VirtualClock(start: startsAt ?? SystemClock().now())
            : (offsetSeconds == 0 ? SystemClock() as any TollgateModel.Clock : ShiftedClock(offsetSeconds: offsetSeconds))
        let database = try SQLiteDatabase(path: state, clock: clock)
        let issuer = try LocalOIDCIssuer()
        let quietLogger = Logger(label: "tollgate.serve", factory: { _ in SwiftLogNoOpLogHandler() })
        let stripe = StripeFakeServer(database)
        let stripeURL = try await stripe.start(logger: quietLogger)
        defer { stripe.stop() }

        var targets: [String: LocalCloud.Target] = [:]
        var inProcess: [EmulatedFunction] = []
        var started: [FunctionProcess] = []
        defer { for process in started { process.stop() } }
        let stateFolder = URL(fileURLWithPath: state).deletingLastPathComponent().appendingPathComponent("serve")
        let clerk = try LocalOIDCIssuer(keyID: "clerk-local-1")
        let webhookSecrets = ["current", "previous"]
        let exportSigningKey = try LocalEnvironment.exportSigningKey(beside: database.path)
        if processes {
            try FileManager.default.createDirectory(at: stateFolder, withIntermediateDirectories: true)
            let keys = try LocalKeys(oidc: issuer, clerk: clerk)
            let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
            // Ports not given stay on the state file; tasks always do (serve runs the queue).
            let local = "sqlite://\(database.path)"
            var portURLs = ProcessInfo.processInfo.environment.filter { Self.passedThrough.contains($0.key) }
            portURLs.merge([
                "TOLLGATE_STORE": store ?? local, "TOLLGATE_PUBSUB": pubsub ?? local, "TOLLGATE_BLOBS": blobs ?? local,
                "TOLLGATE_TASKS": local,
            ]) { _, url in url }
            if offsetSeconds != 0 { portURLs["TOLLGATE_CLOCK_OFFSET_SECONDS"] = String(offsetSeconds) }
            for declaration in EmulatedFunction.declarations {
                // The binary Cloud Run runs, as each function: K_SERVICE (the function's name,
                // as in its local environment) chooses, as a service's name does in the cloud.
                let process = try await FunctionProcess(
                    declaration: declaration, executable: binaries.appendingPathComponent("tollgate-functions"),
                    environment: try LocalEnvironment.environment(
                        for: declaration, statePath: database.path, keys: keys, stripeBaseURL: stripeURL, profile: .cloud,
                        webhookSecrets: webhookSecrets, exportSigningKey: exportSigningKey
                    ).merging(portURLs.merging(["PORT": "0"]) { _, port in port }) { _, given in given },
                    logFile: stateFolder.appendingPathComponent("\(declaration.name).log"))
                started.append(process)
                targets[declaration.name] = process.target
            }
        } else {
            for name in EmulatedFunction.names {
                let function = try EmulatedFunction.make(
                    name, ports: Ports(sqlite: database), issuer: issuer, clerk: clerk, webhookSecrets: webhookSecrets,
                    stripeBaseURL: stripeURL, profile: .cloud, exportSigningKey: exportSigningKey, logger: quietLogger)
                targets[name] = LocalCloud.Target(declaration: function.declaration) { request, _ in await function.deliver(request) }
                inProcess.append(function)
            }
        }

        let live = LiveLog(enabled: !quiet)
        let cloud = LocalCloud(database: database, clock: clock, issuer: issuer, clerk: clerk, targets: targets) { live.write($0) }
        try await cloud.start()
        let router = LocalCloudRouter(cloud: cloud)

        let bound = Mutex<[String: Int]>([:])
        // A Pub/Sub emulator that cannot be wired stops serve: its functions would never
        // be pushed a message.
        let wiringFailed = Mutex(false)
        let running = Mutex<ServiceGroup?>(nil)
        let expected = 2 + (ports ? EmulatedFunction.names.count : 0)
        var elsewhere: [String] = []
        if let store { elsewhere.append("store \(store)") }
        if let pubsub {
            elsewhere.append("Pub/Sub \(pubsub) on Google's emulator: the declared push subscriptions, signed by serve")
        }
        if let blobs { elsewhere.append("blobs \(blobs)") }
        let banner = Banner(
            host: host, state: database.path, clock: clock, processes: processes ? stateFolder.path : nil,
            schedule: await cloud.schedule(), elsewhere: elsewhere)
        let announce: @Sendable (String, Int) async -> Void = { name, port in
            // The blob fake's signed links (account-api's receipts) lead here, from every process.
            if name == "" {
                let address = host == "0.0.0.0" ? "127.0.0.1" : host
                try? await SQLiteBlobStore(database).setLinkBase("http://\(address):\(port)\(LocalCloudRouter.storagePrefix)")
                if let pubsub, let emulator = try? TollgateModel.Environment().text(Ports.Settings.pubsubEmulator) {
                    do {
                        try await PubSubEmulatorWiring.declare(
                            host: emulator, project: String(pubsub.dropFirst("pubsub://".count)), pushBase: "http://\(address):\(port)")
                    } catch {
                        FileHandle.standardError.write(Data("Pub/Sub emulator \(emulator) could not be wired: \(error)\n".utf8))
                        wiringFailed.withLock { $0 = true }
                        await running.withLock { $0 }?.triggerGracefulShutdown()
                    }
                }
            }
            let all = bound.withLock { bound -> [String: Int]? in
                bound[name] = port
                return bound.count == expected ? bound : nil
            }
            if let all { banner.print(ports: all) }
        }
        var services: [any Service] = []
        let front = Application(
            responder: CallbackResponder<BasicRequestContext> { request, _ in await router.respond(to: request) },
            server: HTTPBridge.server, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { await announce("", $0.localAddress?.port ?? 0) }, logger: quietLogger)
        services.append(front)
        if ports {
            for (index, name) in EmulatedFunction.names.enumerated() {
                services.append(
                    Application(
                        responder: CallbackResponder<BasicRequestContext> { request, _ in await router.function(name, request) },
                        server: HTTPBridge.server,
                        configuration: .init(address: .hostname(host, port: port == 0 ? 0 : port + 1 + index), serverName: nil),
                        onServerRunning: { await announce(name, $0.localAddress?.port ?? 0) }, logger: quietLogger))
            }
        }
        let grpc = PubSubGRPCServer(pubsub: LocalPubSub(cloud: cloud), host: host, port: pubsubPort ?? (port == 0 ? 0 : 8085))
        services.append(GRPCFront(server: grpc, announce: { await announce(Banner.pubsubGRPC, $0) }))
        services.append(DispatchLoop(cloud: cloud))
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup) },
                gracefulShutdownSignals: [.sigterm, .sigint], logger: quietLogger))
        running.withLock { $0 = group }
        try await group.run()
        // As each function's own server does on SIGTERM (the processes do it themselves).
        for function in inProcess { await function.drain() }
        live.line("stopped")
        if wiringFailed.withLock({ $0 }) { throw ExitCode(69) }
    }
}

/// Runs the local cloud's dispatch until the group shuts down.
struct DispatchLoop: Service {
    let cloud: LocalCloud
    func run() async throws {
        await cancelWhenGracefulShutdown { await cloud.run() }
    }
}

/// Serves Pub/Sub's gRPC front until the group shuts down, announcing its port once bound.
struct GRPCFront: Service {
    let server: PubSubGRPCServer
    let announce: @Sendable (Int) async -> Void

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingTaskGroup { group in
                group.addTask { try await server.serve() }
                await announce(try await server.listeningPort())
                try await group.waitForAll()
            }
        } onGracefulShutdown: {
            server.stop()
        }
    }
}

/// The start-up banner: every function, its trigger, its URL; the jobs; the state file.
struct Banner: Sendable {
    /// The key of the gRPC front's port among the bound ports.
    static let pubsubGRPC = "pubsub-grpc"

    let host: String
    let state: String
    let clock: any TollgateModel.Clock
    let processes: String?
    let schedule: [(job: String, function: String, schedule: CronSchedule, next: Timestamp)]
    /// The functions' ports where they are not the state file (--store, --pubsub, --blobs).
    var elsewhere: [String] = []

    func print(ports: [String: Int]) {
        let address = host == "0.0.0.0" ? "127.0.0.1" : host
        let front = "http://\(address):\(ports[""] ?? 0)"
        var lines = [
            "Tollgate local cloud",
            "  state   \(state)",
            "  clock   \(clock is VirtualClock ? "virtual, at \(clock.now().rfc3339) (tollgate clock advance 1d)" : clock is ShiftedClock ? "wall, moved: now \(clock.now().rfc3339)" : "wall")",
            "  run     \(processes.map { "each function as its own process, logs in \($0)/" } ?? "every function in this process")",
        ]
        lines += elsewhere.map { "  ports   \($0)" }
        lines.append("")
        for declaration in EmulatedFunction.declarations {
            let url = ports[declaration.name].map { "http://\(host):\($0)/" } ?? "\(front)/\(declaration.name)/"
            let name = declaration.name.padding(toLength: 16, withPad: " ", startingAt: 0)
            lines.append("  \(name)\(url.padding(toLength: 44, withPad: " ", startingAt: 0))\(Self.describe(declaration, schedule))")
        }
        lines += [
            "",
            "  Pub/Sub gRPC  PUBSUB_EMULATOR_HOST=\(address):\(ports[Self.pubsubGRPC] ?? 0)   (Google's client libraries)",
            "  Pub/Sub REST  \(front)/v1/projects/\(LocalCloudNames.project)/topics/TOPIC:publish   (tollgate publish usage-events --data FILE)",
            "  Scheduler     POST \(front)/v1/projects/\(LocalCloudNames.project)/locations/local/jobs/JOB:run   (tollgate trigger JOB)",
            "  state         tollgate state dump --store sqlite://\(state)",
            "listening on \(front)",
        ]
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    static func describe(
        _ declaration: FunctionDeclaration, _ schedule: [(job: String, function: String, schedule: CronSchedule, next: Timestamp)]
    ) -> String {
        var text: String
        switch declaration.trigger {
        case .http(let authenticated, _):
            switch declaration.webhookSignature {
            case .stripe: text = "HTTP, Stripe-signed"
            case .svix: text = "HTTP, Svix-signed (Clerk)"
            case nil: text = authenticated ? "HTTP, OIDC" : "HTTP"
            }
        case .pubSub(let topic, let attempts, _):
            text = "Pub/Sub \(topic), dead letters after \(attempts) attempts"
        case .cloudTasks(let queue, let retry, let limits):
            text =
                "Cloud Tasks \(queue), \(retry.maxAttempts) attempts, \(retry.minBackoffSeconds)-\(retry.maxBackoffSeconds) s, \(limits.maxConcurrentDispatches) at once"
        case .scheduler(let job, _, _):
            let entry = schedule.first { $0.job == job }
            text =
                "Scheduler \"\(entry?.schedule.description ?? "")\" \(entry?.schedule.timeZone.identifier ?? ""), next \(entry?.next.rfc3339 ?? "")"
        }
        for subscription in declaration.subscriptions { text += "; Pub/Sub \(subscription.topic) at \(subscription.path)" }
        return text
    }
}

/// The live log: one line per delivery (time, function, trigger, what, status, latency, attempt).
struct LiveLog: Sendable {
    let enabled: Bool

    func write(_ delivery: LocalCloud.Delivery) {
        guard enabled else { return }
        let status = delivery.status.map(String.init) ?? "---"
        let milliseconds = Double(delivery.latency.components.attoseconds) / 1e15 + Double(delivery.latency.components.seconds) * 1_000
        var text = [
            delivery.time.rfc3339, delivery.function.padding(toLength: 15, withPad: " ", startingAt: 0),
            delivery.trigger.padding(toLength: 10, withPad: " ", startingAt: 0),
            delivery.detail.padding(toLength: 36, withPad: " ", startingAt: 0), status,
            String(format: "%8.1f ms", milliseconds), "attempt \(delivery.attempt)",
        ].joined(separator: "  ")
        if delivery.status == nil && delivery.outcome.isEmpty { text += "  no answer in time" }
        if !delivery.outcome.isEmpty { text += "  " + delivery.outcome }
        line(text)
    }

    func line(_ text: String) {
        guard enabled else { return }
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}
