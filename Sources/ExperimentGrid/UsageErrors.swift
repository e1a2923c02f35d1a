import Foundation

/// An error in what the user asked for — a flag, a config file, an output file — found before
/// any computation. Executables exit with 64 (EX_USAGE, as swift-argument-parser does for its own
/// errors) for these, and with 1 for a failure during a run.
public protocol UsageError: Error, CustomStringConvertible {}

/// The command cannot use a file it was given (its results file, or a file to read); nothing was
/// computed or changed.
public struct FileError: UsageError {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The machine cannot hold a run; nothing was computed.
public struct ResourceError: UsageError {
    public let description: String
    public init(description: String) { self.description = description }
}
