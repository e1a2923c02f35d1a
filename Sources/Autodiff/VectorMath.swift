import CVectorMath

/// exp, log1p and softplus on whole buffers through glibc's vector math library (libmvec), a few
/// ulp from the scalar libm that every differentiable op uses (glibc documents at most 4 ulp).
/// Constants only (no graph), for evaluations whose values do not feed back into training: log Z
/// by importance sampling and test log-likelihoods, where ~10⁹ exponentials dominate the time.
public enum VectorMath {
    /// The vector width in bits used on this CPU (512, 256 or 128).
    public static var width: Int { Int(ssm_vector_width()) }

    /// eˣ elementwise, in place.
    public static func exp(_ values: UnsafeMutableBufferPointer<Double>) {
        guard let p = values.baseAddress else { return }
        ssm_vector_exp(p, p, values.count)
    }

    /// ln(1 + x) elementwise, in place.
    public static func log1p(_ values: UnsafeMutableBufferPointer<Double>) {
        guard let p = values.baseAddress else { return }
        ssm_vector_log1p(p, p, values.count)
    }

    /// eˣ of a tensor (a constant).
    public static func exp(_ x: Tensor) -> Tensor {
        var values = x.scalars
        values.withUnsafeMutableBufferPointer { exp($0) }
        return Tensor(shape: x.shape, scalars: values)
    }

    /// softplus(x) = max(x, 0) + ln(1 + e^{−|x|}) of a tensor (a constant): the expression of
    /// `Tensor.softplus()` with the vector exp and log1p.
    public static func softplus(_ x: Tensor) -> Tensor {
        var values = x.scalars.map { -Swift.abs($0) }
        values.withUnsafeMutableBufferPointer { exp($0); log1p($0) }
        x.scalars.withUnsafeBufferPointer { x in
            for i in values.indices { values[i] = Swift.max(x[i], 0) + values[i] }
        }
        return Tensor(shape: x.shape, scalars: values)
    }
}
