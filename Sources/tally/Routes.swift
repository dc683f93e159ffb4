import ArgumentParser
import TallyAPI

/// `tally routes`: the endpoint registry's parameter table (docs/PROTOCOL.md §3).
struct RoutesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Print every endpoint's number, path, parameters and rules (Markdown).")

    func run() { print(Registry.parameterTable, terminator: "") }
}
