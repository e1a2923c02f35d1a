import CHDF5

/// A group of an open results file: child groups, n-dimensional datasets of `Double` or `Int`
/// (stored as 64-bit), and attributes on the group or on a child.
public struct ResultsGroup {
    let file: ResultsFile
    /// The HDF5 path, "/" for the root.
    public let path: String

    var filePath: String { file.path }

    func childPath(_ name: String) -> String { path == "/" ? "/\(name)" : "\(path)/\(name)" }

    // MARK: Structure

    /// Whether a child (group or dataset) called `name` exists.
    public func contains(_ name: String) -> Bool {
        silenceHDF5Errors()
        return H5Lexists(file.id, childPath(name), ssm_h5p_default()) > 0
    }

    /// Creates the child group `name` (and returns it); returns it as it is if it exists.
    @discardableResult
    public func createGroup(_ name: String) throws -> ResultsGroup {
        try checkName(name)
        if contains(name) { return try group(name) }
        let id = H5Gcreate2(file.id, childPath(name), ssm_h5p_default(), ssm_h5p_default(), ssm_h5p_default())
        guard id >= 0 else { throw failure("create group", childPath(name)) }
        H5Gclose(id)
        return ResultsGroup(file: file, path: childPath(name))
    }

    /// The existing child group `name`.
    public func group(_ name: String) throws -> ResultsGroup {
        guard kind(of: name) == .group else {
            throw contains(name) ? ResultsStoreError.wrongType(path: filePath, object: childPath(name), expected: "a group")
                                 : ResultsStoreError.missingObject(path: filePath, object: "group \(childPath(name))")
        }
        return ResultsGroup(file: file, path: childPath(name))
    }

    /// Removes the child `name` (a group with everything in it, or a dataset) if present.
    public func remove(_ name: String) throws {
        guard contains(name) else { return }
        guard H5Ldelete(file.id, childPath(name), ssm_h5p_default()) >= 0 else { throw failure("delete", childPath(name)) }
    }

    /// Copies the child `name` of `source` (a group with everything in it, or a dataset, with
    /// their attributes; `source` may be in another open file) to the child `name` of this group,
    /// which must not exist yet.
    public func copy(_ name: String, from source: ResultsGroup) throws {
        try checkName(name)
        guard source.contains(name) else { throw ResultsStoreError.missingObject(path: source.filePath, object: source.childPath(name)) }
        guard !contains(name) else { throw failure("copy (the destination exists)", childPath(name)) }
        guard H5Ocopy(source.file.id, source.childPath(name), file.id, childPath(name), ssm_h5p_default(), ssm_h5p_default()) >= 0 else {
            throw failure("copy from \(source.filePath)", childPath(name))
        }
    }

    public enum ChildKind: Sendable { case group, dataset, other }

    /// Whether the child `name` is a group or a dataset (nil when absent).
    public func kind(of name: String) -> ChildKind? {
        guard contains(name) else { return nil }
        let object = H5Oopen(file.id, childPath(name), ssm_h5p_default())
        guard object >= 0 else { return nil }
        defer { H5Oclose(object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// The names of the children, in name order.
    public func childNames() throws -> [String] {
        let group = H5Gopen2(file.id, path, ssm_h5p_default())
        guard group >= 0 else { throw failure("open group", path) }
        defer { H5Gclose(group) }
        var info = H5G_info_t()
        guard H5Gget_info(group, &info) >= 0 else { throw failure("list", path) }
        return try (0..<info.nlinks).map { index in
            let length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, ssm_h5p_default())
            guard length >= 0 else { throw failure("list", path) }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, Int(length) + 1, ssm_h5p_default())
            return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Datasets

    /// Writes `values` (row-major) as the dataset `name` of the given shape (`[]` for a scalar),
    /// replacing an existing one.
    public func write(_ name: String, doubles values: [Double], shape: [Int]? = nil) throws {
        let shape = shape ?? [values.count]
        try writeDataset(name, shape: shape, count: values.count, type: ssm_h5t_native_double()) { dataset in
            values.withUnsafeBytes { H5Dwrite(dataset, ssm_h5t_native_double(), ssm_h5s_all(), ssm_h5s_all(), ssm_h5p_default(), $0.baseAddress) }
        }
    }

    /// Writes `values` as a 64-bit integer dataset.
    public func write(_ name: String, ints values: [Int], shape: [Int]? = nil) throws {
        let shape = shape ?? [values.count]
        let wide = values.map { Int64($0) }
        try writeDataset(name, shape: shape, count: values.count, type: ssm_h5t_native_int64()) { dataset in
            wide.withUnsafeBytes { H5Dwrite(dataset, ssm_h5t_native_int64(), ssm_h5s_all(), ssm_h5s_all(), ssm_h5p_default(), $0.baseAddress) }
        }
    }

    /// Reads the dataset `name` as `Double` (integers are converted by HDF5).
    public func readDoubles(_ name: String) throws -> (shape: [Int], values: [Double]) {
        try readDataset(name, expecting: [H5T_FLOAT, H5T_INTEGER], what: "a numeric dataset") { dataset, count in
            var values = [Double](repeating: 0, count: count)
            let status = values.withUnsafeMutableBytes {
                H5Dread(dataset, ssm_h5t_native_double(), ssm_h5s_all(), ssm_h5s_all(), ssm_h5p_default(), $0.baseAddress)
            }
            return (status, values)
        }
    }

    /// Reads the integer dataset `name`.
    public func readInts(_ name: String) throws -> (shape: [Int], values: [Int]) {
        let (shape, wide) = try readDataset(name, expecting: [H5T_INTEGER], what: "an integer dataset") { dataset, count in
            var values = [Int64](repeating: 0, count: count)
            let status = values.withUnsafeMutableBytes {
                H5Dread(dataset, ssm_h5t_native_int64(), ssm_h5s_all(), ssm_h5s_all(), ssm_h5p_default(), $0.baseAddress)
            }
            return (status, values)
        }
        return (shape, wide.map { Int($0) })
    }

    private func writeDataset(_ name: String, shape: [Int], count: Int, type: hid_t,
                              _ write: (hid_t) -> herr_t) throws {
        try checkName(name)
        guard shape.reduce(1, *) == count, shape.allSatisfy({ $0 >= 0 }) else {
            throw ResultsStoreError.shapeMismatch(path: filePath, object: childPath(name), count: count, shape: shape)
        }
        try remove(name)
        let space = try dataspace(shape)
        defer { H5Sclose(space) }
        let dataset = H5Dcreate2(file.id, childPath(name), type, space, ssm_h5p_default(), ssm_h5p_default(), ssm_h5p_default())
        guard dataset >= 0 else { throw failure("create dataset", childPath(name)) }
        defer { H5Dclose(dataset) }
        if count > 0 { guard write(dataset) >= 0 else { throw failure("write", childPath(name)) } }
    }

    private func readDataset<T>(_ name: String, expecting classes: [H5T_class_t], what: String,
                                _ read: (hid_t, Int) -> (herr_t, [T])) throws -> (shape: [Int], values: [T]) {
        guard kind(of: name) == .dataset else {
            throw contains(name) ? ResultsStoreError.wrongType(path: filePath, object: childPath(name), expected: what)
                                 : ResultsStoreError.missingObject(path: filePath, object: "dataset \(childPath(name))")
        }
        let dataset = H5Dopen2(file.id, childPath(name), ssm_h5p_default())
        guard dataset >= 0 else { throw failure("open dataset", childPath(name)) }
        defer { H5Dclose(dataset) }
        let type = H5Dget_type(dataset)
        defer { H5Tclose(type) }
        guard classes.contains(H5Tget_class(type)) else {
            throw ResultsStoreError.wrongType(path: filePath, object: childPath(name), expected: what)
        }
        let space = H5Dget_space(dataset)
        defer { H5Sclose(space) }
        let shape = try extents(of: space, childPath(name))
        let count = shape.reduce(1, *)
        if count == 0 { return (shape, []) }
        let (status, values) = read(dataset, count)
        guard status >= 0 else { throw failure("read", childPath(name)) }
        return (shape, values)
    }

    // MARK: Attributes

    /// Sets the attribute `name` on this group, or on its child `child`, replacing an old value.
    public func setAttribute(_ name: String, _ value: AttributeValue, on child: String? = nil) throws {
        let object = try openObject(child)
        defer { H5Oclose(object) }
        if H5Aexists(object, name) > 0 { H5Adelete(object, name) }
        let target = child.map(childPath) ?? path
        func create(_ type: hid_t, _ space: hid_t, _ write: (hid_t) -> herr_t) throws {
            defer { H5Sclose(space) }
            let attribute = H5Acreate2(object, name, type, space, ssm_h5p_default(), ssm_h5p_default())
            guard attribute >= 0 else { throw failure("create attribute \(name) on", target) }
            defer { H5Aclose(attribute) }
            guard write(attribute) >= 0 else { throw failure("write attribute \(name) on", target) }
        }
        switch value {
        case let .string(text):
            let type = H5Tcopy(ssm_h5t_c_s1())
            defer { H5Tclose(type) }
            H5Tset_size(type, ssm_h5t_variable())
            H5Tset_cset(type, H5T_CSET_UTF8)
            try create(type, H5Screate(H5S_SCALAR)) { attribute in
                text.withCString { pointer in
                    var pointers: [UnsafePointer<CChar>?] = [pointer]
                    return H5Awrite(attribute, type, &pointers)
                }
            }
        case let .double(x):
            try create(ssm_h5t_native_double(), H5Screate(H5S_SCALAR)) { a in
                withUnsafeBytes(of: x) { H5Awrite(a, ssm_h5t_native_double(), $0.baseAddress) }
            }
        case let .int(x):
            try create(ssm_h5t_native_int64(), H5Screate(H5S_SCALAR)) { a in
                withUnsafeBytes(of: Int64(x)) { H5Awrite(a, ssm_h5t_native_int64(), $0.baseAddress) }
            }
        case let .doubles(xs):
            try create(ssm_h5t_native_double(), try dataspace([xs.count])) { a in
                xs.withUnsafeBytes { H5Awrite(a, ssm_h5t_native_double(), $0.baseAddress) }
            }
        case let .ints(xs):
            let wide = xs.map { Int64($0) }
            try create(ssm_h5t_native_int64(), try dataspace([xs.count])) { a in
                wide.withUnsafeBytes { H5Awrite(a, ssm_h5t_native_int64(), $0.baseAddress) }
            }
        }
    }

    /// The attribute `name` of this group, or of its child `child`.
    public func attribute(_ name: String, on child: String? = nil) throws -> AttributeValue {
        let object = try openObject(child)
        defer { H5Oclose(object) }
        let target = child.map(childPath) ?? path
        guard H5Aexists(object, name) > 0 else {
            throw ResultsStoreError.missingObject(path: filePath, object: "attribute \(name) on \(target)")
        }
        let attribute = H5Aopen(object, name, ssm_h5p_default())
        guard attribute >= 0 else { throw failure("open attribute \(name) on", target) }
        defer { H5Aclose(attribute) }
        let type = H5Aget_type(attribute)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        let shape = try extents(of: space, target)
        let count = shape.reduce(1, *)
        switch H5Tget_class(type) {
        case H5T_STRING:
            if H5Tis_variable_str(type) > 0 {
                var pointer: UnsafeMutablePointer<CChar>? = nil
                guard H5Aread(attribute, type, &pointer) >= 0 else { throw failure("read attribute \(name) on", target) }
                defer { H5free_memory(pointer) }
                return .string(pointer.map { String(cString: $0) } ?? "")
            }
            let size = H5Tget_size(type)
            var bytes = [UInt8](repeating: 0, count: size)
            guard H5Aread(attribute, type, &bytes) >= 0 else { throw failure("read attribute \(name) on", target) }
            return .string(String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self))
        case H5T_FLOAT:
            var xs = [Double](repeating: 0, count: count)
            guard xs.withUnsafeMutableBytes({ H5Aread(attribute, ssm_h5t_native_double(), $0.baseAddress) }) >= 0 else {
                throw failure("read attribute \(name) on", target)
            }
            return shape.isEmpty ? .double(xs[0]) : .doubles(xs)
        case H5T_INTEGER:
            var xs = [Int64](repeating: 0, count: count)
            guard xs.withUnsafeMutableBytes({ H5Aread(attribute, ssm_h5t_native_int64(), $0.baseAddress) }) >= 0 else {
                throw failure("read attribute \(name) on", target)
            }
            return shape.isEmpty ? .int(Int(xs[0])) : .ints(xs.map { Int($0) })
        default:
            throw ResultsStoreError.wrongType(path: filePath, object: "attribute \(name) on \(target)", expected: "a string or numbers")
        }
    }

    /// The attribute names of this group, or of its child `child`.
    public func attributeNames(on child: String? = nil) throws -> [String] {
        let object = try openObject(child)
        defer { H5Oclose(object) }
        let count = H5Aget_num_attrs(object)
        return (0..<max(count, 0)).compactMap { index in
            let length = H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), nil, 0, ssm_h5p_default())
            guard length >= 0 else { return nil }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            H5Aget_name_by_idx(object, ".", H5_INDEX_NAME, H5_ITER_INC, hsize_t(index), &buffer, Int(length) + 1, ssm_h5p_default())
            return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Helpers

    private func openObject(_ child: String?) throws -> hid_t {
        let target = child.map(childPath) ?? path
        if let child, !contains(child) { throw ResultsStoreError.missingObject(path: filePath, object: target) }
        let object = H5Oopen(file.id, target, ssm_h5p_default())
        guard object >= 0 else { throw failure("open", target) }
        return object
    }

    private func dataspace(_ shape: [Int]) throws -> hid_t {
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(Int32(shape.count), shape.map { hsize_t($0) }, nil)
        guard space >= 0 else { throw failure("create dataspace \(shape) for", path) }
        return space
    }

    private func extents(of space: hid_t, _ object: String) throws -> [Int] {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw failure("read shape of", object) }
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        return dims.map { Int($0) }
    }

    private func checkName(_ name: String) throws {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw ResultsStoreError.operationFailed(path: filePath, operation: "name check (names must be non-empty, without '/')", object: "'\(name)'")
        }
    }

    private func failure(_ operation: String, _ object: String) -> ResultsStoreError {
        .operationFailed(path: filePath, operation: operation, object: object)
    }
}
