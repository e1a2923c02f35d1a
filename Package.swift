// swift-tools-version:6.0
// ssm-bench: a Swift reproduction of Song, Garg, Shi & Ermon, "Sliced Score Matching" (UAI 2019).
//
// Targets follow the data flow; each imports only earlier ones:
//   C bindings (COpenBLAS, CGSL, CHDF5) and CVectorMath (libmvec's exp and log1p on arrays)
//   Autodiff        — Tensor and higher-order reverse-mode differentiation (OpenBLAS, LAPACKE)
//   GSLNumerics     — seeded random streams and exact reference densities and scores (GSL)
//   ResultsStore    — atomic HDF5 result files (HDF5)
//   Objectives      — the score-matching losses (SM, SSM, SSM-VR, DSM), trace estimators, Fisher divergence
//   DKEFModel       — the deep kernel exponential family, its closed-form α, CP and Approx BP passes
//   Sampling        — Langevin and MALA for any log density; KSD and MMD of samples
//   KernelEstimators — nonparametric score estimators from samples: Stein and spectral (SSGE), RBF kernel
//   NeuralModels    — energy networks, score networks and noise-conditional score networks (MLPs)
//   Training        — Adam, clipping, the HighDim DKEF protocol, HDF5 checkpoints
//   ScoreEstimation — figure 6's estimators fitted to samples: kernel estimators (the authors' settings or tuned on
//                     held-out samples) and score networks, the held-out criterion that tunes them
//   ExperimentGrid  — a grid's config (YAML) and its cells, usage errors, statistics over seeds
//   GridExecution   — running cells: the resumable results file, claims, local workers, per-cell
//                     files and their merge, SLURM submission, provenance, checks before compute
//   CellExperiments — what one cell computes: the protocol, figure 2's timing, sampling, CP's noise
//   Reports         — the Markdown tables of every results file (inspect report)
//   PaperClaims     — the paper's claims as thresholds on the quick grids (make check)
//   ExperimentCommands — the options and exit codes every experiment executable shares
//   figure1-6, table1, cp-noise, sample, inspect — one executable per result, a sampler of checkpoints, a reader of results files
//   bench-core      — the autodiff core microbenchmark
import PackageDescription

// Every target of this package builds without warnings (in CI's fresh build too).
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]

let package = Package(
    name: "ssm-bench",
    products: [
        .library(name: "Autodiff", targets: ["Autodiff"]),
        .library(name: "GSLNumerics", targets: ["GSLNumerics"]),
        .library(name: "Sampling", targets: ["Sampling"]),
        .library(name: "ResultsStore", targets: ["ResultsStore"]),
        .library(name: "Objectives", targets: ["Objectives"]),
        .library(name: "DKEFModel", targets: ["DKEFModel"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "KernelEstimators", targets: ["KernelEstimators"]),
        .executable(name: "bench-core", targets: ["BenchCore"]),
        .executable(name: "train-dkef", targets: ["TrainDKEF"]),
        .executable(name: "train-network", targets: ["TrainNetwork"]),
        .executable(name: "figure1", targets: ["figure1"]),
        .executable(name: "figure2", targets: ["figure2"]),
        .executable(name: "figure3", targets: ["figure3"]),
        .executable(name: "figure4", targets: ["figure4"]),
        .executable(name: "figure5", targets: ["figure5"]),
        .executable(name: "figure6", targets: ["figure6"]),
        .executable(name: "sample", targets: ["Sample"]),
        .executable(name: "table1", targets: ["table1"]),
        .executable(name: "inspect", targets: ["inspect"]),
        .executable(name: "bench", targets: ["bench"]),
        .executable(name: "cp-noise", targets: ["CPNoise"]),
    ],
    dependencies: [
        // Pinned exactly: a benchmark whose numbers are meant to be reproduced builds the same
        // code for everyone. Package.resolved cannot pin them (it stays out of git; package mirrors
        // carry other commit ids). Provenance.dependencies records these versions; a test keeps
        // the two in step.
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]),
        // No pkgConfig: gsl.pc would add -lgslcblas; GSL's CBLAS calls bind to OpenBLAS instead.
        .systemLibrary(name: "CGSL", path: "Sources/CGSL", providers: [.apt(["libgsl-dev"])]),
        // Header-only: process-level allocator settings and worker processes (fork/exec, prctl).
        .systemLibrary(name: "CRuntime", path: "Sources/CRuntime"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),

        // glibc's vector exp and log1p (libmvec), dispatched on the CPU at run time.
        .target(name: "CVectorMath", path: "Sources/CVectorMath", linkerSettings: [.linkedLibrary("mvec"), .linkedLibrary("m")]),

        .target(name: "Autodiff", dependencies: ["COpenBLAS", "CVectorMath"], swiftSettings: strict),
        .target(name: "GSLNumerics", dependencies: ["CGSL", "Autodiff"], swiftSettings: strict),
        .target(name: "ResultsStore", dependencies: ["CHDF5"], swiftSettings: strict),
        .target(name: "Objectives", dependencies: ["Autodiff", "GSLNumerics"], swiftSettings: strict),
        .target(name: "DKEFModel", dependencies: ["Autodiff", "COpenBLAS", "GSLNumerics", "Objectives"], swiftSettings: strict),
        .target(name: "Sampling", dependencies: ["Autodiff", "GSLNumerics", "Objectives"], swiftSettings: strict),
        .target(name: "KernelEstimators", dependencies: ["Autodiff", "COpenBLAS"], swiftSettings: strict),
        .target(name: "ScoreEstimation", dependencies: ["Autodiff", "GSLNumerics", "KernelEstimators", "NeuralModels", "Objectives", "Training"], swiftSettings: strict),
        .target(name: "NeuralModels", dependencies: ["Autodiff", "GSLNumerics", "Objectives"], swiftSettings: strict),
        .target(name: "Training", dependencies: ["Autodiff", "CVectorMath", "GSLNumerics", "Objectives", "DKEFModel", "NeuralModels", "ResultsStore"], swiftSettings: strict),
        // The experiments, one job per module:
        .target(name: "ExperimentGrid", dependencies: ["DKEFModel", "GSLNumerics", "NeuralModels", "Objectives", "Sampling", "ScoreEstimation", "Training", "Yams"], swiftSettings: strict),
        .target(name: "GridExecution", dependencies: ["ExperimentGrid", "Autodiff", "COpenBLAS", "CRuntime", "DKEFModel", "GSLNumerics", "Objectives", "ResultsStore"],
                swiftSettings: strict),
        .target(name: "CellExperiments",
                dependencies: ["ExperimentGrid", "GridExecution", "Autodiff", "DKEFModel", "GSLNumerics", "NeuralModels", "Objectives", "ResultsStore", "Sampling", "Training", "ScoreEstimation", "KernelEstimators"],
                swiftSettings: strict),
        .target(name: "Reports", dependencies: ["ExperimentGrid", "GridExecution", "CellExperiments", "DKEFModel", "GSLNumerics", "Objectives", "ResultsStore", "ScoreEstimation"], swiftSettings: strict),
        .target(name: "PaperClaims", dependencies: ["ExperimentGrid", "GridExecution", "Reports", "ResultsStore", "Yams"], swiftSettings: strict),
        .target(name: "ExperimentCommands",
                dependencies: ["ExperimentGrid", "GridExecution", "Reports", "Autodiff", "GSLNumerics", "Objectives", "ResultsStore",
                               .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure1", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure2", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure3", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure4", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "Sampling", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure5", dependencies: ["Autodiff", "CellExperiments", "ExperimentCommands", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "figure6", dependencies: ["Autodiff", "CellExperiments", "ExperimentCommands", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "table1", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "bench",
                          dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "Training", "DKEFModel", "Objectives", "GSLNumerics", "ResultsStore", "Autodiff", "COpenBLAS", "CRuntime",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "inspect", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "ResultsStore", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: strict),
        .executableTarget(name: "BenchCore",
                          dependencies: ["KernelEstimators", "Autodiff", "GSLNumerics", "Objectives", "NeuralModels", "Training", "ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "COpenBLAS", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/bench-core", swiftSettings: strict),

        .executableTarget(name: "CPNoise",
                          dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "Training", "DKEFModel", "Objectives", "GSLNumerics", "ResultsStore", "Autodiff", "CRuntime",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/cp-noise", swiftSettings: strict),

        .executableTarget(name: "Sample",
                          dependencies: ["Autodiff", "DKEFModel", "GSLNumerics", "Objectives", "ResultsStore", "Sampling", "Training", "ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/sample", swiftSettings: strict),

        .executableTarget(name: "TrainDKEF",
                          dependencies: ["Autodiff", "DKEFModel", "GSLNumerics", "Objectives", "ResultsStore", "Training", "ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "CRuntime",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/train-dkef", swiftSettings: strict),

        .executableTarget(name: "TrainNetwork",
                          dependencies: ["Autodiff", "CellExperiments", "ExperimentCommands", "ExperimentGrid", "GridExecution", "GSLNumerics", "NeuralModels", "Objectives",
                                         "ResultsStore", "CRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/train-network", swiftSettings: strict),

        .testTarget(name: "AutodiffTests", dependencies: ["Autodiff"], swiftSettings: strict),
        .testTarget(name: "GSLNumericsTests", dependencies: ["GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "ResultsStoreTests", dependencies: ["ResultsStore"], swiftSettings: strict),
        .testTarget(name: "DKEFModelTests", dependencies: ["DKEFModel", "Objectives", "Training", "GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "DKEFModel", "Objectives", "ResultsStore", "GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "ExperimentsTests", dependencies: ["ExperimentCommands", "ExperimentGrid", "GridExecution", "CellExperiments", "Reports", "PaperClaims", "GSLNumerics", "Sampling", "Objectives", "ResultsStore", "Training", "DKEFModel"], swiftSettings: strict),
        .testTarget(name: "NeuralModelsTests", dependencies: ["NeuralModels", "Objectives", "GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "KernelEstimatorsTests", dependencies: ["KernelEstimators", "GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "ScoreEstimationTests", dependencies: ["ScoreEstimation", "KernelEstimators", "NeuralModels", "Objectives", "GSLNumerics", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling", "GSLNumerics", "Objectives", "Autodiff"], swiftSettings: strict),
        .testTarget(name: "ObjectivesTests", dependencies: ["Objectives", "Training", "GSLNumerics", "Autodiff"], swiftSettings: strict),
    ]
)
