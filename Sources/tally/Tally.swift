import ArgumentParser

@main
struct Tally: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tally",
        abstract: "Tally: exact app-usage analytics from database dumps, in memory.",
        subcommands: [Serve.self, Demo.self, Load.self, QueryCommand.self, Synth.self],
        defaultSubcommand: Serve.self)
}
