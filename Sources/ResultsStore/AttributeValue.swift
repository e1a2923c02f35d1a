/// The value of an HDF5 attribute: a UTF-8 string (stored variable-length), or numbers.
public enum AttributeValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case double(Double)
    case int(Int)
    case doubles([Double])
    case ints([Int])

    public var description: String {
        switch self {
        case let .string(s): s
        case let .double(x): "\(x)"
        case let .int(x): "\(x)"
        case let .doubles(xs): "\(xs)"
        case let .ints(xs): "\(xs)"
        }
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var doubleValue: Double? {
        switch self { case let .double(x): x; case let .int(x): Double(x); default: nil }
    }
    public var intValue: Int? { if case let .int(x) = self { x } else { nil } }
}
