import Foundation
import TallyAPI
import TallyIngest
import TallyQuery
import TallyServer
import TallyStorage
import TallyTestSupport

/// One server per test process, on a free loopback port, serving a random dump loaded through
/// the real loader, with three tokens: one for every client, one scoped to the first client,
/// and the demo token is NOT accepted.
final class ServerFixture: @unchecked Sendable {
    static let allToken = "all-clients-token"
    static let scopedToken = "first-client-token"

    let dump: RandomDump
    let store: Store
    let reference: Reference
    let server: Server
    var port: Int { server.port }
    var binaryPort: Int { server.binaryPort! }

    init() {
        let dump = RandomDump(seed: 11, clientCount: 4, maxRowsPerClient: 1500)
        let folder = NSTemporaryDirectory() + "tally-api-\(getpid())"
        try! DumpWriter.write(dump.tables(), to: folder, usageParts: 2, compressions: [.gzip, .lz4])
        let (store, _) = try! DumpLoader.load(folder: folder)
        try? FileManager.default.removeItem(atPath: folder)
        self.dump = dump
        self.store = store
        reference = Reference(dump)
        let tokens = TokenStore(entries: [
            TokenEntry(name: "all", digest: TokenStore.sha256(Self.allToken), clients: nil),
            TokenEntry(name: "scoped", digest: TokenStore.sha256(Self.scopedToken), clients: [dump.clients[0].id]),
        ])
        let api = API(serving: store, tokens: tokens)
        var limits = ServerLimits()
        limits.maxHeaderCount = 40
        limits.maxBodyBytes = 4096
        limits.idleTimeout = .seconds(2)
        server = try! Server(api: api, host: "127.0.0.1", port: 0, binaryPort: 0, threads: 2, limits: limits)
    }

    static let shared = ServerFixture()

    func client() throws -> HTTPTestClient { try HTTPTestClient(port: port) }

    static func path(_ client: UUID128, _ e: Endpoint) -> String { "/v2/clients/\(client)/analytics/apps/\(e.path)" }
}
