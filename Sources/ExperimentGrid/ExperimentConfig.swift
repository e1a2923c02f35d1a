import DKEFModel
import Foundation
import GSLNumerics
import NeuralModels
import Objectives
import Sampling
import ScoreEstimation
import Training
import Yams

/// One experiment's settings: the grid (methods × CP noise × targets × dimensions × DSM σ × seeds),
/// the targets' parameters, the DKEF architecture, the protocol's hyperparameters and, for
/// figure 2, the timing budget.
///
/// Defaults live here and are the paper's (the authors' configs/dkef_perf); an experiment file
/// `experiments/<name>.yml` overrides only what differs, and its `quick:` block overrides again
/// for `--quick`. Every key is checked: an unknown key, a wrong type or a bad value is an error
/// naming the file, the key and the reason.
public struct ExperimentConfig: Codable, Equatable, Sendable {
    public var methods: [String] = Estimator.paper.map(\.rawValue)
    public var dims: [Int] = [10, 20, 50, 100]
    public var seeds: [Int] = [0, 1, 2]
    /// DSM's noise scales; each is its own grid cell.
    public var dsmSigmas: [Double] = [0.1]
    /// CP's noise layouts (`CurvaturePropagationNoise` names); each is its own grid cell. Not
    /// encoded (see `CodingKeys`): like the other grid lists it says which cells exist, each cell
    /// names its layout, and the settings hash of every earlier file stays what it was.
    public var cpNoises: [String] = [CurvaturePropagationNoise.perPoint.rawValue]
    /// The target distributions of the data (`Target` names); each is its own grid cell. Not
    /// encoded, as `cpNoises`.
    public var targets: [String] = [Target.standardNormal.rawValue]
    /// The `target:` block: the targets' parameters, nil when every one is at its default. In the
    /// hash only when set, so the configs of N(0, I) experiments keep the hash they had (the
    /// defaults are pinned by a test, as a changed default would change what such a file means).
    public var targetParameters: TargetParameters?
    /// The `sampling:` block (figure 4): the samplers' settings, nil when a config has none (not
    /// encoded then, so the other configs keep their hash).
    public var samplerSettings: SamplerSettings?
    /// figure 5's grid lists: the toy datasets and model kinds (`ToyDataset`, `ModelKind` names).
    /// A config with datasets is a grid of deep-score-model cells (methods × models × datasets ×
    /// seeds, each method with the model kinds it applies to). Not encoded, as `targets`.
    public var datasets: [String] = []
    public var models: [String] = [ModelKind.energy.rawValue]
    /// The `networks:` block: how those cells are built, trained and sampled; nil (and not
    /// encoded, so every other config keeps its hash) for DKEF grids.
    public var networks: NetworkSettings?
    /// figure 6's grid lists: the kernel score estimators and their settings variants
    /// (`KernelMethod`, `KernelVariant` names), the sample counts M run at every D of `dims`, and
    /// the M sweep (`sweep:`): `sweepSampleCounts` at each of `sweepDims`. Not encoded, as `targets`.
    public var kernelEstimators: [String] = []
    public var kernelVariants: [String] = KernelVariant.allCases.map(\.rawValue)
    public var sampleCounts: [Int] = []
    public var sweepDims: [Int] = []
    public var sweepSampleCounts: [Int] = []
    /// The `estimation:` block: how figure 6's cells are computed; nil (and not encoded, so every
    /// other config keeps its hash) for the other grids. A config with any figure-6 key has one.
    public var estimation: ScoreEstimationSettings?
    public var projection: String = Projection.rademacher.rawValue
    public var projections: Int = 1
    public var model = ModelSettings()
    public var protocolSettings = ProtocolSettings()
    public var timing = TimingSettings()

    public struct ModelSettings: Codable, Equatable, Sendable {
        public var inducingPoints = 200
        public var hiddenWidth = 30
        public var logBandwidths: [Double] = [0.0, 0.5185, 1.0]
        public var baseSigma = 2.0
        public var logLambda = -2.0
    }

    /// figure2: untimed warm-up iterations, timed iterations (the median is reported), and the
    /// per-cell budget in seconds per iteration beyond which exact SM stops growing D.
    public struct TimingSettings: Codable, Equatable, Sendable {
        public var warmup = 2
        public var iterations = 10
        public var budgetSeconds = 60.0
    }

    /// figure 5: the networks' architecture, training and sampling (toy_gradlogp's by default).
    public struct NetworkSettings: Codable, Equatable, Sendable {
        /// Energy networks' hidden widths (toy_gradlogp's 300 × 300).
        public var hidden: [Int] = [300, 300]
        /// Score networks' hidden widths and batch size (NCSN's toy score network: 128 × 128, batch 128).
        public var scoreHidden: [Int] = [128, 128]
        public var scoreBatchSize = 128
        public var activation = MLP.Activation.softplus.rawValue
        /// DSM's and DEEN's σ.
        public var sigma = 0.1
        public var training = NetworkTrainingSettings()
        public var langevinEpsilon = 0.01
        public var langevinSteps = 100
        public var chains = 1000
        public init() {}
        static let keys = ["hidden", "score_hidden", "score_batch_size", "activation", "sigma", "train", "test", "batch_size", "epochs", "learning_rate", "clip_norm",
                           "langevin_epsilon", "langevin_steps", "chains"]
    }

    /// The encoded settings: every property but the grid lists `cpNoises`, `targets`, `datasets`, `models`.
    enum CodingKeys: String, CodingKey {
        case methods, dims, seeds, dsmSigmas, projection, projections, model, protocolSettings, timing, targetParameters, samplerSettings, networks, estimation
    }

    public init() {}

    public func dkefConfiguration(dimension: Int) -> DKEFConfiguration {
        DKEFConfiguration(dimension: dimension, inducingPoints: model.inducingPoints, hiddenWidth: model.hiddenWidth,
                          initialLogBandwidths: model.logBandwidths, baseSigma: model.baseSigma, initialLogLambda: model.logLambda)
    }

    public func objectiveSettings(sigma: Double, curvaturePropagationNoise: CurvaturePropagationNoise = .perPoint) throws -> ObjectiveSettings {
        ObjectiveSettings(projection: try Projection(named: projection), projectionCount: projections, sigma: sigma,
                          curvaturePropagationNoise: curvaturePropagationNoise)
    }

    /// The objective settings of one cell: its σ (DSM) and noise layout (CP), else the defaults.
    public func objectiveSettings(for cell: Cell) throws -> ObjectiveSettings {
        try objectiveSettings(sigma: cell.sigma ?? dsmSigmas[0], curvaturePropagationNoise: cell.cpNoise ?? .perPoint)
    }

    /// The target of one cell with the config's parameters.
    public func targetSettings(for cell: Cell) -> TargetSettings {
        TargetSettings(cell.target, parameters: targetParameters ?? TargetParameters())
    }

    /// `targets` parsed (validated names).
    public var targetNames: [Target] { get throws { try targets.map(Target.init(named:)) } }

    /// `cpNoises` parsed (validated names).
    public var cpNoiseLayouts: [CurvaturePropagationNoise] { get throws { try cpNoises.map(CurvaturePropagationNoise.init(named:)) } }

    public var estimators: [Estimator] { get throws { try methods.map(Estimator.init(named:)) } }

    /// figure 6's (D, M) points: every D of `dims` at every M of `sampleCounts`, then the sweep's,
    /// each once.
    public var estimationPoints: [(dimension: Int, samples: Int)] {
        var seen = Set<[Int]>(), points: [(dimension: Int, samples: Int)] = []
        for (d, m) in dims.flatMap({ d in sampleCounts.map { (d, $0) } }) + sweepDims.flatMap({ d in sweepSampleCounts.map { (d, $0) } })
        where seen.insert([d, m]).inserted { points.append((d, m)) }
        return points
    }

    /// The grid's cells, in run order (method-major, then CP's noise layout, target, D, σ, seed;
    /// figure 6: the kernel estimators first, each variant, then the networks' methods, each over
    /// targets, (D, M) points and seeds).
    public var cells: [Cell] {
        get throws {
            if estimation != nil {
                let targets = try targetNames, points = estimationPoints
                let kernels = try kernelEstimators.map(KernelMethod.init(named:)).flatMap { k in
                    try kernelVariants.map(KernelVariant.init(named:)).map { CellMethod.kernel(k, $0) }
                }
                return try (kernels + estimators.map(CellMethod.objective)).flatMap { method -> [Cell] in
                    // The networks of figure 6 are score networks.
                    let kind: ModelKind?
                    if case .objective = method { kind = .score } else { kind = nil }
                    return targets.flatMap { target in
                        points.flatMap { point in
                            seeds.map { Cell(estimator: method, dimension: point.dimension, seed: $0, target: target, modelKind: kind, sampleCount: point.samples) }
                        }
                    }
                }
            }
            if !datasets.isEmpty {
                let kinds = try models.map(ModelKind.init(named:)), sets = try datasets.map(ToyDataset.init(named:))
                // Each method with the model kinds it applies to: DEEN needs an energy; a
                // noise-conditional network is trained by NCSN's DSM and measured on a mixture.
                func applies(_ estimator: Estimator, _ kind: ModelKind, _ dataset: ToyDataset) -> Bool {
                    switch kind {
                    case .energy: true
                    case .score: !estimator.needsLogDensity
                    case .noiseConditional: estimator == .dsm && dataset.reference is GaussianMixture
                    }
                }
                return try estimators.flatMap { estimator in
                    kinds.flatMap { kind in
                        sets.filter { applies(estimator, kind, $0) }.flatMap { dataset in
                            seeds.map { Cell(method: estimator, dimension: 2, sigma: nil, seed: $0, dataset: dataset, modelKind: kind) }
                        }
                    }
                }
            }
            let layouts = try cpNoiseLayouts, targets = try targetNames
            return try estimators.flatMap { estimator in
                (estimator == .cp ? layouts.map(Optional.some) : [nil]).flatMap { layout in
                    targets.flatMap { target in
                        dims.flatMap { d in
                            (estimator == .dsm ? dsmSigmas.map(Optional.some) : [nil]).flatMap { sigma in
                                seeds.map { Cell(method: estimator, dimension: d, sigma: sigma, seed: $0, cpNoise: layout, target: target) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A canonical JSON text of the effective settings (sorted keys).
    public var canonicalJSON: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Non-finite numbers (which configs refuse) are spelt out instead of throwing, so encoding
        // a struct of plain values cannot fail; finite numbers encode as before.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try! encoder.encode(self), as: UTF8.self)
    }

    /// FNV-1a 64-bit hash of the canonical JSON of the settings that decide how a cell is
    /// computed (model, protocol, objective, timing) — not of the grid lists (methods, dims,
    /// seeds, DSM σ), which only say which cells exist (each cell names its own). Cells computed
    /// under another hash are not reused; runs over different parts of one grid share a file.
    public var hash: String {
        var settings = self
        settings.methods = []
        settings.dims = []
        settings.seeds = []
        settings.dsmSigmas = []
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in settings.canonicalJSON.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(format: "%016llx", h)
    }

    /// Throws `ConfigError.invalid` for values no run could use, or `ConfigError.flag` when the
    /// bad value came from a command-line flag: `flags` maps a grid key (`dims`) to the flag that
    /// set it (`--dims`).
    public func validate(file: String, flags: [String: String] = [:]) throws {
        func fail(_ key: String, _ reason: String) -> ConfigError {
            flags[key].map { .flag(name: $0, reason: reason) } ?? .invalid(file: file, key: key, reason: reason)
        }
        guard !methods.isEmpty || (estimation != nil && !kernelEstimators.isEmpty) else {
            throw fail("methods", estimation == nil ? "must list at least one method" : "must list at least one method, or kernel_estimators at least one kernel estimator")
        }
        for m in methods where Estimator(rawValue: m) == nil {
            throw fail("methods", "unknown method '\(m)'; choose from \(Estimator.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard !dims.isEmpty, dims.allSatisfy({ $0 >= 1 }) else { throw fail("dims", "must be a non-empty list of integers ≥ 1, got \(dims)") }
        guard !seeds.isEmpty, seeds.allSatisfy({ $0 >= 0 }) else { throw fail("seeds", "must be a non-empty list of integers ≥ 0, got \(seeds)") }
        guard !dsmSigmas.isEmpty, dsmSigmas.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw fail("dsm_sigmas", "must be a non-empty list of finite numbers > 0, got \(dsmSigmas)")
        }
        guard !cpNoises.isEmpty, Set(cpNoises).count == cpNoises.count,
              cpNoises.allSatisfy({ CurvaturePropagationNoise(rawValue: $0) != nil }) else {
            throw fail("cp_noise", "must be a non-empty list of distinct CP noise layouts from \(CurvaturePropagationNoise.allCases.map(\.rawValue).joined(separator: ", ")), got \(cpNoises)")
        }
        guard !targets.isEmpty, Set(targets).count == targets.count, targets.allSatisfy({ Target(rawValue: $0) != nil }) else {
            throw fail("targets", "must be a non-empty list of distinct targets from \(Target.allCases.map(\.rawValue).joined(separator: ", ")), got \(targets)")
        }
        if let parameters = targetParameters {
            for target in Target.allCases {
                do { _ = try TargetSettings(target, parameters: parameters).distribution(dimension: 1) } catch { throw fail("target", "\(error)") }
            }
            // A parameter set for a target the file's grid does not have is a mistake (and
            // would change the hash for nothing); --targets running part of the grid is not.
            if flags["targets"] == nil {
                let listed = try targetNames
                for key in parameters.changedKeys where !listed.contains(where: { $0.parameterKeys.contains(key) }) {
                    let readers = Target.allCases.filter { $0.parameterKeys.contains(key) }.map(\.rawValue)
                    throw fail("target.\(key)", "is read only by \(readers.joined(separator: " and ")), which targets (\(targets.joined(separator: ", "))) does not list")
                }
            }
        }
        if !datasets.isEmpty || networks != nil {
            guard !datasets.isEmpty, Set(datasets).count == datasets.count, datasets.allSatisfy({ ToyDataset(rawValue: $0) != nil }) else {
                throw fail("datasets", "must be a non-empty list of distinct toy datasets from \(ToyDataset.allCases.map(\.rawValue).joined(separator: ", ")), got \(datasets)")
            }
            guard !models.isEmpty, Set(models).count == models.count, models.allSatisfy({ ModelKind(rawValue: $0) != nil }) else {
                throw fail("models", "must be a non-empty list of distinct model kinds from \(ModelKind.allCases.map(\.rawValue).joined(separator: ", ")), got \(models)")
            }
            for m in methods { if let e = Estimator(rawValue: m), e.needsLayeredModel {
                throw fail("methods", "\(m) needs a model with layer structure (DKEF); a network grid takes \(Estimator.allCases.filter { !$0.needsLayeredModel }.map(\.rawValue).joined(separator: ", "))")
            } }
            let n = networks ?? NetworkSettings()
            guard !n.hidden.isEmpty, n.hidden.allSatisfy({ $0 >= 1 }) else { throw fail("networks.hidden", "must be a non-empty list of widths ≥ 1, got \(n.hidden)") }
            guard !n.scoreHidden.isEmpty, n.scoreHidden.allSatisfy({ $0 >= 1 }) else { throw fail("networks.score_hidden", "must be a non-empty list of widths ≥ 1, got \(n.scoreHidden)") }
            guard n.scoreBatchSize >= 1, n.scoreBatchSize <= n.training.trainCount else {
                throw fail("networks.score_batch_size", "must be in 1...train (\(n.training.trainCount)), got \(n.scoreBatchSize)")
            }
            guard MLP.Activation(rawValue: n.activation) != nil else {
                throw fail("networks.activation", "unknown activation '\(n.activation)'; choose from \(MLP.Activation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard n.sigma > 0, n.sigma.isFinite else { throw fail("networks.sigma", "must be finite and > 0, got \(n.sigma)") }
            do { try n.training.validate() } catch { throw fail("networks", "\(error)") }
            guard n.langevinEpsilon > 0, n.langevinEpsilon.isFinite else { throw fail("networks.langevin_epsilon", "must be finite and > 0, got \(n.langevinEpsilon)") }
            guard n.langevinSteps >= 1 else { throw fail("networks.langevin_steps", "must be ≥ 1, got \(n.langevinSteps)") }
            guard n.chains >= 2 else { throw fail("networks.chains", "must be ≥ 2, got \(n.chains)") }
        }
        if let estimation {
            for m in methods { if let e = Estimator(rawValue: m), e.needsLogDensity || e.needsLayeredModel {
                throw fail("methods", "\(m) cannot train a score network (figure 6's networks); choose from \(Estimator.allCases.filter { !$0.needsLogDensity && !$0.needsLayeredModel }.map(\.rawValue).joined(separator: ", "))")
            } }
            guard Set(kernelEstimators).count == kernelEstimators.count, kernelEstimators.allSatisfy({ KernelMethod(rawValue: $0) != nil }) else {
                throw fail("kernel_estimators", "must be a list of distinct kernel score estimators from \(KernelMethod.allCases.map(\.rawValue).joined(separator: ", ")), got \(kernelEstimators)")
            }
            guard !kernelVariants.isEmpty, Set(kernelVariants).count == kernelVariants.count, kernelVariants.allSatisfy({ KernelVariant(rawValue: $0) != nil }) else {
                throw fail("kernel_variants", "must be a non-empty list of distinct settings variants from \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", ")), got \(kernelVariants)")
            }
            guard !sampleCounts.isEmpty, sampleCounts.allSatisfy({ $0 >= 2 }) else {
                throw fail("sample_counts", "must be a non-empty list of sample counts ≥ 2 (a kernel estimator needs two samples), got \(sampleCounts)")
            }
            guard sweepDims.isEmpty == sweepSampleCounts.isEmpty, sweepDims.allSatisfy({ $0 >= 1 }), sweepSampleCounts.allSatisfy({ $0 >= 2 }) else {
                throw fail("sweep", "needs dims (integers ≥ 1) and sample_counts (integers ≥ 2), both or neither; got dims \(sweepDims), sample_counts \(sweepSampleCounts)")
            }
            do { try estimation.validate() } catch let ScoreEstimationError.invalidSetting(key, reason) { throw fail("estimation.\(key)", reason) }
            // Every target at every D of the grid, as the cells will build it.
            for target in try targetNames {
                for d in Set(estimationPoints.map(\.dimension)).sorted() {
                    do { _ = try TargetSettings(target, parameters: targetParameters ?? TargetParameters()).distribution(dimension: d) } catch {
                        throw fail("dims", "\(target.rawValue) refuses D = \(d): \(error)")
                    }
                }
            }
        }
        if let samplerSettings {
            do { try samplerSettings.validate() } catch let SamplingError.invalidSetting(name, reason) { throw fail("sampling.\(name)", reason) }
        }
        guard Projection(rawValue: projection) != nil else {
            throw fail("objective.projection", "unknown projection '\(projection)'; choose from \(Projection.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard projections >= 1 else { throw fail("objective.projections", "must be ≥ 1, got \(projections)") }
        do { try dkefConfiguration(dimension: 1).validate() } catch { throw fail("model", "\(error)") }
        do { try protocolSettings.validate() } catch { throw fail("protocol", "\(error)") }
        guard model.inducingPoints <= protocolSettings.trainCount else {
            throw fail("model.inducing_points", "\(model.inducingPoints) inducing points need at least as many training points (protocol.train is \(protocolSettings.trainCount))")
        }
        guard timing.warmup >= 0, timing.iterations >= 1, timing.budgetSeconds > 0 else {
            throw fail("timing", "warmup must be ≥ 0, iterations ≥ 1 and budget_seconds > 0")
        }
    }
}

/// A config file or a command-line value no run can use; every case names the file and key, or
/// the flag, and what to change. A usage error: nothing was computed.
public enum ConfigError: Error, CustomStringConvertible, Equatable, UsageError {
    case unreadable(file: String, reason: String)
    case invalid(file: String, key: String, reason: String)
    /// A value given on the command line, e.g. `--dims 4,,8`.
    case flag(name: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): "config \(file): \(reason)"
        case let .invalid(file, key, reason): "config \(file): key '\(key)': \(reason)"
        case let .flag(name, reason): "\(name): \(reason)"
        }
    }
}

// MARK: Loading

extension ExperimentConfig {
    /// Reads `path`, applying its keys over the defaults and, when `quick`, its `quick:` block.
    /// `isDefault` says the path was not given by the user (the message then says where the
    /// command expects to run).
    public static func load(_ path: String, quick: Bool, isDefault: Bool = false) throws -> (config: ExperimentConfig, text: String) {
        guard FileManager.default.fileExists(atPath: path) else {
            let hint = isDefault
                ? "not found in \(FileManager.default.currentDirectoryPath); the default config is relative to the repository root, so run the command from there or name a config with --config"
                : "no such file (relative paths start at \(FileManager.default.currentDirectoryPath))"
            throw ConfigError.unreadable(file: path, reason: hint)
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError.unreadable(file: path, reason: "cannot read it as UTF-8 text (\(error.localizedDescription))")
        }
        return (try parse(text, file: path, quick: quick), text)
    }

    /// Parses a config text. The whole text is checked on every call, its `quick:` block
    /// included (applied over the file's keys only when `quick`), so a typo is found whichever way
    /// the file is used. An empty text, and `quick` on a text without a `quick:` block, are errors.
    public static func parse(_ text: String, file: String, quick: Bool) throws -> ExperimentConfig {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw ConfigError.unreadable(file: file, reason: "not valid YAML: \(error)") }
        guard let root else {
            throw ConfigError.unreadable(file: file, reason: "is empty (no keys); an experiment config names at least its grid, e.g. methods: [ssm] and dims: [10]")
        }
        guard let map = root as? [String: Any] else { throw ConfigError.invalid(file: file, key: "(top level)", reason: "must be a mapping of keys to values") }
        var config = ExperimentConfig()
        let reader = Reader(file: file)
        try reader.apply(map, to: &config, prefix: "", allowQuick: true)
        try config.validate(file: file)
        var quickConfig = config
        if let q = map["quick"] {
            guard let quickMap = q as? [String: Any] else { throw ConfigError.invalid(file: file, key: "quick", reason: "must be a mapping") }
            try reader.apply(quickMap, to: &quickConfig, prefix: "quick.", allowQuick: false)
            try quickConfig.validate(file: file + " (its quick: block)")
        } else if quick {
            throw ConfigError.invalid(file: file, key: "quick", reason: "--quick applies the config's quick: block, and this file has none; add one or run without --quick")
        }
        return quick ? quickConfig : config
    }

    /// Reads YAML values into the typed settings, naming the key on any mismatch.
    struct Reader {
        let file: String

        func fail(_ key: String, _ reason: String) -> ConfigError { .invalid(file: file, key: key, reason: reason) }

        func int(_ v: Any, _ key: String) throws -> Int {
            if let i = v as? Int { return i }
            throw fail(key, "expected an integer, got \(describe(v))")
        }
        func double(_ v: Any, _ key: String) throws -> Double {
            if let d = v as? Double {
                guard d.isFinite else { throw fail(key, "expected a finite number, got \(d)") }
                return d
            }
            if let i = v as? Int { return Double(i) }
            throw fail(key, "expected a number, got \(describe(v))")
        }
        func string(_ v: Any, _ key: String) throws -> String {
            if let s = v as? String { return s }
            throw fail(key, "expected a string, got \(describe(v))")
        }
        func list<T>(_ v: Any, _ key: String, _ element: (Any, String) throws -> T) throws -> [T] {
            guard let items = v as? [Any] else { throw fail(key, "expected a list, got \(describe(v))") }
            return try items.enumerated().map { try element($0.element, "\(key)[\($0.offset)]") }
        }
        func mapping(_ v: Any, _ key: String) throws -> [String: Any] {
            guard let m = v as? [String: Any] else { throw fail(key, "expected a mapping, got \(describe(v))") }
            return m
        }
        func describe(_ v: Any) -> String { "'\(v)' (\(type(of: v)))" }

        func apply(_ map: [String: Any], to c: inout ExperimentConfig, prefix: String, allowQuick: Bool) throws {
            for (key, value) in map.sorted(by: { $0.key < $1.key }) {
                let k = prefix + key
                switch key {
                case "methods": c.methods = try list(value, k, string)
                case "dims": c.dims = try list(value, k, int)
                case "seeds": c.seeds = try list(value, k, int)
                case "dsm_sigmas": c.dsmSigmas = try list(value, k, double)
                case "cp_noise": c.cpNoises = try list(value, k, string)
                case "targets": c.targets = try list(value, k, string)
                case "datasets":
                    c.datasets = try list(value, k, string)
                    c.networks = c.networks ?? NetworkSettings()
                case "models": c.models = try list(value, k, string)
                case "kernel_estimators":
                    c.kernelEstimators = try list(value, k, string)
                    c.estimation = c.estimation ?? ScoreEstimationSettings()
                case "kernel_variants": c.kernelVariants = try list(value, k, string)
                case "sample_counts":
                    c.sampleCounts = try list(value, k, int)
                    c.estimation = c.estimation ?? ScoreEstimationSettings()
                case "sweep":
                    for (sub, v) in try mapping(value, k) {
                        switch sub {
                        case "dims": c.sweepDims = try list(v, "\(k).\(sub)", int)
                        case "sample_counts": c.sweepSampleCounts = try list(v, "\(k).\(sub)", int)
                        default: throw unknown("\(k).\(sub)", ["dims", "sample_counts"])
                        }
                    }
                case "estimation":
                    var e = c.estimation ?? ScoreEstimationSettings()
                    try applyEstimation(try mapping(value, k), to: &e, prefix: k)
                    c.estimation = e
                case "networks":
                    var n = c.networks ?? NetworkSettings()
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        switch sub {
                        case "hidden": n.hidden = try list(v, kk, int)
                        case "score_hidden": n.scoreHidden = try list(v, kk, int)
                        case "score_batch_size": n.scoreBatchSize = try int(v, kk)
                        case "activation": n.activation = try string(v, kk)
                        case "sigma": n.sigma = try double(v, kk)
                        case "train": n.training.trainCount = try int(v, kk)
                        case "test": n.training.testCount = try int(v, kk)
                        case "batch_size": n.training.batchSize = try int(v, kk)
                        case "epochs": n.training.epochs = try int(v, kk)
                        case "learning_rate": n.training.learningRate = try double(v, kk)
                        case "clip_norm": n.training.clipNorm = try double(v, kk)
                        case "langevin_epsilon": n.langevinEpsilon = try double(v, kk)
                        case "langevin_steps": n.langevinSteps = try int(v, kk)
                        case "chains": n.chains = try int(v, kk)
                        default: throw unknown(kk, NetworkSettings.keys)
                        }
                    }
                    c.networks = n
                case "target":
                    var t = c.targetParameters ?? TargetParameters()
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        switch sub {
                        case "condition_number": t.conditionNumber = try double(v, kk)
                        case "components": t.components = try int(v, kk)
                        case "separation": t.separation = try double(v, kk)
                        case "scale": t.scale = try double(v, kk)
                        case "degrees_of_freedom": t.degreesOfFreedom = try double(v, kk)
                        case "seed": t.seed = try int(v, kk)
                        default: throw unknown(kk, ["condition_number", "components", "separation", "scale", "degrees_of_freedom", "seed"])
                        }
                    }
                    // All defaults is no block: the hash stays that of a config without one.
                    c.targetParameters = t == TargetParameters() ? nil : t
                case "sampling":
                    var t = c.samplerSettings ?? SamplerSettings()
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        switch sub {
                        case "step_size": t.stepSize = try double(v, kk)
                        case "steps": t.steps = try int(v, kk)
                        case "burn_in": t.burnIn = try int(v, kk)
                        case "thinning": t.thinning = try int(v, kk)
                        case "chains": t.chains = try int(v, kk)
                        default: throw unknown(kk, ["step_size", "steps", "burn_in", "thinning", "chains"])
                        }
                    }
                    c.samplerSettings = t
                case "objective":
                    for (sub, v) in try mapping(value, k) {
                        switch sub {
                        case "projection": c.projection = try string(v, "\(k).\(sub)")
                        case "projections": c.projections = try int(v, "\(k).\(sub)")
                        default: throw unknown("\(k).\(sub)", ["projection", "projections"])
                        }
                    }
                case "model":
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        switch sub {
                        case "inducing_points": c.model.inducingPoints = try int(v, kk)
                        case "hidden_width": c.model.hiddenWidth = try int(v, kk)
                        case "log_bandwidths": c.model.logBandwidths = try list(v, kk, double)
                        case "base_sigma": c.model.baseSigma = try double(v, kk)
                        case "log_lambda": c.model.logLambda = try double(v, kk)
                        default: throw unknown(kk, ["inducing_points", "hidden_width", "log_bandwidths", "base_sigma", "log_lambda"])
                        }
                    }
                case "protocol":
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        var p = c.protocolSettings
                        switch sub {
                        case "train": p.trainCount = try int(v, kk)
                        case "validation": p.validationCount = try int(v, kk)
                        case "test": p.testCount = try int(v, kk)
                        case "batch_size": p.batchSize = try int(v, kk)
                        case "learning_rate": p.learningRate = try double(v, kk)
                        case "clip_norm": p.clipNorm = try double(v, kk)
                        case "epochs": p.epochs = try int(v, kk)
                        case "validation_alpha_points": p.validationAlphaPoints = try int(v, kk)
                        case "alpha_batch": p.alphaBatch = try int(v, kk)
                        case "finalize_steps": p.finalizeSteps = try int(v, kk)
                        case "finalize_learning_rate": p.finalizeLearningRate = try double(v, kk)
                        case "finalize_batch": p.finalizeBatch = try int(v, kk)
                        case "importance_samples": p.importanceSamples = try int(v, kk)
                        case "importance_chunk": p.importanceChunk = try int(v, kk)
                        case "importance_sigma": p.importanceSigma = try double(v, kk)
                        default: throw unknown(kk, Self.protocolKeys)
                        }
                        c.protocolSettings = p
                    }
                case "timing":
                    for (sub, v) in try mapping(value, k) {
                        let kk = "\(k).\(sub)"
                        switch sub {
                        case "warmup": c.timing.warmup = try int(v, kk)
                        case "iterations": c.timing.iterations = try int(v, kk)
                        case "budget_seconds": c.timing.budgetSeconds = try double(v, kk)
                        default: throw unknown(kk, ["warmup", "iterations", "budget_seconds"])
                        }
                    }
                case "quick" where allowQuick: continue
                default:
                    throw unknown(k, ["methods", "dims", "seeds", "dsm_sigmas", "cp_noise", "targets", "target", "datasets", "models", "networks",
                                      "kernel_estimators", "kernel_variants", "sample_counts", "sweep", "estimation",
                                      "sampling", "objective", "model", "protocol", "timing"] + (allowQuick ? ["quick"] : []))
                }
            }
        }

        /// figure 6's `estimation:` block.
        func applyEstimation(_ map: [String: Any], to e: inout ScoreEstimationSettings, prefix k: String) throws {
            for (sub, v) in map.sorted(by: { $0.key < $1.key }) {
                let kk = "\(k).\(sub)"
                switch sub {
                case "test": e.testPoints = try int(v, kk)
                case "held_out": e.heldOutPoints = try int(v, kk)
                case "criterion_projections": e.criterionProjections = try int(v, kk)
                case "criterion_epsilon_factor": e.criterionEpsilonFactor = try double(v, kk)
                case "network":
                    for (key, w) in try mapping(v, kk) {
                        let kkk = "\(kk).\(key)"
                        switch key {
                        case "hidden": e.network.hidden = try list(w, kkk, int)
                        case "activation": e.network.activation = try string(w, kkk)
                        case "steps": e.network.steps = try int(w, kkk)
                        case "batch_size": e.network.batchSize = try int(w, kkk)
                        case "learning_rate": e.network.learningRate = try double(w, kkk)
                        case "clip_norm": e.network.clipNorm = try double(w, kkk)
                        case "projection": e.network.projection = try string(w, kkk)
                        case "projections": e.network.projections = try int(w, kkk)
                        case "dsm_sigma_factors": e.network.dsmSigmaFactors = try list(w, kkk, double)
                        case "fsm_epsilon_factor": e.network.fsmEpsilonFactor = try double(w, kkk)
                        default: throw unknown(kkk, ["hidden", "activation", "steps", "batch_size", "learning_rate", "clip_norm", "projection", "projections",
                                                     "dsm_sigma_factors", "fsm_epsilon_factor"])
                        }
                    }
                case "kernels":
                    for (key, w) in try mapping(v, kk) {
                        let kkk = "\(kk).\(key)"
                        switch key {
                        case "stein_eta": e.kernels.steinEta = try double(w, kkk)
                        case "ssge_threshold": e.kernels.ssgeThreshold = try double(w, kkk)
                        case "ssge_eta": e.kernels.ssgeEta = try double(w, kkk)
                        case "etas": e.kernels.etas = try list(w, kkk, double)
                        case "thresholds": e.kernels.thresholds = try list(w, kkk, double)
                        case "bandwidth_factors": e.kernels.bandwidthFactors = try list(w, kkk, double)
                        default: throw unknown(kkk, ["stein_eta", "ssge_threshold", "ssge_eta", "etas", "thresholds", "bandwidth_factors"])
                        }
                    }
                default: throw unknown(kk, ["test", "held_out", "criterion_projections", "criterion_epsilon_factor", "network", "kernels"])
                }
            }
        }

        static let protocolKeys = ["train", "validation", "test", "batch_size", "learning_rate", "clip_norm", "epochs",
                                   "validation_alpha_points", "alpha_batch", "finalize_steps", "finalize_learning_rate",
                                   "finalize_batch", "importance_samples", "importance_chunk", "importance_sigma"]

        func unknown(_ key: String, _ allowed: [String]) -> ConfigError {
            fail(key, "unknown key; allowed here: \(allowed.joined(separator: ", "))")
        }
    }
}
