import Foundation

/// `tool` found on PATH (nil when it is not there).
public func executableOnPath(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for folder in path.split(separator: ":") {
        let candidate = "\(folder)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a program to completion; its exit status, standard output and standard error.
func runProcess(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Standard error is read on another thread, so a tool that fills one pipe never blocks.
    nonisolated(unsafe) var errors = Data()
    let readErrors = DispatchWorkItem { errors = err.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(execute: readErrors)
    let output = out.fileHandleForReading.readDataToEndOfFile()
    readErrors.wait()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
}
