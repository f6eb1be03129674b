/// The two other ways the client reads a remote file, besides ranges (`fetchOnce`): a small resource
/// or a part of it (signatures), and a whole file streamed from an offset. Every rule about statuses,
/// Range headers and Content-Range for them lives here.
extension RemoteFile {
    private struct Enough: Error {}
    private struct Missing: Error {}

    /// Fetches `range` of the resource (all of it when nil), at most `limit` bytes, from a server that
    /// may or may not honour Range. Returns the bytes and the resource's total length when known; nil
    /// when the server says there is no such resource (404, 410, or 403, which S3 and many CDNs give
    /// for a missing key).
    func fetchBytes(range: Range<Int>?, limit: Int) async throws -> (bytes: [UInt8], total: Int?)? {
        var bytes: [UInt8] = []
        var total: Int?
        var skip = 0
        let wanted = min(limit, range?.count ?? limit)
        do {
            try await get(headers: range.map { [("Range", ByteRanges.header(for: [$0]))] } ?? [], head: { head in
                switch head.status {
                case 206:
                    guard let value = head.value("content-range"),
                        let contentRange = ByteRanges.parseContentRange(value),
                          contentRange.range.lowerBound == (range?.lowerBound ?? 0) else {
                        throw TransportError(.protocolViolation, "\(url) answered with an unexpected Content-Range")
                    }
                    total = contentRange.completeLength
                case 200:
                    // The whole resource: what was asked for starts `skip` bytes in.
                    skip = range?.lowerBound ?? 0
                    total = head.value("content-length").flatMap { Int($0) }
                case 404, 410, 403:
                    self.missingStatus = head.status
                    throw Missing()
                case 416 where range != nil:
                    // Asking from 0 for an empty resource: there is nothing.
                    total = head.value("content-range").flatMap(ByteRanges.parseUnsatisfiedLength)
                    throw Enough()
                default:
                    throw TransportError(.status, "\(url) answered HTTP \(head.status)", status: head.status)
                }
            }, body: { chunk in
                var slice = UnsafeRawBufferPointer(chunk)
                if skip > 0 {
                    let dropped = min(skip, slice.count)
                    skip -= dropped
                    slice = UnsafeRawBufferPointer(rebasing: slice[dropped...])
                }
                let take = min(slice.count, wanted - bytes.count)
                bytes.append(contentsOf: slice.prefix(take))
                if bytes.count >= wanted { throw Enough() }
            })
        } catch is Enough {
            // We have what we asked for.
        } catch is Missing {
            return nil
        }
        if let range, let total, range.upperBound <= total, bytes.count < min(range.count, limit) {
            throw TransportError(.protocolViolation, "\(url) ended after \(bytes.count) of \(range.count) bytes")
        }
        return (bytes, total)
    }

    /// `fetchBytes` for a resource known to exist: its disappearance is an error.
    func fetchExisting(range: Range<Int>?, limit: Int) async throws -> (bytes: [UInt8], total: Int?) {
        guard let result = try await fetchBytes(range: range, limit: limit) else {
            throw TransportError(.changed, "\(url) disappeared from the server while it was being read", status: 404)
        }
        return result
    }

    /// Streams the file from byte `offset` to its end into `body`. A server that ignores the Range (or
    /// an `offset` of 0) sends it all from the start: `restarted` is called first, and the caller
    /// starts over.
    func streamWhole(from offset: Int, restarted: () throws -> Void,
        body: (UnsafeRawBufferPointer) throws -> Void) async throws {
        try await get(headers: offset > 0 ? [("Range", "bytes=\(offset)-")] : [], head: { head in
            switch head.status {
            case 200:
                try restarted()
                if let value = head.value("content-length"), let total = Int(value) { try noteLength(total) }
            case 206:
                guard let value = head.value("content-range"), let range = ByteRanges.parseContentRange(value),
                      range.range.lowerBound == offset else {
                    throw TransportError(.protocolViolation,
                        "a resumed download came back with the wrong Content-Range")
                }
                if let total = range.completeLength { try noteLength(total) }
            case 412:
                throw TransportError.changedOnServer
            default:
                throw TransportError(.status, "the server answered HTTP \(head.status) for \(url)", status: head.status)
            }
        }, body: body)
    }
}

extension TransportError {
    /// A conditional request failed: the file is no longer the one the download began with.
    static let changedOnServer = TransportError(.changed,
        "the file changed on the server during the download (If-Match failed)", status: 412)
}
