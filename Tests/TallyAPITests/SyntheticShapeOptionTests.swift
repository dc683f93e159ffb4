import Foundation
import Testing
import TallyTestSupport

/// Shapes given to the commands that generate a client in process (`synth`, `snapshot save
/// --synthetic`, `serve --synthetic`): a bad one is refused at start with a message naming the
/// option, and nothing is written.
@Suite struct SyntheticShapeOptionTests {
    @Test(arguments: [
        (["synth", "--departments", "0"], "--departments must be at least 1"),
        (["synth", "--users", "0"], "must be at least 1"),
        (["synth", "--shape", "huge"], "--shape must be enterprise"),
        (["snapshot", "save", "--synthetic", "10x10x0", "--out", "OUT"], "--synthetic takes USERSxAPPSxDAYS[xDEPARTMENTS] or enterprise"),
        (["snapshot", "save", "--synthetic", "10x10x10x", "--out", "OUT"], "--synthetic takes"),
        (["serve", "--port", "0", "--no-binary", "--synthetic", "big"], "--synthetic takes USERSxAPPSxDAYS[xDEPARTMENTS]"),
    ])
    func badShapesAreRefused(arguments: [String], message: String) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tally-shape-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("s.tsnap").path
        let (status, text) = try ServeOptionTests.run(arguments.map { $0 == "OUT" ? out : $0 })
        #expect(status != 0 && text.contains(message), "\(arguments): exit \(status), \(text.prefix(300))")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
