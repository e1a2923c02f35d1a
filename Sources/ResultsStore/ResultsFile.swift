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

    /// Writes a new file at `path` (replacing any old one only once `body` has succeeded).
    public static func write(to path: String, _ body: (ResultsGroup) throws -> Void) throws {
        let temporary = temporaryPath(for: path)
        let id = try createFile(temporary, reportedAs: path)
        try finish(ResultsFile(path: path, id: id), temporary: temporary, target: path, body)
    }

    /// Changes the file at `path` (created empty when missing) atomically. Updates of files in one
    /// directory are serialised across processes (an exclusive `flock` on the directory), so
    /// several writers of one file each add to the latest version and none is lost.
    public static func update(at path: String, _ body: (ResultsGroup) throws -> Void) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let lock = open(directory.isEmpty ? "." : directory, O_RDONLY)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { flock(lock, LOCK_UN); close(lock) } }
        guard FileManager.default.fileExists(atPath: path) else { return try write(to: path, body) }
        try validate(path)
        let temporary = temporaryPath(for: path)
        do {
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: path, toPath: temporary)
        } catch {
            throw ResultsStoreError.cannotCreate(path: path, reason: "copying to \(temporary): \(error.localizedDescription)")
        }
        silenceHDF5Errors()
        let access = ssm_h5p_unlocked_access()
        defer { H5Pclose(access) }
        let id = H5Fopen(temporary, ssm_h5f_acc_rdwr(), access)
        guard id >= 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ResultsStoreError.cannotOpen(path: path, reason: "HDF5 could not open it for writing (\(hdf5ErrorStack()))")
        }
        try finish(ResultsFile(path: path, id: id), temporary: temporary, target: path, body)
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

    private static func createFile(_ temporary: String, reportedAs path: String) throws -> hid_t {
        let directory = (path as NSString).deletingLastPathComponent
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
        guard id >= 0 else { throw ResultsStoreError.cannotCreate(path: path, reason: "HDF5 could not create \(temporary) (\(hdf5ErrorStack()))") }
        return id
    }

    /// Runs `body`; on success closes, syncs and renames `temporary` over `target`; on failure
    /// closes and removes `temporary`.
    private static func finish(_ file: ResultsFile, temporary: String, target: String,
                               _ body: (ResultsGroup) throws -> Void) throws {
        do {
            try body(file.root)
        } catch {
            H5Fclose(file.id)
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        guard H5Fclose(file.id) >= 0 else {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ResultsStoreError.operationFailed(path: target, operation: "close", object: "the file")
        }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: temporary)
            throw ResultsStoreError.cannotCreate(path: target, reason: "rename failed: \(reason)")
        }
    }
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

/// What HDF5's error stack says about the last failed call on this thread.
func hdf5ErrorStack() -> String {
    var text = [CChar](repeating: 0, count: 1024)
    ssm_h5_error_stack(&text)
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
