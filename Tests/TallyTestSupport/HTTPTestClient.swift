import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One HTTP/1.1 response as read off the socket.
public struct HTTPTestResponse {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed with Foundation's JSON parser (independent of Tally's writer).
    public var json: Any? { try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }
    public var object: [String: Any] { json as? [String: Any] ?? [:] }
}

/// A deliberately small blocking HTTP/1.1 client over a real TCP socket, for end-to-end tests:
/// keep-alive, pipelining (send several, then read several), raw bytes for malformed input.
public final class HTTPTestClient {
    let fd: Int32
    var pending: [UInt8] = []

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// - Parameter receiveTimeout: seconds a read waits before the request fails.
    public init(port: Int, host: String = "127.0.0.1", receiveTimeout: Int = 20) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket failed") }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            // Not closed here: `deinit` runs for an initializer that throws once every property
            // is set, and a second close could hit a descriptor another thread has been given since.
            throw Failure(description: "connect to \(host):\(port) failed: \(String(cString: strerror(errno)))")
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    public func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed") }
            off += n
        }
    }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// The request text for `method target` with `headers`.
    public static func requestText(_ method: String = "GET", _ target: String, token: String? = nil,
                                   headers: [(String, String)] = [], body: String = "") -> String {
        var s = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n"
        if let token { s += "Authorization: Bearer \(token)\r\n" }
        for (k, v) in headers { s += "\(k): \(v)\r\n" }
        if !body.isEmpty { s += "Content-Length: \(body.utf8.count)\r\n" }
        return s + "\r\n" + body
    }

    public func request(_ method: String = "GET", _ target: String, token: String? = nil,
                        headers: [(String, String)] = [], body: String = "") throws -> HTTPTestResponse {
        try send(Self.requestText(method, target, token: token, headers: headers, body: body))
        return try readResponse(bodyless: method == "HEAD")
    }

    func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        // A reset (the peer closed with our bytes unread) is a close too.
        guard n > 0 else {
            throw Failure(description: n == 0 || errno == ECONNRESET ? "connection closed"
                          : "recv failed or timed out: \(String(cString: strerror(errno)))")
        }
        pending += chunk[0..<n]
    }

    /// Whether the server closed the connection (reads until end of stream).
    public func isClosedByPeer() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return false }
        }
    }

    public func readResponse(bodyless: Bool = false) throws -> HTTPTestResponse {
        let sep: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            if pending.count >= 4 {
                for i in 0...(pending.count - 4) where Array(pending[i..<(i + 4)]) == sep { end = i; break }
            }
            if end == nil { try fill() }
        }
        let headText = String(decoding: pending[0..<end!], as: UTF8.self)
        pending.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure(description: "bad status line") }
        let headers = lines.compactMap { l -> (String, String)? in
            guard let c = l.firstIndex(of: ":") else { return nil }
            return (String(l[..<c]), l[l.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
        let length = bodyless ? 0 : Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        while pending.count < length { try fill() }
        let body = Array(pending[0..<length])
        pending.removeFirst(length)
        return HTTPTestResponse(status: status, headers: headers, body: body)
    }
}
