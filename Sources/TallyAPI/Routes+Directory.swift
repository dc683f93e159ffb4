import TallyQuery
import TallyStorage

extension Registry {
    /// K–R (SPEC §3b); wire numbers 11–20.
    static let directoryRoutes: [Route] = []
    /// The admin reports over clients (SPEC §3c); wire numbers 21–25.
    static let adminReportRoutes: [Route] = []
}
