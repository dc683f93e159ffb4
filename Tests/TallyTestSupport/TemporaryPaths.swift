import Foundation
import Synchronization

/// Files and folders a test process makes under the temporary directory and keeps past the test
/// that made them (a rig's dump and log, which a restart in the same test reads again), removed
/// when the process exits. Without this a full run of the suite left about a hundred of them
/// behind in `/tmp`, every run.
public enum TemporaryPaths {
    private static let paths = Mutex<[String]?>(nil)

    /// Removes `path` (a file or a folder) at exit.
    public static func removeAtExit(_ path: String) {
        paths.withLock { p in
            if p == nil {
                p = []
                atexit { TemporaryPaths.removeAll() }
            }
            p!.append(path)
        }
    }

    private static func removeAll() {
        for path in paths.withLock({ $0 ?? [] }) { try? FileManager.default.removeItem(atPath: path) }
    }
}
