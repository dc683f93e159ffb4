import ArgumentParser
import TallyAPI

@main
struct Tally: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: exact app-usage analytics from database dumps, in memory.",
        version: TallyVersion.string,
        subcommands: [Serve.self, Demo.self, Load.self, QueryCommand.self, Synth.self, Generate.self, SnapshotCommand.self, LoadTest.self, BenchQueries.self, BenchReports.self, RoutesCommand.self],
        defaultSubcommand: Serve.self)
}
