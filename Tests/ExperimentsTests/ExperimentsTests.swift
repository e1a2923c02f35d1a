import Autodiff
@testable import CellExperiments
@testable import ExperimentCommands
@testable import ExperimentGrid
@testable import GridExecution
@testable import PaperClaims
@testable import Reports
import DKEFModel
import Training
import Foundation
import GSLNumerics
import Objectives
import ResultsStore
import Synchronization
import Testing

func folder() -> String {
    let path = NSTemporaryDirectory() + "ssm-exp-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct Configs {
    @Test func defaultsAreThePapersAndFilesOverride() throws {
        let config = try ExperimentConfig.parse("dims: [3]\nprotocol:\n  epochs: 2\n", file: "x.yml", quick: false)
        #expect(config.dims == [3])
        #expect(config.protocolSettings.epochs == 2)
        #expect(config.protocolSettings.trainCount == 4860 && config.protocolSettings.learningRate == 0.01)
        #expect(config.model.inducingPoints == 200 && config.model.logBandwidths == [0.0, 0.5185, 1.0])
        #expect(config.methods == ["sm", "ssm", "ssm_vr", "dsm", "cp", "approx_bp"])
    }

    @Test func quickBlockAppliesOnlyWithQuick() throws {
        let text = "dims: [10]\nquick:\n  dims: [2]\n"
        #expect(try ExperimentConfig.parse(text, file: "x.yml", quick: false).dims == [10])
        #expect(try ExperimentConfig.parse(text, file: "x.yml", quick: true).dims == [2])
    }

    /// A bad key, type or value names the file, the key and the reason.
    @Test func brokenConfigsAreClearErrors() {
        let cases: [(String, String)] = [
            ("dimz: [3]", "key 'dimz': unknown key"),
            ("dims: three", "key 'dims': expected a list"),
            ("dims: [0]", "key 'dims': must be a non-empty list of integers ≥ 1"),
            ("methods: [sliced_VR]", "unknown method 'sliced_VR'"),
            ("protocol:\n  learning_rate: fast", "key 'protocol.learning_rate': expected a number"),
            ("protocol:\n  epoch: 3", "key 'protocol.epoch': unknown key"),
            ("objective:\n  projection: radermacher", "unknown projection 'radermacher'"),
            ("dsm_sigmas: [-0.1]", "key 'dsm_sigmas'"),
            ("quick:\n  quick: {}", "key 'quick.quick': unknown key"),
            ("dims: [3", "not valid YAML"),
        ]
        for (text, expected) in cases { expectRefused(text, quick: true, saying: expected) }
    }

    /// Parsing `text` as bad.yml fails with a message naming the file and containing `expected`.
    func expectRefused(_ text: String, quick: Bool, saying expected: String) {
        do {
            _ = try ExperimentConfig.parse(text, file: "bad.yml", quick: quick)
            Issue.record("accepted (quick: \(quick)): \(text)")
        } catch {
            #expect("\(error)".contains("bad.yml") && "\(error)".contains(expected), "\(text) → \(error)")
        }
    }

    /// An empty file, --quick without a quick: block, a typo inside quick: (with or without
    /// --quick), a bad value there, and a non-finite number are errors naming the file and key.
    @Test func wholeFileIsCheckedOnEveryRun() {
        let cases: [(String, Bool, String)] = [
            ("", false, "is empty"),
            ("# only a comment\n", true, "is empty"),
            ("dims: [3]\n", true, "key 'quick': --quick applies the config's quick: block, and this file has none"),
            ("dims: [3]\nquick:\n  dimz: [2]\n", false, "key 'quick.dimz': unknown key"),
            ("dims: [3]\nquick:\n  dimz: [2]\n", true, "key 'quick.dimz': unknown key"),
            ("dims: [3]\nquick:\n  dims: [0]\n", false, "bad.yml (its quick: block): key 'dims'"),
            ("protocol:\n  learning_rate: .inf\n", false, "key 'protocol.learning_rate': expected a finite number"),
            ("quick: [1]\n", false, "key 'quick': must be a mapping"),
        ]
        for (text, quick, expected) in cases { expectRefused(text, quick: quick, saying: expected) }
    }

    /// A default config that is not there says the command runs from the repository root; a
    /// named one says where relative paths start.
    @Test func missingConfigSaysWhere() {
        do {
            _ = try ExperimentConfig.load("experiments/no-such.yml", quick: false, isDefault: true)
            Issue.record("a missing config was accepted")
        } catch { #expect("\(error)".contains("run the command from there or name a config with --config")) }
        do {
            _ = try ExperimentConfig.load("no-such.yml", quick: false)
            Issue.record("a missing config was accepted")
        } catch { #expect("\(error)".contains("no such file")) }
    }

    /// Flag values: an empty element or a non-number is an error naming the flag, and so is a
    /// value the config check refuses; good lists parse.
    @Test func flagListsAreStrict() throws {
        #expect(try ExperimentOptions.list("4, 8", flag: "--dims", kind: "integers", Int.init) == [4, 8])
        for bad in ["4,,8", "4,", ",4", "", "4,x"] {
            do {
                _ = try ExperimentOptions.list(bad, flag: "--dims", kind: "integers", Int.init)
                Issue.record("accepted --dims '\(bad)'")
            } catch let error as ConfigError {
                #expect(error.description.hasPrefix("--dims: "), "\(error)")
            }
        }
        var config = try ExperimentConfig.parse("dims: [3]\n", file: "x.yml", quick: false)
        config.dims = [0]
        #expect(throws: ConfigError.flag(name: "--dims", reason: "must be a non-empty list of integers ≥ 1, got [0]")) {
            try config.validate(file: "x.yml", flags: ["dims": "--dims"])
        }
        config.dims = [3]
        config.methods = ["nope"]
        #expect(throws: ConfigError.self) { try config.validate(file: "x.yml", flags: ["dims": "--dims"]) }
        do { try config.validate(file: "x.yml", flags: ["methods": "--methods"]) } catch {
            #expect("\(error)".hasPrefix("--methods: unknown method 'nope'"))
        }
    }

    /// The grid: DSM once per σ, the others once; the hash follows the settings that compute a
    /// cell, not the grid lists.
    @Test func cellsAndHash() throws {
        let config = try ExperimentConfig.parse("methods: [dsm, ssm]\ndims: [2, 4]\nseeds: [0, 1]\ndsm_sigmas: [0.1, 1.0]\n", file: "x.yml", quick: false)
        let cells = try config.cells
        #expect(cells.count == 2 * 2 * 2 + 2 * 2)
        #expect(cells.first?.name == "dsm_sigma0.1_d2_seed0")
        #expect(Set(cells.map(\.name)).count == cells.count)
        var part = config
        part.seeds = [0]
        part.dims = [4]
        part.methods = ["ssm"]
        #expect(config.hash == part.hash)
        var other = config
        other.protocolSettings.epochs += 1
        #expect(config.hash != other.hash)
        other = config
        other.model.hiddenWidth += 1
        #expect(config.hash != other.hash)
        #expect(config.hash == (try ExperimentConfig.parse("methods: [dsm, ssm]\ndims: [2, 4]\nseeds: [0, 1]\ndsm_sigmas: [0.1, 1.0]\n", file: "y.yml", quick: false)).hash)
    }

    /// CP once per noise layout: the per-point cells keep their names (`cp_d2_seed0`), the
    /// per-pair ones are `cp_per_pair_…`; the layout list, like the other grid lists, leaves the
    /// settings hash alone; a bad layout is refused with the key's name.
    @Test func cpNoiseLayoutsAreCells() throws {
        let text = "methods: [cp, ssm]\ndims: [2]\nseeds: [0]\n"
        let plain = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let both = try ExperimentConfig.parse(text + "cp_noise: [per_point, per_pair]\n", file: "x.yml", quick: false)
        #expect(try plain.cells.map(\.name) == ["cp_d2_seed0", "ssm_d2_seed0"])
        #expect(try both.cells.map(\.name) == ["cp_d2_seed0", "cp_per_pair_d2_seed0", "ssm_d2_seed0"])
        #expect(try both.cells.map(\.series) == ["cp", "cp (per_pair noise)", "ssm"])
        #expect(try both.objectiveSettings(for: both.cells[1]).curvaturePropagationNoise == .perPair)
        #expect(try both.objectiveSettings(for: both.cells[0]).curvaturePropagationNoise == .perPoint)
        #expect(plain.hash == both.hash && !both.canonicalJSON.contains("cpNoises"))
        for bad in ["cp_noise: [pairs]", "cp_noise: []", "cp_noise: [per_pair, per_pair]"] {
            do {
                _ = try ExperimentConfig.parse(text + bad + "\n", file: "x.yml", quick: false)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect("\(error)".contains("key 'cp_noise'"), "\(error)")
            }
        }
    }

    /// Each config's settings hash is the one its committed results were computed under (a new
    /// key, e.g. the targets', must not make `make figure1` recompute them).
    @Test(arguments: ["figure1", "figure2", "table1"])
    func configsKeepTheCommittedHash(name: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
        let config = try ExperimentConfig.load(root.appendingPathComponent("experiments/\(name).yml").path, quick: false).config
        let stored = try ResultsFile.read(at: root.appendingPathComponent("results/\(name).h5").path) { try $0.attribute("config_hash").stringValue }
        #expect(stored == config.hash)
    }

    /// Targets are a grid list (cells `ssm_student_t_d2_seed0`; standard_normal keeps the names it
    /// had); the `target:` block's parameters reach each cell, are in the hash when set and not when
    /// all at their defaults; a parameter of a target the grid lacks, an unknown key, a bad value
    /// and an unknown target are refused with the key's name.
    @Test func targetsAreCellsAndTheirParametersAreHashed() throws {
        let text = "methods: [ssm]\ndims: [2]\nseeds: [0]\n"
        let plain = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let grid = try ExperimentConfig.parse(text + "targets: [standard_normal, student_t]\n", file: "x.yml", quick: false)
        #expect(try grid.cells.map(\.name) == ["ssm_d2_seed0", "ssm_student_t_d2_seed0"])
        #expect(plain.hash == grid.hash)
        let defaults = try ExperimentConfig.parse(text + "targets: [student_t]\ntarget:\n  degrees_of_freedom: 5\n  seed: 0\n", file: "x.yml", quick: false)
        #expect(defaults.targetParameters == nil && defaults.hash == plain.hash)
        let heavier = try ExperimentConfig.parse(text + "targets: [student_t]\ntarget:\n  degrees_of_freedom: 3\n", file: "x.yml", quick: false)
        #expect(heavier.hash != plain.hash)
        #expect(try heavier.targetSettings(for: heavier.cells[0]) == {
            var p = TargetParameters(); p.degreesOfFreedom = 3
            return TargetSettings(.studentT, parameters: p)
        }())
        // --targets may run part of a grid whose block sets another target's parameter.
        var options = try ExperimentOptions.parse(["--targets", "standard_normal"])
        let folderPath = folder()
        let path = folderPath + "/t.yml"
        try (text + "targets: [student_t, standard_normal]\ntarget:\n  degrees_of_freedom: 3\n").write(toFile: path, atomically: true, encoding: .utf8)
        options.config = path
        #expect(try options.resolve(experiment: "x").config.cells.map(\.name) == ["ssm_d2_seed0"])
        for (bad, key) in [("targets: [banana]", "key 'targets'"), ("targets: []", "key 'targets'"),
                           ("targets: [student_t, student_t]", "key 'targets'"),
                           ("target:\n  condition_number: 10", "key 'target.condition_number': is read only by correlated_normal"),
                           ("targets: [student_t]\ntarget:\n  kappa: 10", "key 'target.kappa': unknown key"),
                           ("targets: [student_t]\ntarget:\n  degrees_of_freedom: 0", "key 'target': student_t: degrees_of_freedom must be finite and > 0"),
                           ("targets: [gaussian_mixture]\ntarget:\n  seed: -1", "seed must be ≥ 0"),
                           ("targets: [gaussian_mixture]\ntarget:\n  components: two", "key 'target.components': expected an integer")] {
            do {
                _ = try ExperimentConfig.parse(text + bad + "\n", file: "x.yml", quick: false)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect("\(error)".contains(key), "\(bad) → \(error)")
            }
        }
    }

    /// The `sampling:` block (figure 4) is read strictly, validated by name, and in the hash only
    /// when present.
    @Test func samplingBlockIsStrictAndHashedWhenPresent() throws {
        let text = "methods: [ssm]\ndims: [2]\nseeds: [0]\n"
        let plain = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let sampled = try ExperimentConfig.parse(text + "sampling:\n  step_size: 0.2\n  chains: 10\n", file: "x.yml", quick: false)
        #expect(plain.samplerSettings == nil && sampled.samplerSettings?.stepSize == 0.2 && sampled.samplerSettings?.chains == 10)
        #expect(plain.hash != sampled.hash && !plain.canonicalJSON.contains("samplerSettings"))
        for (bad, key) in [("sampling:\n  step: 0.1", "key 'sampling.step': unknown key"),
                           ("sampling:\n  step_size: -1", "key 'sampling.step_size': must be finite and > 0"),
                           ("sampling:\n  steps: 10\n  burn_in: 10", "key 'sampling.burn_in': must be in 0..<steps")] {
            do {
                _ = try ExperimentConfig.parse(text + bad + "\n", file: "x.yml", quick: false)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect("\(error)".contains(key), "\(bad) → \(error)")
            }
        }
    }

    /// The committed experiment files parse, with and without their quick blocks.
    @Test(arguments: ["figure1", "figure2", "figure3", "figure4", "table1"])
    func committedConfigsAreValid(name: String) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments/\(name).yml").path
        _ = try ExperimentConfig.load(path, quick: false)
        _ = try ExperimentConfig.load(path, quick: true)
    }
}

@Suite struct Grids {
    func tinyConfig() throws -> ExperimentConfig {
        try ExperimentConfig.parse("methods: [ssm]\ndims: [2]\nseeds: [0, 1]\n", file: "x.yml", quick: false)
    }

    /// Cells are written as they finish; a rerun with the same config computes only the missing
    /// ones; a different config is refused; --fresh keeps the old file as a .bak.
    @Test func resumeSkipsFinishedCellsAndRefusesOtherConfigs() throws {
        let path = folder() + "/grid.h5"
        let config = try tinyConfig()
        struct Interrupted: Error {}
        var computed: [String] = []
        let grid = try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false)
        #expect(throws: Interrupted.self) {
            try grid.run(try config.cells) { cell in
                if cell.seed == 1 { throw Interrupted() }
                computed.append(cell.name)
                return { try $0.write("fisher_divergence", doubles: [0.5], shape: []) }
            }
        }
        #expect(try grid.finishedCells() == ["ssm_d2_seed0"])
        let again = try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false)
        try again.run(try config.cells) { cell in
            computed.append(cell.name)
            return { try $0.write("fisher_divergence", doubles: [0.7], shape: []) }
        }
        #expect(computed == ["ssm_d2_seed0", "ssm_d2_seed1"])
        let records = try CellRecord.all(in: path)
        #expect(records.map(\.values["fisher_divergence"]) == [0.5, 0.7])

        var other = config
        other.protocolSettings.epochs += 1
        #expect(throws: ResultsGrid.GridError.self) {
            try ResultsGrid(path: path, experiment: "test", config: other, configText: "t", fresh: false)
        }
        _ = try ResultsGrid(path: path, experiment: "test", config: other, configText: "t", fresh: true)
        let files = try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent)
        #expect(files.contains { $0.hasPrefix("grid.h5.") && $0.hasSuffix(".bak") })
        #expect(try ResultsGrid(path: path, experiment: "test", config: other, configText: "t", fresh: false).finishedCells().isEmpty)
    }

    /// Runs over parts of one grid (here --seeds 0, then --seeds 1) fill one file; each cell records
    /// the commit and BLAS setup that computed it.
    @Test func partsOfAGridShareAFile() throws {
        let path = folder() + "/shared.h5"
        let whole = try tinyConfig()
        for seed in [0, 1] {
            var part = whole
            part.seeds = [seed]
            let grid = try ResultsGrid(path: path, experiment: "test", config: whole, configText: "t", fresh: false)
            try grid.run(try part.cells) { _ in { try $0.write("fisher_divergence", doubles: [1], shape: []) } }
        }
        try ResultsFile.read(at: path) { root throws in
            #expect(try root.group("cells").childNames().sorted() == ["ssm_d2_seed0", "ssm_d2_seed1"])
            let cell = try root.group("cells").group("ssm_d2_seed1")
            for key in ["git_commit", "openblas", "blas_threads", "host"] { #expect((try? cell.attribute(key)) != nil, "missing \(key)") }
        }
    }

    /// Two runs of one grid at once (as `--jobs 2` or two processes started by hand) compute
    /// each cell exactly once between them and leave every cell in the file.
    @Test func concurrentRunsComputeEachCellOnce() throws {
        let path = folder() + "/jobs.h5"
        let config = try ExperimentConfig.parse("methods: [ssm, sm]\ndims: [2, 3]\nseeds: [0, 1]\n", file: "x.yml", quick: false)
        let computed = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        _ = try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false)
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            do {
                let grid = try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false)
                try grid.run(try config.cells) { cell in
                    computed.withLock { $0.append(cell.name) }
                    Thread.sleep(forTimeInterval: 0.05)
                    return { try $0.write("fisher_divergence", doubles: [1], shape: []) }
                }
            } catch { failures.withLock { $0.append("\(error)") } }
        }
        #expect(failures.withLock { $0 } == [])
        let names = try config.cells.map(\.name)
        #expect(computed.withLock { $0 }.sorted() == names.sorted())
        #expect(try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false).finishedCells() == Set(names))
        #expect(!FileManager.default.fileExists(atPath: (path as NSString).deletingLastPathComponent + "/.jobs.h5.cells"))
    }

    /// `--jobs 1` starts no worker and leaves OpenBLAS's thread count alone.
    @Test func oneJobStartsNoWorkerAndKeepsBLASThreads() throws {
        let before = openBLASThreadCount
        Workers.configureBLASThreads(jobs: 1)
        let workers = try Workers(count: 0, arguments: [])
        #expect(workers.wait().isEmpty)
        #expect(openBLASThreadCount == before)
    }

    /// A cell claimed by a process that ends without recording it (killed, or its computation
    /// failed) is waited for and then computed by the run that is still going.
    @Test func cellsOfAFailedClaimantAreComputed() throws {
        let path = folder() + "/dead.h5"
        let config = try tinyConfig()
        let grid = try ResultsGrid(path: path, experiment: "test", config: config, configText: "t", fresh: false)
        let other = try #require(try CellClaim(cell: "ssm_d2_seed0", of: path, wait: false))
        #expect(try CellClaim(cell: "ssm_d2_seed0", of: path, wait: false) == nil)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.3) { other.release() }
        var computed: [String] = []
        try grid.run(try config.cells) { cell in
            computed.append(cell.name)
            return { try $0.write("fisher_divergence", doubles: [1], shape: []) }
        }
        #expect(computed == ["ssm_d2_seed1", "ssm_d2_seed0"])
        #expect(try grid.finishedCells() == ["ssm_d2_seed0", "ssm_d2_seed1"])
    }

    /// A claim's holder removes the lock file when it lets go, even while another process waits
    /// on that file; the waiter then holds the path's new file, so a third claimant is still kept
    /// out (without the check that the path names the locked file, it would get in). Once the last
    /// claim is released, neither the lock file nor its folder is left.
    @Test func aClaimRemovedWhileAnotherWaitsStaysExclusive() throws {
        let path = folder() + "/removed.h5"
        let holder = try #require(try CellClaim(cell: "ssm_d2_seed0", of: path, wait: false))
        let waiterHolds = DispatchSemaphore(value: 0), waiterMayRelease = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var waiterError: Error?
        DispatchQueue.global().async {
            do {
                let waiter = try CellClaim(cell: "ssm_d2_seed0", of: path, wait: true)
                waiterHolds.signal()
                waiterMayRelease.wait()
                waiter?.release()
            } catch { waiterError = error; waiterHolds.signal() }
        }
        Thread.sleep(forTimeInterval: 0.2)  // the waiter is blocked on the holder's file
        holder.release()
        waiterHolds.wait()
        #expect(waiterError == nil)
        #expect(try CellClaim(cell: "ssm_d2_seed0", of: path, wait: false) == nil)
        waiterMayRelease.signal()
        let folderPath = (path as NSString).deletingLastPathComponent + "/.removed.h5.cells"
        for _ in 0..<100 where FileManager.default.fileExists(atPath: folderPath) { Thread.sleep(forTimeInterval: 0.02) }
        #expect(!FileManager.default.fileExists(atPath: folderPath))
    }

    /// The file records the config and provenance.
    @Test func provenanceIsRecorded() throws {
        let path = folder() + "/p.h5"
        let config = try tinyConfig()
        _ = try ResultsGrid(path: path, experiment: "test", config: config, configText: "methods: [ssm]", fresh: false)
        try ResultsFile.read(at: path) { root throws in
            #expect(try root.attribute("config_hash").stringValue == config.hash)
            #expect(try root.attribute("config_text").stringValue == "methods: [ssm]")
            for key in ["git_commit", "swift_version", "gsl_version", "hdf5_version", "openblas", "cpu_model", "cores", "started"] {
                #expect(root.contains("cells") && (try? root.attribute(key)) != nil, "missing \(key)")
            }
        }
    }
}

@Suite struct Hardening {
    /// Package.swift pins each dependency with `exact:` at the version the results record.
    @Test func dependencyVersionsMatchPackageSwift() throws {
        let manifest = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Package.swift").path, encoding: .utf8)
        let pins = manifest.split(separator: "\n").filter { $0.contains(".package(url:") }
        #expect(pins.count == Provenance.dependencies.count)
        for line in pins {
            #expect(line.contains("exact:"), "not pinned exactly: \(line)")
            let name = Provenance.dependencies.keys.first { line.contains("/\($0)\"") }
            let version = try #require(name.flatMap { Provenance.dependencies[$0] }, "no recorded version for \(line)")
            #expect(line.contains("exact: \"\(version)\""), "\(line) vs \(version)")
        }
    }

    /// The memory bound: the paper's D = 10 fits in far less than this machine has; D = 10⁵ needs
    /// more than 24 GiB (the data are 4.8 GB, the test set's tangents 44.6 GB: 46.0 GiB) and is refused.
    @Test func memoryBoundRefusesRunsThatCannotFit() throws {
        let settings = ProtocolSettings()
        let small = settings.minimumMemoryBytes(for: DKEFConfiguration(dimension: 10))
        let huge = settings.minimumMemoryBytes(for: DKEFConfiguration(dimension: 100_000))
        #expect(small == 8 * (6000 * 10 + 600 * 10 * 31 * 3))
        #expect(huge > 24 * 1_073_741_824)
        try MemoryCheck.require(small, for: "D = 10", physical: 24 * 1_073_741_824)
        do {
            try MemoryCheck.require(huge, for: "a cell at D = 100000", physical: 24 * 1_073_741_824)
            Issue.record("D = 100000 was accepted")
        } catch let error as ResourceError {
            #expect(error.description.contains("needs at least 46.0 GiB of memory and this machine has 24.0 GiB"), "\(error)")
        }
    }

    /// A grid file refuses another experiment's cells, naming both.
    @Test func aGridRefusesAnotherExperimentsFile() throws {
        let path = folder() + "/other.h5"
        let config = try ExperimentConfig.parse("methods: [ssm]\ndims: [2]\nseeds: [0]\n", file: "x.yml", quick: false)
        _ = try ResultsGrid(path: path, experiment: "figure2", config: config, configText: "", fresh: false)
        #expect(throws: ResultsGrid.GridError.otherExperiment(path: path, stored: "figure2", current: "table1")) {
            try ResultsGrid(path: path, experiment: "table1", config: config, configText: "", fresh: false)
        }
        // --fresh keeps the old file as a hard-linked .bak and starts the new experiment.
        _ = try ResultsGrid(path: path, experiment: "table1", config: config, configText: "", fresh: true)
        #expect(try ResultsGrid.experiment(of: path) == "table1")
        let folderPath = (path as NSString).deletingLastPathComponent
        let backup = try #require(try FileManager.default.contentsOfDirectory(atPath: folderPath).first { $0.hasSuffix(".bak") })
        #expect(try ResultsGrid.experiment(of: folderPath + "/" + backup) == "figure2")
    }

    /// The file's own blas_threads is what its cells ran with: with several jobs, one thread is
    /// set before the file records the provenance.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil, "OPENBLAS_NUM_THREADS fixes the thread count"))
    func severalJobsSetOneBLASThreadFirst() throws {
        let before = openBLASThreadCount
        defer { setOpenBLASThreadCount(before) }
        setOpenBLASThreadCount(2)
        Workers.configureBLASThreads(jobs: 2)
        #expect(Provenance.current().blasThreads == 1)
    }
}

@Suite struct Thresholds {
    /// A bound the results break is reported as broken; an unknown name is a config error.
    @Test func brokenThresholdsAreNamed() throws {
        let dir = folder()
        let config = try ExperimentConfig.parse("methods: [sm, ssm_vr]\ndims: [2]\nseeds: [0]\n", file: "x.yml", quick: false)
        let grid = try ResultsGrid(path: dir + "/figure1.h5", experiment: "figure1", config: config, configText: "", fresh: false)
        try grid.run(try config.cells) { cell in
            let value = cell.method == .sm ? 1.0 : 3.0
            return { try $0.write("fisher_divergence", doubles: [value], shape: []) }
        }
        try "ssm_vr_over_sm_fisher_max: 2.0\n".write(toFile: dir + "/t.yml", atomically: true, encoding: .utf8)
        let outcome = try ThresholdCheck.run(thresholdsFile: dir + "/t.yml", resultsFolder: dir)
        #expect(outcome.count == 1 && !outcome[0].passed && outcome[0].value == 3.0)
        try "ssm_vr_over_sm_fisher_max: 3.5\n".write(toFile: dir + "/t.yml", atomically: true, encoding: .utf8)
        #expect(try ThresholdCheck.run(thresholdsFile: dir + "/t.yml", resultsFolder: dir)[0].passed)
        try "made_up: 1\n".write(toFile: dir + "/t.yml", atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try ThresholdCheck.run(thresholdsFile: dir + "/t.yml", resultsFolder: dir) }
        try "ssm_vr_over_sm_fisher_max: [2.0\n".write(toFile: dir + "/t.yml", atomically: true, encoding: .utf8)
        do {
            _ = try ThresholdCheck.run(thresholdsFile: dir + "/t.yml", resultsFolder: dir)
            Issue.record("invalid YAML was accepted")
        } catch { #expect("\(error)".contains("t.yml") && "\(error)".contains("not valid YAML"), "\(error)") }
    }

    /// A results file of another experiment under a threshold's file name is an error naming the
    /// file and both experiments, not a crash; claims with nothing to compare are NaN (broken).
    @Test func wrongKindOfFileIsNamed() throws {
        let dir = folder()
        let config = try ExperimentConfig.parse("methods: [sm, ssm]\ndims: [2]\nseeds: [0]\n", file: "x.yml", quick: false)
        let grid = try ResultsGrid(path: dir + "/table1.h5", experiment: "figure2", config: config, configText: "", fresh: false)
        try grid.run(try config.cells) { _ in { try $0.write("median_total_seconds", doubles: [1], shape: []) } }
        try "dsm_worst_over_best_sigma_min: 1.5\n".write(toFile: dir + "/t.yml", atomically: true, encoding: .utf8)
        do {
            _ = try ThresholdCheck.run(thresholdsFile: dir + "/t.yml", resultsFolder: dir)
            Issue.record("figure2's file was read as table1's")
        } catch let error as FileError {
            #expect(error.description.contains("table1.h5 holds figure2 results, but threshold 'dsm_worst_over_best_sigma_min' needs table1 results"), "\(error)")
        }
        #expect(ThresholdCheck.dsmSigmaSpread([]).isNaN)
        let noFisher = CellRecord(name: "dsm_sigma0.1_d2_seed0", method: "dsm", dimension: 2, sigma: 0.1, seed: 0, values: [:], overBudget: false)
        #expect(ThresholdCheck.dsmSigmaSpread([noFisher]).isNaN)
        #expect(ThresholdCheck.worstRatio([noFisher], "ssm", "dsm", metric: "fisher_divergence").isNaN)
    }
}

/// A report is computed from its results file alone: each entry is the mean ± standard error
/// (sample standard deviation / √n) over seeds, rows in the estimators' order with their display
/// names, and the same file gives the same text.
@Suite struct MarkdownReports {
    @Test func aReportStatesMeanAndStandardErrorOverSeeds() throws {
        let path = folder() + "/figure1.h5"
        let text = "methods: [ssm, sm]\ndims: [2, 3]\nseeds: [0, 1, 2]\n"
        let config = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let grid = try ResultsGrid(path: path, experiment: "figure1", config: config, configText: text, fresh: false)
        // SSM at D = 2: 1, 2, 4 (mean 7/3, sd √(7/3), SE √(7/9) = 0.882); SM at D = 2: 0.5 on each seed.
        let values: [String: [Double]] = ["ssm_d2": [1, 2, 4], "sm_d2": [0.5, 0.5, 0.5], "ssm_d3": [3, 3, 3], "sm_d3": [1, 2, 3]]
        try grid.run(try config.cells) { cell in
            let value = values["\(cell.method.rawValue)_d\(cell.dimension)"]![cell.seed]
            return { try $0.write("fisher_divergence", doubles: [value], shape: []) }
        }
        let report = try Reports.Report(resultsAt: path)
        let markdown = try report.markdown
        #expect(markdown.contains("| SM (exact) | 0.5 ± 0 | 2 ± 0.58 |"), "\(markdown)")
        #expect(markdown.contains("| SSM | 2.33 ± 0.88 | 3 ± 0 |"), "\(markdown)")
        // SM's row comes before SSM's whatever order the config lists them in.
        let sm = try #require(markdown.range(of: "| SM (exact) |")), ssm = try #require(markdown.range(of: "| SSM |"))
        #expect(sm.lowerBound < ssm.lowerBound)
        #expect(try Reports.Report(resultsAt: path).markdown == markdown)
    }

    /// A grid still being computed says so: its cells out of the config's, in the first line.
    @Test func aPartialGridSaysItIsIncomplete() throws {
        let path = folder() + "/figure1.h5"
        let text = "methods: [ssm, sm]\ndims: [2, 3]\nseeds: [0, 1]\n"
        let config = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let grid = try ResultsGrid(path: path, experiment: "figure1", config: config, configText: text, fresh: false)
        try grid.run(Array(try config.cells.prefix(3))) { _ in { try $0.write("fisher_divergence", doubles: [1], shape: []) } }
        #expect(try Reports.Report(resultsAt: path).markdown.contains("(3 of the grid's 8 cells: incomplete, seeds"))
        try grid.run(try config.cells) { _ in { try $0.write("fisher_divergence", doubles: [1], shape: []) } }
        let complete = try Reports.Report(resultsAt: path).markdown
        #expect(complete.contains("(8 cells, seeds 0, 1;") && !complete.contains("incomplete"), "\(complete)")
    }
}

/// figure 5's network grid in a config: the cells each method applies to, the names, the refusals.
@Suite struct NetworkGrids {
    @Test func cellsAreTheMethodsWithTheModelKindsTheyApplyTo() throws {
        let text = "methods: [ssm_vr, deen, dsm]\nmodels: [energy, score, noise_conditional]\ndatasets: [rings, ncsn_mixture]\nseeds: [0]\nnetworks:\n  hidden: [8]\n"
        let config = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        let names = try config.cells.map(\.name)
        // ssm_vr: energy and score on both; deen: energy only; dsm: energy and score on both, and
        // the noise-conditional network on the mixture only.
        #expect(names == ["ssm_vr_energy_rings_seed0", "ssm_vr_energy_ncsn_mixture_seed0", "ssm_vr_score_rings_seed0", "ssm_vr_score_ncsn_mixture_seed0",
                          "deen_energy_rings_seed0", "deen_energy_ncsn_mixture_seed0",
                          "dsm_energy_rings_seed0", "dsm_energy_ncsn_mixture_seed0", "dsm_score_rings_seed0", "dsm_score_ncsn_mixture_seed0",
                          "dsm_noise_conditional_ncsn_mixture_seed0"])
        #expect(config.networks?.hidden == [8])
        // The block is in the hash, the grid lists are not.
        let other = try ExperimentConfig.parse(text.replacingOccurrences(of: "seeds: [0]", with: "seeds: [0, 1]"), file: "x.yml", quick: false)
        #expect(other.hash == config.hash)
        #expect(try ExperimentConfig.parse(text.replacingOccurrences(of: "[8]", with: "[9]"), file: "x.yml", quick: false).hash != config.hash)
    }

    @Test func badNetworkGridsAreRefusedByKey() {
        func refusal(_ text: String) -> String {
            do { _ = try ExperimentConfig.parse(text, file: "x.yml", quick: false); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal("datasets: [moons]\n").contains("key 'datasets': must be a non-empty list of distinct toy datasets"))
        #expect(refusal("datasets: [rings]\nmodels: [flow]\n").contains("key 'models'"))
        #expect(refusal("methods: [cp]\ndatasets: [rings]\n").contains("cp needs a model with layer structure"))
        #expect(refusal("methods: [sm]\ndatasets: [rings]\nnetworks:\n  hidden: [0]\n").contains("key 'networks.hidden'"))
        #expect(refusal("methods: [sm]\ndatasets: [rings]\nnetworks:\n  sigma: 0\n").contains("key 'networks.sigma'"))
        #expect(refusal("datasets: [rings]\nnetworks:\n  widths: [3]\n").contains("key 'networks.widths': unknown key"))
    }
}

/// figure 6's score-estimation grid in a config: its cells and names, the hash, the refusals.
@Suite struct EstimationGrids {
    let text = """
        methods: [ssm_vr]
        kernel_estimators: [stein]
        targets: [standard_normal, student_t]
        dims: [2, 20]
        sample_counts: [50]
        sweep:
          dims: [20]
          sample_counts: [10, 50]
        seeds: [0]
        estimation:
          network:
            hidden: [8]

        """

    // Kernels first (each variant), then the networks; targets × the (D, M) points (the main M at
    // every D, then the sweep's new points) × seeds; names carry M and a kernel's variant.
    @Test func cellsAreKernelsThenNetworksOverTargetsPointsAndSeeds() throws {
        let config = try ExperimentConfig.parse(text, file: "x.yml", quick: false)
        #expect(config.estimationPoints.map { [$0.dimension, $0.samples] } == [[2, 50], [20, 50], [20, 10]])
        let names = try config.cells.map(\.name)
        let points = ["d2_m50", "d20_m50", "d20_m10"]
        let expected = ["stein_authors", "stein_tuned", "ssm_vr"].flatMap { method in
            ["", "_student_t"].flatMap { target in points.map { "\(method)\(target)_\($0)_seed0" } }
        }
        #expect(names == expected)
        let cells = try config.cells
        #expect(cells.allSatisfy { $0.sampleCount != nil })
        #expect(cells.first!.estimator == .kernel(.stein, .authors) && cells.first!.modelKind == nil)
        #expect(cells.last!.method == .ssmVR && cells.last!.modelKind == .score && cells.last!.series == "ssm_vr (score)")
        #expect(cells.first!.series == "stein (authors)")
        // The estimation: block is in the hash; the grid lists are not.
        let more = try ExperimentConfig.parse(text.replacingOccurrences(of: "sample_counts: [50]", with: "sample_counts: [50, 60]"), file: "x.yml", quick: false)
        #expect(more.hash == config.hash)
        #expect(try ExperimentConfig.parse(text.replacingOccurrences(of: "[8]", with: "[9]"), file: "x.yml", quick: false).hash != config.hash)
    }

    // A config without figure 6's keys keeps the hash it had (figure 5's running grid: 362ae552ccbe4290).
    @Test func otherGridsKeepTheirHash() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments/figure5.yml").path
        #expect(try ExperimentConfig.load(path, quick: false).config.hash == "362ae552ccbe4290")
        #expect(try ExperimentConfig.load(path, quick: false).config.estimation == nil)
    }

    @Test(arguments: ["figure5", "figure6"])
    func committedConfigsAreValid(name: String) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments/\(name).yml").path
        _ = try ExperimentConfig.load(path, quick: false)
        _ = try ExperimentConfig.load(path, quick: true)
    }

    @Test func badEstimationGridsAreRefusedByKey() {
        func refusal(_ edit: (String) -> String) -> String {
            do { _ = try ExperimentConfig.parse(edit(text), file: "x.yml", quick: false); return "accepted" } catch { return "\(error)" }
        }
        #expect(refusal { $0.replacingOccurrences(of: "[stein]", with: "[parzen]") }.contains("key 'kernel_estimators': must be a list of distinct kernel score estimators from stein, ssge"))
        #expect(refusal { $0 + "kernel_variants: [best]\n" }.contains("key 'kernel_variants'"))
        #expect(refusal { $0.replacingOccurrences(of: "sample_counts: [50]", with: "sample_counts: [1]") }.contains("key 'sample_counts': must be a non-empty list of sample counts ≥ 2"))
        #expect(refusal { $0.replacingOccurrences(of: "  sample_counts: [10, 50]", with: "  sample_counts: []") }.contains("key 'sweep'"))
        #expect(refusal { $0.replacingOccurrences(of: "[ssm_vr]", with: "[deen]") }.contains("deen cannot train a score network"))
        #expect(refusal { $0.replacingOccurrences(of: "[ssm_vr]", with: "[cp]") }.contains("key 'methods'"))
        #expect(refusal { $0 + "  kernels:\n    bandwidth_factors: [0]\n" }.contains("key 'estimation.kernels.bandwidth_factors': must be a non-empty list of finite numbers > 0"))
        #expect(refusal { $0 + "  kernels:\n    thresholds: [1.5]\n" }.contains("key 'estimation.kernels.thresholds': must be a non-empty list of numbers in (0, 1]"))
        #expect(refusal { $0 + "  kernels:\n    ssge_threshold: 0\n" }.contains("key 'estimation.kernels.ssge_threshold'"))
        #expect(refusal { $0 + "  kernels:\n    stein_eta: -1\n" }.contains("key 'estimation.kernels.stein_eta'"))
        #expect(refusal { $0 + "  held_out: 0\n" }.contains("key 'estimation.held_out'"))
        #expect(refusal { $0.replacingOccurrences(of: "hidden: [8]", with: "hidden: [8]\n    steps: 0") }.contains("key 'estimation.network.steps'"))
        #expect(refusal { $0 + "  kernels:\n    width: 1\n" }.contains("key 'estimation.kernels.width': unknown key"))
        #expect(refusal { $0.replacingOccurrences(of: "dims: [2, 20]", with: "dims: [0]") }.contains("key 'dims'"))
    }
}
