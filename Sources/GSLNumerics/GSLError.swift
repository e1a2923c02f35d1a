import CGSL

/// A failed GSL call, or an argument GSL would reject, as a Swift error.
public enum GSLError: Error, CustomStringConvertible, Equatable {
    /// A GSL function returned a nonzero status.
    case failed(function: String, status: Int32, reason: String)
    /// A covariance matrix that has no Cholesky factor.
    case notPositiveDefinite(what: String)
    /// An argument of the wrong size or value.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .failed(function, status, reason): "GSL \(function) failed with status \(status): \(reason)"
        case let .notPositiveDefinite(what): "\(what) is not symmetric positive definite (Cholesky failed)"
        case let .invalidArgument(message): message
        }
    }
}

/// GSL's default handler aborts the process; with it off, calls return their status instead.
private let errorHandlerOff: Void = { _ = gsl_set_error_handler_off() }()

@inline(__always)
func ensureGSLErrorsReturn() { _ = errorHandlerOff }

/// Throws `GSLError.failed` for a nonzero status.
func check(_ status: Int32, _ function: String) throws {
    guard status != 0 else { return }
    throw GSLError.failed(function: function, status: status, reason: String(cString: gsl_strerror(status)))
}

/// The GSL library version, e.g. "2.7.1".
public var gslVersion: String { String(cString: ssm_gsl_version()) }
