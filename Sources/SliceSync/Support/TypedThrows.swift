/// `withUnsafeBytes` for typed throws: the standard library's version only rethrows `any Error`.
@inline(__always)
func withRawBytes<R, E: Error>(_ bytes: [UInt8], _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeBytes { raw in
        do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}

/// `withUnsafeMutableBytes` for typed throws.
@inline(__always)
func withMutableRawBytes<R, E: Error>(_ bytes: inout [UInt8],
    _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
    let result: Result<R, E> = bytes.withUnsafeMutableBytes { raw in
        do throws(E) { return .success(try body(raw)) } catch { return .failure(error) }
    }
    return try result.get()
}
