import Foundation
import Synchronization
import ResultsStore
import Testing

func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "ssm-results-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct ResultsFiles {
    /// What is written is read back exactly: nested groups, n-D Double and Int datasets (including
    /// a scalar and an empty one), and attributes of every kind on groups and datasets.
    @Test func roundTrip() throws {
        let path = temporaryFolder() + "/run.h5"
        let matrix = (0..<24).map { Double($0) * 0.1 - 1.3 }
        try ResultsFile.write(to: path) { root in
            try root.setAttribute("title", .string("Sliced score matching — naïve ✓"))
            let cell = try root.createGroup("cells").createGroup("ssm_d10_seed0")
            try cell.write("weights", doubles: matrix, shape: [2, 3, 4])
            try cell.write("loss", doubles: [0.25], shape: [])
            try cell.write("steps", ints: [1, 2, -3, Int(Int32.max) + 5])
            try cell.write("empty", doubles: [], shape: [0, 3])
            try cell.setAttribute("units", .string("nats"), on: "loss")
            try cell.setAttribute("sigma", .double(0.1))
            try cell.setAttribute("seed", .int(7))
            try cell.setAttribute("dims", .ints([10, 20, 50]))
            try cell.setAttribute("grid", .doubles([0.5, 1.5]))
        }
        try ResultsFile.read(at: path) { root in
            #expect(try root.attribute("title") == .string("Sliced score matching — naïve ✓"))
            #expect(try root.childNames() == ["cells"])
            let cell = try root.group("cells").group("ssm_d10_seed0")
            #expect(try cell.childNames() == ["empty", "loss", "steps", "weights"])
            let w = try cell.readDoubles("weights")
            #expect(w.shape == [2, 3, 4] && w.values == matrix)
            let loss = try cell.readDoubles("loss")
            #expect(loss.shape == [] && loss.values == [0.25])
            let steps = try cell.readInts("steps").values
            #expect(steps == [1, 2, -3, Int(Int32.max) + 5])
            #expect(try cell.readDoubles("empty").shape == [0, 3])
            #expect(try cell.attribute("units", on: "loss") == .string("nats"))
            #expect(try cell.attribute("sigma") == .double(0.1))
            #expect(try cell.attribute("seed") == .int(7))
            #expect(try cell.attribute("dims") == .ints([10, 20, 50]))
            #expect(try cell.attribute("grid") == .doubles([0.5, 1.5]))
            #expect(try cell.attributeNames() == ["dims", "grid", "seed", "sigma"])
            #expect(throws: ResultsStoreError.self) { try cell.readInts("weights") }
            #expect(throws: ResultsStoreError.missingObject(path: path, object: "dataset /cells/ssm_d10_seed0/nope")) {
                try cell.readDoubles("nope")
            }
        }
    }

    /// `update` adds to an existing file and keeps what was there.
    @Test func updateKeepsEarlierContent() throws {
        let path = temporaryFolder() + "/grid.h5"
        try ResultsFile.write(to: path) { try $0.createGroup("a").write("x", doubles: [1, 2]) }
        try ResultsFile.update(at: path) { try $0.createGroup("b").write("y", ints: [3]) }
        try ResultsFile.read(at: path) { root throws in
            #expect(try root.childNames() == ["a", "b"])
            #expect(try root.group("a").readDoubles("x").values == [1, 2])
        }
    }

    /// Concurrent writers of one file (two experiment processes sharing a results file) are
    /// serialised: every update lands on the latest version, none is lost.
    @Test func concurrentUpdatesAreAllKept() throws {
        let path = temporaryFolder() + "/shared.h5"
        try ResultsFile.write(to: path) { try $0.createGroup("cells") }
        let failures = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 2) { writer in
            for k in 0..<8 {
                do {
                    try ResultsFile.update(at: path) { try $0.createGroup("cells").createGroup("w\(writer)-\(k)").write("v", ints: [k]) }
                } catch { failures.withLock { $0 += 1 } }
            }
        }
        #expect(failures.withLock { $0 } == 0)
        try ResultsFile.read(at: path) { root throws in
            #expect(try root.group("cells").childNames().count == 16)
        }
    }

    /// A body that throws (as a crash would) leaves the old file intact and no temporary behind.
    @Test func failedWriteLeavesOldFileIntact() throws {
        let folder = temporaryFolder()
        let path = folder + "/keep.h5"
        try ResultsFile.write(to: path) { try $0.write("x", doubles: [42]) }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try ResultsFile.update(at: path) { root in
                try root.write("x", doubles: [-1])
                throw Interrupted()
            }
        }
        #expect(try ResultsFile.read(at: path) { try $0.readDoubles("x").values } == [42])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["keep.h5"])
    }

    @Test func missingCorruptAndUnwritableFilesAreClearErrors() throws {
        let folder = temporaryFolder()
        let missing = folder + "/missing.h5"
        #expect(throws: ResultsStoreError.fileNotFound(path: missing)) { try ResultsFile.read(at: missing) { _ in () } }
        let corrupt = folder + "/corrupt.h5"
        try Data("not an HDF5 file".utf8).write(to: URL(fileURLWithPath: corrupt))
        #expect(throws: ResultsStoreError.notHDF5(path: corrupt)) { try ResultsFile.read(at: corrupt) { _ in () } }
        #expect(throws: ResultsStoreError.notHDF5(path: corrupt)) { try ResultsFile.update(at: corrupt) { _ in } }
        #expect(try String(contentsOfFile: corrupt, encoding: .utf8) == "not an HDF5 file")
        let nowhere = folder + "/no/such/folder/x.h5"
        #expect(throws: ResultsStoreError.cannotCreate(path: nowhere, reason: "folder \(folder)/no/such/folder does not exist")) {
            try ResultsFile.write(to: nowhere) { _ in }
        }
        // Of HDF5's error stack only the innermost cause is kept: the system's message.
        do {
            try ResultsFile.write(to: "/proc/x.h5") { _ in }
            Issue.record("wrote into /proc")
        } catch {
            #expect("\(error)" == "cannot create results file /proc/x.h5: HDF5 could not create the temporary /proc/x.h5.tmp-\(getpid()) (No such file or directory)")
        }
        let error = ResultsStoreError.notHDF5(path: corrupt)
        #expect(error.description.contains(corrupt))
    }

    /// `keepingOldAs` keeps the old file under the backup name once the new one is complete; a
    /// write that fails replaces nothing and makes no backup.
    @Test func replacingKeepsTheOldFileAsABackup() throws {
        let folder = temporaryFolder()
        let path = folder + "/run.h5", backup = folder + "/run.h5.1.bak"
        try ResultsFile.write(to: path) { try $0.write("x", doubles: [1]) }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try ResultsFile.write(to: path, keepingOldAs: backup) { _ in throw Interrupted() }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["run.h5"])
        try ResultsFile.write(to: path, keepingOldAs: backup) { try $0.write("x", doubles: [2]) }
        #expect(try ResultsFile.read(at: path) { try $0.readDoubles("x").values } == [2])
        #expect(try ResultsFile.read(at: backup) { try $0.readDoubles("x").values } == [1])
    }

    /// Temporary copies whose process has ended are removed and named; a live process's copy is
    /// left alone.
    @Test func staleTemporariesAreRemoved() throws {
        let folder = temporaryFolder()
        let path = folder + "/grid.h5"
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = "\(path).tmp-\(finished.processIdentifier)", alive = "\(path).tmp-\(getppid())"
        let unrelated = folder + "/other.h5.tmp-\(finished.processIdentifier)"
        for file in [dead, alive, unrelated] { try Data("partial".utf8).write(to: URL(fileURLWithPath: file)) }
        #expect(ResultsFile.removeStaleTemporaries(of: path) == [dead])
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
                == ["grid.h5.tmp-\(getppid())", "other.h5.tmp-\(finished.processIdentifier)"])
    }

    /// Where no results file can go, the check says why before anything is computed, and leaves
    /// nothing behind.
    @Test func unwritableOutputsAreNamed() throws {
        let folder = temporaryFolder()
        let file = folder + "/plain"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        let cases: [(String, String)] = [
            (file + "/x.h5", "\(file) is a file, not a folder"),
            (folder, "it is a folder"),
            ("/proc/x.h5", "cannot create files in /proc"),
        ]
        for (path, expected) in cases {
            do {
                try ResultsFile.checkWritable(path)
                Issue.record("accepted \(path)")
            } catch {
                #expect("\(error)".contains(expected) && "\(error)".contains(path), "\(error)")
            }
        }
        try ResultsFile.checkWritable(folder + "/new/deeper/x.h5")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["plain"])
    }

    @Test func shapeMismatchAndBadNamesAreRejected() throws {
        let path = temporaryFolder() + "/bad.h5"
        #expect(throws: ResultsStoreError.self) { try ResultsFile.write(to: path) { try $0.write("x", doubles: [1, 2, 3], shape: [2, 2]) } }
        #expect(throws: ResultsStoreError.self) { try ResultsFile.write(to: path) { try $0.createGroup("a/b") } }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// HDF5's own tool reads the file: `h5dump -H` lists the dataset with its type and shape and
    /// the variable-length UTF-8 attribute.
    @Test func h5dumpReadsWhatWasWritten() throws {
        let path = temporaryFolder() + "/dump.h5"
        try ResultsFile.write(to: path) { root in
            try root.createGroup("g").write("m", doubles: [1, 2, 3, 4, 5, 6], shape: [2, 3])
            try root.setAttribute("commit", .string("abc123"))
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
        process.arguments = ["-H", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(output.contains("DATASET \"m\""))
        #expect(output.contains("H5T_IEEE_F64LE"))
        #expect(output.contains("SIMPLE { ( 2, 3 ) / ( 2, 3 ) }"))
        #expect(output.contains("ATTRIBUTE \"commit\""))
        #expect(output.contains("H5T_CSET_UTF8"))
        #expect(hdf5Version.hasPrefix("1."))
    }
}

@Suite struct Paths {
    /// One-character paths included: Foundation's deletingLastPathComponent traps on them here.
    @Test func parentFolders() {
        let cases = ["r": "", ".": "", "r/f.h5": "r", "a/b/c": "a/b", "/x": "/", "/": "/", "a//b": "a", "results/": "", "x/y/": "x", "ab": ""]
        for (path, folder) in cases { #expect(parentFolder(of: path) == folder, "\(path)") }
    }
}

@Suite struct Copies {
    /// A cell group copied from one file into another keeps its datasets and attributes.
    @Test func groupCopiedBetweenFiles() throws {
        let dir = temporaryFolder()
        try ResultsFile.write(to: dir + "/a.h5") { root in
            let cell = try root.createGroup("cells").createGroup("ssm_d2_seed0")
            try cell.write("loss", doubles: [0.25], shape: [])
            try cell.setAttribute("units", .string("nats"), on: "loss")
            try cell.createGroup("checkpoint").write("w", ints: [1, 2, 3])
            try cell.setAttribute("seed", .int(7))
        }
        try ResultsFile.write(to: dir + "/b.h5") { root in
            try ResultsFile.read(at: dir + "/a.h5") { source in
                try root.createGroup("cells").copy("ssm_d2_seed0", from: try source.group("cells"))
                #expect(throws: ResultsStoreError.self) { try root.group("cells").copy("ssm_d2_seed0", from: try source.group("cells")) }
                #expect(throws: ResultsStoreError.self) { try root.group("cells").copy("absent", from: try source.group("cells")) }
            }
        }
        try ResultsFile.read(at: dir + "/b.h5") { root in
            let cell = try root.group("cells").group("ssm_d2_seed0")
            #expect(try cell.readDoubles("loss").values == [0.25])
            #expect(try cell.attribute("units", on: "loss") == .string("nats"))
            #expect(try cell.group("checkpoint").readInts("w").values == [1, 2, 3])
            #expect(try cell.attribute("seed") == .int(7))
        }
    }
}
