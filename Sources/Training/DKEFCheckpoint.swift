import Autodiff
import DKEFModel
import ResultsStore

/// DKEF parameters (and, once finalised, α and its system) in an HDF5 group, bit-exact:
///
///     <group>/                      attrs: dimension, inducing_points, hidden_width,
///                                          initial_log_bandwidths, base_sigma, initial_log_lambda
///     <group>/parameters/<name>     one dataset per parameter, named as `DKEF.parameterNames`
///     <group>/alpha                 [M]            (optional)
///     <group>/gram_sum, linear_sum  [M, M], [M]    (optional; attr system_count)
public enum DKEFCheckpoint {
    public static func write(_ model: DKEF, alpha: Tensor? = nil, system: QuadraticSystem? = nil, to group: ResultsGroup) throws {
        let c = model.configuration
        try group.setAttribute("dimension", .int(c.dimension))
        try group.setAttribute("inducing_points", .int(c.inducingPoints))
        try group.setAttribute("hidden_width", .int(c.hiddenWidth))
        try group.setAttribute("initial_log_bandwidths", .doubles(c.initialLogBandwidths))
        try group.setAttribute("base_sigma", .double(c.baseSigma))
        try group.setAttribute("initial_log_lambda", .double(c.initialLogLambda))
        let parameters = try group.createGroup("parameters")
        for (name, tensor) in zip(DKEF.parameterNames(c), model.parameters) {
            try parameters.write(name, doubles: tensor.scalars, shape: tensor.shape)
        }
        if let alpha { try group.write("alpha", doubles: alpha.scalars, shape: alpha.shape) }
        if let system {
            try group.write("gram_sum", doubles: system.gramSum.scalars, shape: system.gramSum.shape)
            try group.write("linear_sum", doubles: system.linearSum.scalars, shape: system.linearSum.shape)
            try group.setAttribute("system_count", .int(system.count))
        }
    }

    public struct Contents {
        public var model: DKEF
        public var alpha: Tensor?
        public var system: QuadraticSystem?
    }

    public static func read(from group: ResultsGroup) throws -> Contents {
        func int(_ name: String) throws -> Int {
            guard let v = try group.attribute(name).intValue else { throw DKEFError.badParameters("attribute \(name) is not an integer") }
            return v
        }
        func double(_ name: String) throws -> Double {
            guard let v = try group.attribute(name).doubleValue else { throw DKEFError.badParameters("attribute \(name) is not a number") }
            return v
        }
        guard case let .doubles(bandwidths) = try group.attribute("initial_log_bandwidths") else {
            throw DKEFError.badParameters("attribute initial_log_bandwidths is not a list of numbers")
        }
        let configuration = DKEFConfiguration(dimension: try int("dimension"), inducingPoints: try int("inducing_points"),
                                              hiddenWidth: try int("hidden_width"), initialLogBandwidths: bandwidths,
                                              baseSigma: try double("base_sigma"), initialLogLambda: try double("initial_log_lambda"))
        let parameters = try group.group("parameters")
        let tensors = try DKEF.parameterNames(configuration).map { name in
            let (shape, values) = try parameters.readDoubles(name)
            return Tensor(shape: shape, scalars: values)
        }
        let model = try DKEF(configuration, parameters: tensors)
        var alpha: Tensor? = nil, system: QuadraticSystem? = nil
        if group.contains("alpha") {
            let (shape, values) = try group.readDoubles("alpha")
            alpha = Tensor(shape: shape, scalars: values)
        }
        if group.contains("gram_sum") {
            let g = try group.readDoubles("gram_sum"), b = try group.readDoubles("linear_sum")
            system = QuadraticSystem(gramSum: Tensor(shape: g.shape, scalars: g.values), linearSum: Tensor(shape: b.shape, scalars: b.values),
                                     count: try int("system_count"))
        }
        return Contents(model: model, alpha: alpha, system: system)
    }
}
