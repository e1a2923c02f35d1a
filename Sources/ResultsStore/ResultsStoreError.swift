/// What can go wrong reading or writing a results file; each case names the file.
public enum ResultsStoreError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case notHDF5(path: String)
    case cannotCreate(path: String, reason: String)
    case cannotOpen(path: String, reason: String)
    case missingObject(path: String, object: String)
    case wrongType(path: String, object: String, expected: String)
    case shapeMismatch(path: String, object: String, count: Int, shape: [Int])
    case operationFailed(path: String, operation: String, object: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): "results file \(path) does not exist"
        case let .notHDF5(path): "results file \(path) is not a readable HDF5 file (corrupt or of another format)"
        case let .cannotCreate(path, reason): "cannot create results file \(path): \(reason)"
        case let .cannotOpen(path, reason): "cannot open results file \(path): \(reason)"
        case let .missingObject(path, object): "results file \(path) has no \(object)"
        case let .wrongType(path, object, expected): "\(object) in results file \(path) is not \(expected)"
        case let .shapeMismatch(path, object, count, shape): "\(object) in \(path): \(count) values do not fill shape \(shape)"
        case let .operationFailed(path, operation, object): "HDF5 \(operation) failed for \(object) in \(path)"
        }
    }
}
