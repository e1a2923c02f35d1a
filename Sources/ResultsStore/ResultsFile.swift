import CHDF5
import Foundation

/// An open HDF5 file. Create one only through `write(to:)`, `update(at:)` or `read(at:)`, which
/// make every change atomic: the body works on a temporary copy beside the target, and only a body
/// that returns normally has its file flushed, synced and renamed over the target. A crash or a
/// thrown error leaves the previous file untouched.
public final class ResultsFile {
    /// The path the caller named (not the temporary copy).
    public let path: String
    let id: hid_t

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    /// The root group "/".
    public var root: ResultsGroup { ResultsGroup(file: self, path: "/") }

    /// Writes a new file at `path` (replacing any old one only once `body` has succeeded). With
    /// `keepingOldAs`, an old file at `path` is first hard-linked to that name, so it is never
    /// lost: it stays at `path` until the new file is complete, then lives on as the backup.
    public static func write(to path: String, keepingOldAs backup: String? = nil, _ body: (ResultsGroup) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        let registration = RemovedOnSignal.register(temporary)
        defer { RemovedOnSignal.unregister(registration) }
        let id: hid_t
        do { id = try createFile(temporary, reportedAs: path) } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        try finish(ResultsFile(path: path, id: id), temporary: temporary, target: path, backup: backup, body)
    }

    /// Changes the file at `path` (created empty when missing) atomically. Updates of files in one
    /// directory are serialised across processes (an exclusive `flock` on the directory), so
    /// several writers of one file each add to the latest version and none is lost.
    public static func update(at path: String, _ body: (ResultsGroup) throws -> Void) throws {
        let directory = parentFolder(of: path)
        let lock = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        guard FileManager.default.fileExists(atPath: path) else { return try write(to: path, body) }
        try validate(path)
        let temporary = temporaryPath(for: path)
        let registration = RemovedOnSignal.register(temporary)
        defer { RemovedOnSignal.unregister(registration) }
        do {
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: path, toPath: temporary)
        } catch {
            // A full disk leaves a partial copy: remove it, or it keeps the disk full.
            try? FileManager.default.removeItem(atPath: temporary)
            throw ResultsStoreError.cannotCreate(path: path, reason: "copying it to \(temporary) failed (\(describe(error))); the file itself is unchanged")
        }
        silenceHDF5Errors()
        let access = ssm_h5p_unlocked_access()
        defer { H5Pclose(access) }
        let id = H5Fopen(temporary, ssm_h5f_acc_rdwr(), access)
        guard id >= 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ResultsStoreError.cannotOpen(path: path, reason: "HDF5 could not open it for writing (\(hdf5ErrorStack()))")
        }
        try finish(ResultsFile(path: path, id: id), temporary: temporary, target: path, backup: nil, body)
    }

    /// Reads the file at `path`.
    /// - Throws: `fileNotFound`, `notHDF5` (corrupt or other format), `cannotOpen`.
    public static func read<T>(at path: String, _ body: (ResultsGroup) throws -> T) throws -> T {
        try validate(path)
        silenceHDF5Errors()
        let access = ssm_h5p_unlocked_access()
        defer { H5Pclose(access) }
        let id = H5Fopen(path, ssm_h5f_acc_rdonly(), access)
        guard id >= 0 else { throw ResultsStoreError.cannotOpen(path: path, reason: "HDF5 could not open it (\(hdf5ErrorStack()))") }
        let file = ResultsFile(path: path, id: id)
        defer { H5Fclose(id) }
        return try body(file.root)
    }

    /// Throws unless `path` exists and is an HDF5 file.
    public static func validate(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw ResultsStoreError.fileNotFound(path: path) }
        silenceHDF5Errors()
        guard H5Fis_hdf5(path) > 0 else { throw ResultsStoreError.notHDF5(path: path) }
    }

    static func temporaryPath(for path: String) -> String { "\(path).tmp-\(getpid())" }

    /// Removes the temporary copies of `path` (`<path>.tmp-<pid>`) whose process is no longer
    /// running — left by a run killed with SIGKILL or by a power cut — and returns their names.
    /// A copy whose process is alive is another run's write in progress and is left alone.
    public static func removeStaleTemporaries(of path: String) -> [String] {
        let directory = parentFolder(of: path)
        let folder = directory.isEmpty ? "." : directory
        let prefix = (path as NSString).lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        return names.filter { name in
            guard name.hasPrefix(prefix), let pid = pid_t(name.dropFirst(prefix.count)) else { return false }
            let running = pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)
            return !running && unlink(folder + "/" + name) == 0
        }.map { folder + "/" + $0 }
    }

    /// Throws unless a results file can be written at `path`: its folder exists (or can be
    /// created: the nearest existing ancestor is a writable folder) and takes a new file, and
    /// `path` itself is not a folder. Creates nothing it does not remove again.
    public static func checkWritable(_ path: String) throws {
        let directory = parentFolder(of: path)
        var folder = directory.isEmpty ? "." : directory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ResultsStoreError.cannotCreate(path: path, reason: "it is a folder; name a file, e.g. \(path)/results.h5")
        }
        // The nearest ancestor that exists must be a folder we can write into.
        while !FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            folder = parentFolder(of: folder)
            if folder.isEmpty { folder = "." }
        }
        guard isDirectory.boolValue else {
            throw ResultsStoreError.cannotCreate(path: path, reason: "\(folder) is a file, not a folder")
        }
        // access() says yes to root almost everywhere (/proc included): create and remove a probe.
        let probe = folder + "/.ssm-probe-\(getpid())"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ResultsStoreError.cannotCreate(path: path, reason: "cannot create files in \(folder) (\(String(cString: strerror(errno))))")
        }
        close(fd)
        unlink(probe)
    }

    /// Creates the folder of `path` if it is missing.
    public static func createFolder(of path: String) throws {
        let directory = parentFolder(of: path)
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ResultsStoreError.cannotCreate(path: path, reason: "cannot create its folder \(directory) (\(describe(error)))")
        }
    }

    private static func createFile(_ temporary: String, reportedAs path: String) throws -> hid_t {
        let directory = parentFolder(of: path)
        let folder = directory.isEmpty ? "." : directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ResultsStoreError.cannotCreate(path: path, reason: "folder \(folder) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: folder) else {
            throw ResultsStoreError.cannotCreate(path: path, reason: "folder \(folder) is not writable")
        }
        silenceHDF5Errors()
        let access = ssm_h5p_unlocked_access()
        defer { H5Pclose(access) }
        let id = H5Fcreate(temporary, ssm_h5f_acc_trunc(), ssm_h5p_default(), access)
        guard id >= 0 else { throw ResultsStoreError.cannotCreate(path: path, reason: "HDF5 could not create the temporary \(temporary) (\(hdf5ErrorStack()))") }
        return id
    }

    /// Runs `body`; on success closes, syncs and renames `temporary` over `target` (hard-linking
    /// an existing `target` to `backup` first, when given); on any failure closes and removes
    /// `temporary`, leaving `target` as it was.
    private static func finish(_ file: ResultsFile, temporary: String, target: String, backup: String?,
                               _ body: (ResultsGroup) throws -> Void) throws {
        func fail(_ error: Error) -> Error {
            try? FileManager.default.removeItem(atPath: temporary)
            return error
        }
        do {
            try body(file.root)
        } catch {
            H5Fclose(file.id)
            throw fail(error)
        }
        guard H5Fclose(file.id) >= 0 else {
            throw fail(ResultsStoreError.cannotCreate(path: target, reason: "HDF5 could not finish writing \(temporary) (\(hdf5ErrorStack())); is the disk full?"))
        }
        let fd = open(temporary, O_RDONLY)
        guard fd >= 0, fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            throw fail(ResultsStoreError.cannotCreate(path: target, reason: "syncing \(temporary) to disk failed (\(reason))"))
        }
        close(fd)
        pauseBeforeRename()
        if let backup, FileManager.default.fileExists(atPath: target) {
            guard link(target, backup) == 0 else {
                let reason = String(cString: strerror(errno))
                throw fail(ResultsStoreError.cannotCreate(path: target, reason: "keeping the old file as \(backup) failed (\(reason)); nothing was replaced"))
            }
        }
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            throw fail(ResultsStoreError.cannotCreate(path: target, reason: "rename failed: \(reason)"))
        }
    }

    /// Test hook: `SSM_TEST_PAUSE_BEFORE_RENAME=<seconds>` holds a finished temporary file before
    /// its rename, so the command-line tests can interrupt a write at a known moment.
    private static func pauseBeforeRename() {
        guard let text = ProcessInfo.processInfo.environment["SSM_TEST_PAUSE_BEFORE_RENAME"], let seconds = Double(text) else { return }
        Thread.sleep(forTimeInterval: seconds)
    }
}

/// An error's message without Foundation's domain and code decoration.
func describe(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
       let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
        return String(cString: strerror(code.rawValue))
    }
    return nsError.localizedDescription
}

/// The paths this process removes if SIGINT, SIGTERM or SIGHUP ends it: the temporary files it is
/// writing, and the cell claims it holds with their folder. The handler unlinks the files, then
/// removes the folders that are empty by then, then lets the signal end the process as it would
/// have (a signal the process ignores stays ignored). It only reads a fixed table of C strings and
/// calls unlink, rmdir, signal and raise, all async-signal-safe.
public enum RemovedOnSignal {
    /// A file is unlinked; a folder is removed only once empty (after every file of the table).
    public enum Kind: Sendable { case file, emptyFolder }

    static let capacity = 64
    nonisolated(unsafe) static let paths: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let table = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        table.initialize(repeating: nil, count: capacity)
        return table
    }()
    nonisolated(unsafe) static let isFolder: UnsafeMutablePointer<Bool> = {
        let table = UnsafeMutablePointer<Bool>.allocate(capacity: capacity)
        table.initialize(repeating: false, count: capacity)
        return table
    }()
    static let lock = NSLock()
    nonisolated(unsafe) static var handlersInstalled = false

    /// Records `path` for removal on a signal; returns its slot (nil when the table is full).
    public static func register(_ path: String, as kind: Kind = .file) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if !handlersInstalled {
            _ = (paths, isFolder)  // initialised before any handler can read them
            for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
                let previous = signal(signalNumber, removePathsAndResignal)
                if unsafeBitCast(previous, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) { signal(signalNumber, SIG_IGN) }
            }
            handlersInstalled = true
        }
        for slot in 0..<capacity where paths[slot] == nil {
            isFolder[slot] = kind == .emptyFolder
            paths[slot] = strdup(path)
            return slot
        }
        return nil
    }

    /// Forgets a registration (the path is the caller's again: it is not removed here).
    public static func unregister(_ slot: Int?) {
        guard let slot else { return }
        lock.lock()
        defer { lock.unlock() }
        let path = paths[slot]
        paths[slot] = nil
        free(path)
    }
}

private func removePathsAndResignal(_ signalNumber: Int32) {
    for slot in 0..<RemovedOnSignal.capacity where !RemovedOnSignal.isFolder[slot] {
        if let path = RemovedOnSignal.paths[slot] { unlink(path) }
    }
    for slot in 0..<RemovedOnSignal.capacity where RemovedOnSignal.isFolder[slot] {
        if let path = RemovedOnSignal.paths[slot] { rmdir(path) }
    }
    signal(signalNumber, SIG_DFL)
    raise(signalNumber)
}

/// HDF5's version, e.g. "1.10.8".
public var hdf5Version: String {
    var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
    H5get_libversion(&major, &minor, &release)
    return "\(major).\(minor).\(release)"
}

/// HDF5 prints its error stack on failed calls unless told not to; failures are reported as
/// `ResultsStoreError` instead. The setting is per thread in HDF5's thread-safe build, so it is
/// applied on every entry.
func silenceHDF5Errors() { ssm_h5_silence_errors() }

/// What HDF5's error stack says about the last failed call on this thread: its innermost cause
/// only (the outer entries repeat it as "unable to open file"), and of a failed system call just
/// the system's message.
func hdf5ErrorStack() -> String {
    var text = [CChar](repeating: 0, count: 1024)
    ssm_h5_error_stack(&text)
    let innermost = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    if let start = innermost.range(of: "error message = '"), let end = innermost[start.upperBound...].firstIndex(of: "'") {
        return String(innermost[start.upperBound..<end])
    }
    return innermost.split(separator: "\n").first.map(String.init) ?? "no details from HDF5"
}

/// The folder part of `path` ("" when it has none): `results/x.h5` → `results`, `/x` → `/`.
/// Foundation's `NSString.deletingLastPathComponent` traps on a one-character string ("r", ".")
/// in this toolchain (swift-corelibs-foundation, Swift 6.3.1), so paths are split here.
public func parentFolder(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "" }
    let folder = trimmed[..<slash]
    var end = folder
    while end.count > 1, end.hasSuffix("/") { end = end.dropLast() }
    return end.isEmpty ? "/" : String(end)
}
