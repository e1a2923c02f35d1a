import ExperimentGrid
import Autodiff
import COpenBLAS
import Foundation
import GSLNumerics
import ResultsStore

/// What is needed to trust a result: code version, library versions, hardware.
public struct Provenance {
    public var gitCommit: String
    public var gitDirty: Bool
    public var swiftVersion: String
    public var gslVersion: String
    public var hdf5Version: String
    public var openBLAS: String
    public var cpuModel: String
    public var cores: Int
    public var blasThreads: Int
    public var host: String

    /// The Swift packages this build uses, at the versions Package.swift pins with `exact:`
    /// (a test checks the two agree).
    public static let dependencies = ["swift-argument-parser": "1.8.2", "Yams": "6.2.2"]

    /// "swift-argument-parser 1.8.2, Yams 6.2.2".
    public static var dependencyDescription: String {
        dependencies.sorted { $0.key.lowercased() < $1.key.lowercased() }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }

    /// The working tree's commit ("unknown" without git) and whether tracked files outside
    /// results/ differ from it (results files change during every run; they are data, not code).
    static func workingTree() -> (commit: String, dirty: Bool) {
        let commit = run("git", ["rev-parse", "HEAD"]) ?? "unknown"
        let changes = run("git", ["status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude)results"]) ?? ""
        return (commit, !changes.isEmpty)
    }

    /// The commit of the working tree, marked when its code has uncommitted changes.
    public static func currentCommit() -> String {
        let (commit, dirty) = workingTree()
        return commit + (dirty ? " (with uncommitted changes)" : "")
    }

    /// Reads it off this process and machine (git and swift are asked; "unknown" if absent).
    public static func current() -> Provenance {
        let (commit, dirty) = workingTree()
        return Provenance(gitCommit: commit, gitDirty: dirty,
                          swiftVersion: run("swift", ["--version"])?.split(separator: "\n").first.map(String.init) ?? "unknown",
                          gslVersion: GSLNumerics.gslVersion, hdf5Version: ResultsStore.hdf5Version,
                          openBLAS: openBLASConfiguration, cpuModel: GridExecution.cpuModel(), cores: ProcessInfo.processInfo.activeProcessorCount,
                          blasThreads: openBLASThreadCount, host: ProcessInfo.processInfo.hostName)
    }

    /// The commit, marked when the working tree had uncommitted changes.
    public var commitDescription: String { gitCommit + (gitDirty ? " (with uncommitted changes)" : "") }

    public func write(to group: ResultsGroup) throws {
        try group.setAttribute("git_commit", .string(commitDescription))
        try group.setAttribute("swift_version", .string(swiftVersion))
        try group.setAttribute("gsl_version", .string(gslVersion))
        try group.setAttribute("hdf5_version", .string(hdf5Version))
        try group.setAttribute("openblas", .string(openBLAS))
        try group.setAttribute("cpu_model", .string(cpuModel))
        try group.setAttribute("cores", .int(cores))
        try group.setAttribute("blas_threads", .int(blasThreads))
        try group.setAttribute("host", .string(host))
        try group.setAttribute("swift_packages", .string(Self.dependencyDescription))
    }

    /// `tool`'s standard output, trimmed, when it exits with 0 (found on PATH through env).
    static func run(_ tool: String, _ arguments: [String]) -> String? {
        guard let (status, output, _) = try? runProcess("/usr/bin/env", [tool] + arguments), status == 0 else { return nil }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

public func cpuModel() -> String {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
    return info.split(separator: "\n").first { $0.hasPrefix("model name") }?
        .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
}

/// ISO 8601 time, UTC.
public func timestamp(_ date: Date = Date()) -> String { ISO8601DateFormatter().string(from: date) }

/// Peak resident memory of this process so far, in MiB (from /proc/self/status VmHWM).
public func peakResidentMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kib = Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") else { return .nan }
    return kib / 1024
}

/// Resident memory of this process now, in MiB (/proc/self/status VmRSS).
public func residentMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kib = Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") else { return .nan }
    return kib / 1024
}

/// Resets this process's peak resident set (VmHWM) to its current resident set (Linux: "5" to
/// /proc/self/clear_refs), so a later `peakResidentMiB()` is the peak since now. Returns whether
/// the kernel took it.
@discardableResult
public func resetPeakResident() -> Bool {
    guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
    defer { try? handle.close() }
    return (try? handle.write(contentsOf: Data("5".utf8))) != nil
}

/// OpenBLAS dgemm GFLOP/s on a 1024 × 1024 × 1024 product, median of `repeats`, measured now (the
/// reference next to which benchmarks report their own GFLOP/s).
public func measureDGEMM(repeats: Int = 5) -> Double {
    let n = 1024
    let a = [Double](repeating: 1.0001, count: n * n), b = [Double](repeating: 0.9999, count: n * n)
    var c = [Double](repeating: 0, count: n * n)
    var times: [Double] = []
    for _ in 0..<max(repeats, 3) {
        let start = DispatchTime.now().uptimeNanoseconds
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return 2 * Double(n * n * n) / median(times) / 1e9
}
