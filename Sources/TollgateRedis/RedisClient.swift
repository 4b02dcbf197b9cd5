import Crypto
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import TollgateModel

/// A reply of the Redis protocol (RESP2).
public enum RESPValue: Sendable, Equatable {
    case simple(String)
    case error(String)
    case integer(Int64)
    /// nil: the null bulk string (a missing value).
    case bulk([UInt8]?)
    /// nil: the null array.
    case array([RESPValue]?)

    public var string: String? {
        switch self {
        case .simple(let text): text
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        case .integer(let value): String(value)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk, .simple: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RESPValue]? { if case .array(let items?) = self { items } else { nil } }
}

/// A Redis server's address: `redis://HOST:PORT[/DB]` (Memorystore's primary endpoint).
public struct RedisAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: Int

    /// - Throws: a message naming what is wrong, for a ``ConfigurationError``.
    public init(url text: String) throws(TollgateError) {
        guard let url = URL(string: text), url.scheme == "redis", let host = url.host, !host.isEmpty, url.user == nil,
            url.query == nil
        else { throw TollgateError(.invalidArgument, "must be redis://HOST:PORT[/DB]") }
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let database = path.isEmpty ? 0 : Int(path), (0...15).contains(database) else {
            throw TollgateError(.invalidArgument, "names database '\(path)': want 0 to 15")
        }
        self.host = host
        port = url.port ?? 6379
        self.database = database
    }

    public var description: String { "redis://\(host):\(port)/\(database)" }
}

/// A script run on the server with EVALSHA, sent whole (EVAL) only when the server does not
/// have it yet (after a restart or failover).
public struct RedisScript: Sendable {
    public let source: String
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        sha1 = Insecure.SHA1.hash(data: Data(source.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

/// A small Redis client over SwiftNIO: one pipelined connection at a time, made on first
/// use and again after it breaks; every command has a deadline, after which the connection
/// is closed (a reply that arrives late must not be taken for the next command's).
public final class RedisClient: Sendable {
    /// One connection and the server process behind it.
    public struct Session: Sendable {
        let channel: any Channel
        /// The server process's `run_id` (INFO server): a new one after a restart or a
        /// failover, whose data may have lost recent writes.
        public let serverRunID: String
        let timeout: TimeAmount

        public func command(_ arguments: [String]) async throws -> RESPValue {
            let promise = channel.eventLoop.makePromise(of: RESPValue.self)
            let channel = self.channel
            channel.writeAndFlush(RedisRequest(arguments: arguments, reply: promise), promise: nil)
            let deadline = channel.eventLoop.scheduleTask(in: timeout) {
                promise.fail(RedisFailure.timedOut)
                channel.close(promise: nil)
            }
            // Cancelled on the event loop as the reply lands, not when this task resumes
            // (a busy machine may resume it late; the reply was in time).
            promise.futureResult.whenComplete { _ in deadline.cancel() }
            let reply = try await promise.futureResult.get()
            if case .error(let message) = reply { throw RedisFailure.server(message) }
            return reply
        }

        /// Runs `script` atomically on the server.
        public func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) async throws -> RESPValue {
            let tail = [String(keys.count)] + keys + arguments
            do {
                return try await command(["EVALSHA", script.sha1] + tail)
            } catch RedisFailure.server(let message) where message.hasPrefix("NOSCRIPT") {
                return try await command(["EVAL", script.source] + tail)
            }
        }
    }

    public let address: RedisAddress
    private let timeout: TimeAmount
    private let group: any EventLoopGroup
    private let current = Mutex<Task<Session, any Error>?>(nil)

    public init(
        address: RedisAddress, timeout: Duration = .milliseconds(500), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.address = address
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        self.group = group
    }

    /// The open connection, or a new one when there is none or it has closed.
    public func session() async throws -> Session {
        let task = current.withLock { current -> Task<Session, any Error> in
            if let current { return current }
            let made = Task { try await self.connect() }
            current = made
            return made
        }
        do {
            let session = try await task.value
            if session.channel.isActive { return session }
            forget(task)
            return try await self.session()
        } catch {
            forget(task)
            throw error
        }
    }

    private func forget(_ task: Task<Session, any Error>) {
        current.withLock { if $0 == task { $0 = nil } }
    }

    private func connect() async throws -> Session {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(RESPDecoder()), RedisHandler()])
                }
            }
            .connect(host: address.host, port: address.port).get()
        do {
            var session = Session(channel: channel, serverRunID: "", timeout: timeout)
            if address.database != 0 { _ = try await session.command(["SELECT", String(address.database)]) }
            let info = try await session.command(["INFO", "server"]).string ?? ""
            guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("run_id:") }) else {
                throw RedisFailure.server("INFO server names no run_id")
            }
            session = Session(channel: channel, serverRunID: String(line.dropFirst("run_id:".count)), timeout: timeout)
            return session
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// Closes the connection (tests; a function's process simply exits).
    public func close() async {
        let task = current.withLock { current in
            defer { current = nil }
            return current
        }
        if let session = try? await task?.value { try? await session.channel.close() }
    }
}

public enum RedisFailure: Error, CustomStringConvertible, Equatable {
    case timedOut
    case closed
    case server(String)

    public var description: String {
        switch self {
        case .timedOut: "Redis did not answer in time"
        case .closed: "the connection to Redis closed"
        case .server(let message): "Redis: \(message)"
        }
    }
}

struct RedisRequest: Sendable {
    var arguments: [String]
    var reply: EventLoopPromise<RESPValue>
}

/// Pipelining: replies come back in the order commands were written.
final class RedisHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        buffer.writeString("*\(request.arguments.count)\r\n")
        for argument in request.arguments {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeString("\r\n")
        }
        waiting.append(request.reply)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let promise = waiting.popFirst() else {
            // A reply nobody asked for: the stream is out of step; start again.
            context.close(promise: nil)
            return
        }
        promise.succeed(reply)
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let promise = waiting.popFirst() { promise.fail(RedisFailure.closed) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}

/// Reads RESP2 replies; an incomplete one waits for more bytes.
struct RESPDecoder: ByteToMessageDecoder {
    typealias InboundOut = RESPValue

    /// Bulk strings and arrays larger than this are refused (our replies are small).
    static let maximumLength = 16 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        var copy = buffer
        guard let value = try Self.parse(&copy) else { return .needMoreData }
        buffer.moveReaderIndex(to: copy.readerIndex)
        context.fireChannelRead(wrapInboundOut(value))
        return .continue
    }

    static func parse(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        // The first line: a type byte, then text up to CRLF.
        let lineLength = buffer.withUnsafeReadableBytes { bytes -> Int? in
            guard bytes.count >= 3 else { return nil }
            for index in 1..<(bytes.count - 1) where bytes[index] == 13 && bytes[index + 1] == 10 { return index }
            return nil
        }
        guard let lineLength, let kind = buffer.readInteger(as: UInt8.self) else { return nil }
        let text = buffer.readString(length: lineLength - 1) ?? ""
        buffer.moveReaderIndex(forwardBy: 2)
        switch kind {
        case UInt8(ascii: "+"): return .simple(text)
        case UInt8(ascii: "-"): return .error(text)
        case UInt8(ascii: ":"):
            guard let value = Int64(text) else { throw RedisFailure.server("malformed integer reply") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(text), length >= -1, length <= maximumLength else { throw RedisFailure.server("malformed bulk reply") }
            if length == -1 { return .bulk(nil) }
            guard buffer.readableBytes >= length + 2, let bytes = buffer.readBytes(length: length) else { return nil }
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(bytes)
        case UInt8(ascii: "*"):
            guard let count = Int(text), count >= -1, count <= maximumLength else { throw RedisFailure.server("malformed array reply") }
            if count == -1 { return .array(nil) }
            var items: [RESPValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count {
                guard let item = try parse(&buffer) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw RedisFailure.server("unknown reply type \(kind)")
        }
    }
}
