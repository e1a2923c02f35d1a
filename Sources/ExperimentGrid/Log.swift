import Foundation

/// A progress or status line on standard error (standard output is for tables).
public func log(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }
