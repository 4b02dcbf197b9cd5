import CZlib
import TollgateModel

/// Streaming gzip decompression, for tests and tools that read an export back (the
/// functions only ever compress, in `usage-export`).
public final class GzipDecompressor {
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 64 * 1_024)
    public private(set) var ended = false

    public init() throws {
        guard tollgate_inflate_init_gzip(&stream) == Z_OK else { throw TollgateError(.internal, "zlib: inflateInit2 failed") }
    }

    deinit { inflateEnd(&stream) }

    /// - Throws: `INVALID_ARGUMENT` for data that is not gzip.
    public func decompress(_ input: [UInt8], into out: inout [UInt8]) throws {
        var input = input
        try input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while !ended {
                let produced = try output.withUnsafeMutableBufferPointer { target -> Int in
                    stream.next_out = target.baseAddress
                    stream.avail_out = UInt32(target.count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    if status == Z_STREAM_END { ended = true }
                    guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                        throw TollgateError(.invalidArgument, "not valid gzip data (zlib \(status))")
                    }
                    return target.count - Int(stream.avail_out)
                }
                out.append(contentsOf: output[0..<produced])
                if stream.avail_in == 0 && stream.avail_out != 0 { break }
            }
            stream.next_in = nil
        }
    }
}
