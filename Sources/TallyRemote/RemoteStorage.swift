import AsyncHTTPClient
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NIOCore
import NIOHTTP1
import TallyIngest
import TallyStorage

/// Dumps and snapshots in object storage (`s3://bucket/prefix/`, SigV4) or on a web server
/// (`https://host/prefix/`, through the dump's `manifest.json`). Parts stream: each is
/// decompressed and parsed as its bytes arrive, several at once; requests that fail with a 5xx, a
/// timeout or a dropped connection are retried with backoff (a stream resumes from the byte it
/// had reached, with a `Range` request).
public enum Remote {
    /// Whether `location` names remote storage.
    public static func isRemote(_ location: String) -> Bool {
        location.hasPrefix("s3://") || location.hasPrefix("https://") || location.hasPrefix("http://")
    }

    /// The storage of a remote dump location.
    public static func storage(_ location: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DumpStorage {
        if location.hasPrefix("s3://") {
            let rest = location.dropFirst(5)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let bucket = String(rest[..<slash])
            var prefix = slash == rest.endIndex ? "" : String(rest[rest.index(after: slash)...])
            if !prefix.isEmpty && !prefix.hasSuffix("/") { prefix += "/" }
            guard !bucket.isEmpty else { throw RemoteError(location: location, reason: "an s3:// location names a bucket: s3://BUCKET/PREFIX/") }
            return S3Storage(bucket: bucket, prefix: prefix, config: try S3Config.fromEnvironment(environment))
        }
        return HTTPStorage(base: location.hasSuffix("/") ? location : location + "/")
    }

    /// Loads a remote dump.
    public static func loadDump(_ location: String, mode: LoadMode = .strict, dates: DateWindow = .standard(),
                                spareAppsMinRows: Int = ClientStore.spareAppsMinRows,
                                progress: ((LoadProgress) -> Void)? = nil) throws -> (Store, LoadReport) {
        try DumpLoader.load(layout: try DumpLayout.discover(storage: try storage(location)), mode: mode, dates: dates,
                            spareAppsMinRows: spareAppsMinRows, progress: progress)
    }

    /// Reads a remote snapshot file (`s3://bucket/key`, `https://…/file`).
    public static func readSnapshot(_ location: String) throws -> Store {
        let bytes: [UInt8]?
        if location.hasPrefix("s3://") {
            let rest = location.dropFirst(5)
            guard let slash = rest.firstIndex(of: "/") else { throw RemoteError(location: location, reason: "expected s3://BUCKET/KEY") }
            let s3 = S3Storage(bucket: String(rest[..<slash]), prefix: "", config: try S3Config.fromEnvironment())
            bytes = try s3.fetch(String(rest[rest.index(after: slash)...]))
        } else {
            bytes = try HTTPStorage(base: "").fetch(location)
        }
        guard let bytes else { throw RemoteError(location: location, reason: "not found (no such object)") }
        return try Snapshot.read(bytes: bytes, name: location)
    }

    /// One client for every remote read: a read timeout, and connections reused.
    static let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                   configuration: HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(30))))

    static let attempts = 5

    /// Backoff before attempt `n` (1-based retries): 0.2 s, 0.4 s, 0.8 s, 1.6 s.
    static func pause(_ n: Int) { Thread.sleep(forTimeInterval: 0.2 * pow(2, Double(n - 1))) }

    /// Whether a failure is worth another attempt.
    static func retriable(status: UInt?) -> Bool { status.map { $0 >= 500 || $0 == 429 } ?? true }
}

/// A response read whole (small objects: listings, manifests, snapshots).
struct Whole {
    var status: UInt
    var body: [UInt8]
}

extension Remote {
    /// GET with retries; `sign` adds headers for the URL.
    static func get(_ url: URL, location: String, headers: [(String, String)] = [],
                    sign: (URL) -> [(String, String)]) throws -> Whole {
        var last = ""
        for attempt in 0..<attempts {
            if attempt > 0 { pause(attempt) }
            do {
                var request = try HTTPClient.Request(url: url.absoluteString, method: .GET)
                for (k, v) in sign(url) + headers { request.headers.add(name: k, value: v) }
                let response = try client.execute(request: request, deadline: .now() + .seconds(120)).wait()
                var body = response.body ?? ByteBuffer()
                let whole = Whole(status: response.status.code, body: body.readBytes(length: body.readableBytes) ?? [])
                if retriable(status: whole.status) {
                    last = "HTTP \(whole.status)\(describe(whole.body))"
                    continue
                }
                return whole
            } catch {
                last = "\(error)"
            }
        }
        throw RemoteError(location: location, reason: "failed after \(attempts) attempts: \(last)")
    }

    /// S3's error document, briefly: ` (Code: Message)`.
    static func describe(_ body: [UInt8]) -> String {
        let text = String(decoding: body, as: UTF8.self)
        func tag(_ t: String) -> String? {
            guard let a = text.range(of: "<\(t)>"), let b = text.range(of: "</\(t)>", range: a.upperBound..<text.endIndex) else { return nil }
            return String(text[a.upperBound..<b.lowerBound])
        }
        guard let code = tag("Code") else { return "" }
        return " (\(code)" + (tag("Message").map { ": \($0)" } ?? "") + ")"
    }
}

/// An S3 bucket prefix (or any S3-compatible store), signed with SigV4.
struct S3Storage: DumpStorage {
    let bucket: String
    let prefix: String
    let config: S3Config

    var location: String { "s3://\(bucket)/\(prefix)" }

    /// Path-style against an endpoint override, virtual-hosted against AWS.
    func url(key: String, query: String = "") -> URL {
        let path = SigV4.encode(key, keepSlash: true)
        let q = query.isEmpty ? "" : "?" + query
        if let endpoint = config.endpoint {
            return URL(string: "\(endpoint)/\(SigV4.encode(bucket, keepSlash: false))/\(path)\(q)")!
        }
        return URL(string: "https://\(bucket).s3.\(config.region).amazonaws.com/\(path)\(q)")!
    }

    func sign(_ url: URL) -> [(String, String)] { SigV4.sign(method: "GET", url: url, config: config) }

    func failure(_ key: String, _ w: Whole) -> RemoteError {
        let what: String
        switch w.status {
        case 403: what = "access denied — check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions"
        case 404: what = "not found"
        case 301: what = "wrong region — set AWS_REGION"  // PermanentRedirect: the bucket is elsewhere
        case 400 where String(decoding: w.body, as: UTF8.self).contains("Region"): what = "wrong region — set AWS_REGION"
        default: what = "HTTP \(w.status)"
        }
        return RemoteError(location: "s3://\(bucket)/\(key)", reason: what + Remote.describe(w.body))
    }

    /// ListObjectsV2 over the prefix, every page.
    func list() throws -> [String: Int]? {
        var out: [String: Int] = [:]
        var token: String?
        repeat {
            var query = "list-type=2&prefix=\(SigV4.encode(prefix, keepSlash: false))"
            if let t = token { query += "&continuation-token=\(SigV4.encode(t, keepSlash: false))" }
            let u = url(key: "", query: query)
            let w = try Remote.get(u, location: location, sign: sign)
            guard w.status == 200 else { throw failure(prefix, w) }
            let page = ListingParser(w.body)
            guard page.parsed else { throw RemoteError(location: location, reason: "the object listing is not the XML S3 sends") }
            for (key, size) in page.objects where key.hasPrefix(prefix) { out[String(key.dropFirst(prefix.count))] = size }
            token = page.truncated ? page.nextToken : nil
        } while token != nil
        if out.isEmpty { throw RemoteError(location: location, reason: "no objects under this prefix (is the bucket or prefix right?)") }
        return out
    }

    func fetch(_ relativePath: String) throws -> [UInt8]? {
        let w = try Remote.get(url(key: prefix + relativePath), location: location + relativePath, sign: sign)
        if w.status == 404 { return nil }
        guard w.status == 200 else { throw failure(prefix + relativePath, w) }
        return w.body
    }

    func open(_ relativePath: String) throws -> ObservableByteSource {
        let key = prefix + relativePath
        return try StreamSource(location: "s3://\(bucket)/\(key)", url: url(key: key), sign: sign) { w in failure(key, w) }
    }
}

/// A dump on a web server: read through its manifest (a web server cannot list).
struct HTTPStorage: DumpStorage {
    let base: String
    var location: String { base }

    func list() throws -> [String: Int]? { nil }

    func fetch(_ relativePath: String) throws -> [UInt8]? {
        guard let u = URL(string: base + relativePath) else { throw RemoteError(location: base + relativePath, reason: "not a URL") }
        let w = try Remote.get(u, location: u.absoluteString) { _ in [] }
        if w.status == 404 { return nil }
        guard w.status == 200 else { throw RemoteError(location: u.absoluteString, reason: "HTTP \(w.status)") }
        return w.body
    }

    func open(_ relativePath: String) throws -> ObservableByteSource {
        guard let u = URL(string: base + SigV4.encode(relativePath, keepSlash: true)) else {
            throw RemoteError(location: base + relativePath, reason: "not a URL")
        }
        return try StreamSource(location: u.absoluteString, url: u, sign: { _ in [] }) { w in
            RemoteError(location: u.absoluteString, reason: w.status == 404 ? "not found" : "HTTP \(w.status)")
        }
    }
}

/// The keys and sizes of a ListObjectsV2 page.
final class ListingParser: NSObject, XMLParserDelegate {
    var objects: [(String, Int)] = []
    var truncated = false
    var nextToken: String?
    var parsed = false
    private var text = ""
    private var key: String?
    private var size: Int?

    init(_ bytes: [UInt8]) {
        super.init()
        let p = XMLParser(data: Data(bytes))
        p.delegate = self
        parsed = p.parse()
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                attributes: [String: String] = [:]) {
        text = ""
        if name == "Contents" { key = nil; size = nil }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "Key": key = text
        case "Size": size = Int(text)
        case "Contents": if let key { objects.append((key, size ?? 0)) }
        case "IsTruncated": truncated = text == "true"
        case "NextContinuationToken": nextToken = text
        default: break
        }
    }
}
