import CZlib
import TollgateModel

/// Streaming gzip compression with zlib: input in, compressed bytes appended to the
/// caller's buffer, in constant memory. The header carries no name and no time, so equal
/// input fed the same way always gives equal bytes (exports must be byte-identical when
/// re-run).
final class GzipCompressor {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 64 * 1_024)
    private var finished = false

    init(level: Int32 = 6) throws {
        guard tollgate_deflate_init_gzip(&stream, level) == Z_OK else { throw TollgateError(.internal, "zlib: deflateInit2 failed") }
    }

    deinit { deflateEnd(&stream) }

    func compress(_ input: [UInt8], into out: inout [UInt8]) throws { try run(input, flush: Z_NO_FLUSH, into: &out) }

    /// Ends the stream (the gzip trailer with CRC-32 and length).
    func finish(into out: inout [UInt8]) throws {
        guard !finished else { return }
        try run([], flush: Z_FINISH, into: &out)
        finished = true
    }

    private func run(_ input: [UInt8], flush: Int32, into out: inout [UInt8]) throws {
        var input = input
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while true {
                let produced = try output.withUnsafeMutableBufferPointer { target -> Int in
                    stream.next_out = target.baseAddress
                    stream.avail_out = UInt32(target.count)
                    let status = deflate(&stream, flush)
                    guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                        throw TollgateError(.internal, "zlib: deflate failed (\(status))")
                    }
                    return target.count - Int(stream.avail_out)
                }
                out.append(contentsOf: output[0..<produced])
                // Done when zlib took all input and had room to spare (or ended the stream).
                if stream.avail_in == 0 && stream.avail_out != 0 { break }
            }
            stream.next_in = nil
        }
    }
}
