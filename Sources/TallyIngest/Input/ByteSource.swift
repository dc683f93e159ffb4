import Glibc

/// A stream of bytes read in chunks: a file, or a decompressor over one.
public protocol ByteSource {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the stream.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Bytes consumed from the underlying storage so far (compressed bytes for decompressors).
    var storedBytesRead: Int { get }
}

/// Reads a file with plain POSIX reads, optionally feeding a hasher with every byte read.
public final class FileSource: ByteSource {
    let fd: Int32
    let path: String
    public private(set) var storedBytesRead = 0
    /// Called with each chunk as it is read (used for manifest SHA-256 checks).
    public var observer: ((UnsafeRawBufferPointer) -> Void)?

    public init(path: String, displayName: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw LoadError(.io, file: displayName, line: 0, column: 0, expected: "a readable file",
                            found: String(cString: strerror(errno)))
        }
    }

    deinit { close(fd) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw LoadError(.io, file: path, line: 0, column: 0, expected: "a readable file",
                                found: String(cString: strerror(errno)))
            }
            storedBytesRead += n
            if n > 0, let o = observer { o(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) }
            return n
        }
    }
}

/// Why a decompressor stopped; turned into a ``LoadError`` with the CSV position by the reader.
public struct DecompressionError: Error {
    public var truncated: Bool
    public var message: String
}
