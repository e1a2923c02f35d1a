import GridExecution
import ExperimentGrid
import ArgumentParser
import Foundation
import ResultsStore

/// The paragraph every grid executable's --help ends with.
public let gridCommandChecks = """
    Before computing anything a run checks the config (the whole file, its quick: block \
    included), the flags, the memory the largest cell needs and the results file (its folder \
    must take a new file; an existing file must hold this experiment under the same config hash, \
    or be replaced with --fresh, which keeps it as <out>.<time>.bak). Exit status: 0 on success, \
    64 for a usage error (nothing was computed or written), 1 for a failure during the run \
    (every cell finished before it is kept; rerun to resume).
    """

extension ParsableCommand {
    /// Parses the command line and runs the command. Exit status: 0 on success, 64 for a usage
    /// error (a bad flag, config or output file: nothing was computed), 1 for a failure during
    /// the run (results finished before it are kept).
    public static func mainWithExitCodes() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as any UsageError {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

/// The paragraph the grid executables that run on clusters (figure1, table1, figure3, figure4) add.
public let clusterCommandHelp = """
    On a cluster (docs/cluster.md): --list-cells prints the cells still missing; \
    --cell ID computes one into results/<name>.cells/ID.h5 and nothing else; `inspect merge \
    results/<name>.cells --into results/<name>.h5` folds those files in (all or nothing; run it \
    again at will). --submit slurm does all three: it writes results/<name>.slurm/array.sbatch \
    (one task per missing cell, one core, OPENBLAS_NUM_THREADS=1) and merge.sbatch, submits the \
    array, then the merge with --dependency=afterany, and prints the job ids; rerun it after \
    failed or cancelled tasks to submit only the cells still missing.
    """

