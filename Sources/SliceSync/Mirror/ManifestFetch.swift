import Logging

/// The manifest a mirror was last made from, kept in the destination (`DEST/.slicesync-mirror-manifest`)
/// with its URL and ETag: the next fetch asks for it conditionally when the URL is the same (304 when
/// nothing changed), and takes from it every part of the new manifest it already holds, whatever URL
/// the new one comes from (a new release directory shares most of its manifest with the last).
struct KeptManifest: Sendable {
    var url: String
    var etag: String
    var bytes: [UInt8]

    static let fileName = ".slicesync-mirror-manifest"
    private static let firstLine = "slicesync-mirror-manifest 1"

    /// The manifest kept in `destination`, if any.
    static func load(from destination: String) -> KeptManifest? {
        let path = Paths.join(destination, fileName)
        guard let stored = try? SystemFile.openForReading(path).readAll(limit: TreeManifest.maxTextBytes + 65536)
        else { return nil }
        let lines = stored.split(separator: UInt8(ascii: "\n"), maxSplits: 3, omittingEmptySubsequences: false)
        guard lines.count == 4, String(decoding: lines[0], as: UTF8.self) == firstLine else { return nil }
        return KeptManifest(url: String(decoding: lines[1], as: UTF8.self),
                            etag: String(decoding: lines[2], as: UTF8.self), bytes: Array(lines[3]))
    }

    /// Keeps it in `destination` (a temporary file renamed: a whole one or the old one).
    func store(in destination: String) {
        guard !url.contains("\n"), !etag.contains("\n") else { return }
        let path = Paths.join(destination, Self.fileName)
        let temporary = TreeNaming.temporaryPath(for: path)
        do {
            let file = try SystemFile.createExclusive(temporary, mode: 0o644)
            try file.write(Array("\(Self.firstLine)\n\(url)\n\(etag)\n".utf8) + bytes, at: 0)
            try FileSystem.rename(temporary, to: path)
        } catch {
            try? FileSystem.removeFile(temporary)
        }
    }
}

/// Fetches one manifest URL, reusing the parts of the one kept from the last fetch.
struct ManifestFetch {
    let url: String
    let exchange: HTTPExchange
    let headers: [(String, String)]
    let kept: KeptManifest?
    let jobs: Int
    let logger: Logger

    /// What a fetch brought.
    struct Result {
        var bytes: [UInt8]
        var manifest = TreeManifest(entries: [])
        var etag: String?
        /// The URL after redirects.
        var finalURL: String
        var received = 0
        var requests = 0
    }

    /// Without a kept manifest of format 2, the first request asks for this much.
    static let firstRequestBytes = 16 << 10

    /// The manifest's bytes; nil when the URL has none (`missingStatus` then says how the server put it).
    func run(missingStatus: inout Int?) async throws -> Result? {
        if let kept {
            do {
                guard var result = try await incremental(kept: kept, missingStatus: &missingStatus) else { return nil }
                result.manifest = try TreeManifest.parse(result.bytes)
                return result
            } catch let error as SignatureError {
                let text = "the manifest at \(url) could not be assembled from parts (\(error.message)); "
                    + "fetching it whole"
                logger.info("\(text)")
            } catch let error as TransportError where error.isTransient {
                logger.info("fetching parts of the manifest at \(url): \(error.message); fetching it whole")
            }
        }
        let remote = RemoteFile(url: url, exchange: exchange, headers: headers, logger: logger)
        guard let fetched = try await remote.retrying("fetching the manifest", {
            try await remote.fetchBytes(range: nil, limit: TreeManifest.maxTextBytes)
        }) else {
            missingStatus = remote.missingStatus
            return nil
        }
        var result = Result(bytes: fetched.bytes, etag: remote.etag, finalURL: remote.url)
        result.received = remote.bytesReceived
        result.requests = remote.requests
        result.manifest = try TreeManifest.parse(result.bytes)
        return result
    }

    /// A conditional request for the header and index; then the parts not in the kept manifest.
    private func incremental(kept: KeptManifest, missingStatus: inout Int?) async throws -> Result? {
        // Only the same URL: another file may have the same ETag (nginx makes them of time and length).
        let condition = kept.url == url && !kept.etag.isEmpty ? [("If-None-Match", kept.etag)] : []
        let conditional = RemoteFile(url: url, exchange: exchange, headers: headers + condition, logger: logger)
        // The header and index, about as long as the kept manifest's (they change little).
        // The kept manifest's parts, when it is whole and of format 2 (its index is read once).
        var keptLayout: TreeManifest.PartLayout?
        if let read = try? TreeManifest.PartLayout.read(kept.bytes), let layout = read.layout,
           layout.totalLength == kept.bytes.count {
            keptLayout = layout
        }
        let firstBytes = keptLayout?.parts.first.map { $0.range.lowerBound + 512 } ?? Self.firstRequestBytes
        let first: (bytes: [UInt8], total: Int?)
        do {
            guard let fetched = try await conditional.fetchBytes(range: 0..<firstBytes, limit: firstBytes) else {
                missingStatus = conditional.missingStatus
                return nil
            }
            first = fetched
        } catch let error as TransportError where error.status == 304 {
            var result = Result(bytes: kept.bytes, etag: kept.etag, finalURL: conditional.url)
            result.requests = conditional.requests
            return result
        }
        let remote = RemoteFile(url: conditional.url, exchange: exchange, headers: headers, logger: logger)
        var result = Result(bytes: first.bytes, etag: conditional.etag, finalURL: conditional.url)
        var prefix = first.bytes
        let total = first.total ?? prefix.count
        var (layout, needed) = try TreeManifest.PartLayout.read(prefix)
        if layout == nil && needed > prefix.count && needed <= total {
            prefix += try await remote.fetchExisting(range: prefix.count..<needed, limit: needed - prefix.count).bytes
            (layout, needed) = try TreeManifest.PartLayout.read(prefix)
        }
        var bytes = prefix
        if let layout, let old = keptLayout {
            var held: [[UInt8]: Range<Int>] = [:]
            for part in old.parts { held[part.hash] = part.range }
            let start = layout.parts.first?.range.lowerBound ?? layout.totalLength
            bytes = Array(prefix.prefix(start))
            var wanted: [Range<Int>] = []
            for part in layout.parts where held[part.hash] == nil && part.range.upperBound > prefix.count {
                if let last = wanted.last, last.upperBound == part.range.lowerBound {
                    wanted[wanted.count - 1] = last.lowerBound..<part.range.upperBound
                } else {
                    wanted.append(part.range)
                }
            }
            let fetched = try await LoadedSignature.fetchRanges(wanted, remote: remote, jobs: jobs, logger: logger)
            // `wanted` is in file order already, as the parts are.
            let index = SortedRanges(wanted)
            for part in layout.parts {
                if let range = held[part.hash] {
                    bytes += kept.bytes[range]
                } else if part.range.upperBound <= prefix.count {
                    bytes += prefix[part.range]
                } else if let found = index.index(containing: part.range),
                          let piece = fetched[wanted[found].lowerBound] {
                    let at = part.range.lowerBound - wanted[found].lowerBound
                    guard at + part.range.count <= piece.count else { throw Self.shortPart(url) }
                    bytes += piece[at..<(at + part.range.count)]
                } else {
                    throw Self.shortPart(url)
                }
            }
            let reused = layout.parts.count { held[$0.hash] != nil }
            logger.info("manifest: \(reused) of \(layout.parts.count) parts kept from the last fetch")
        } else if total > prefix.count {
            bytes += try await remote.fetchExisting(range: prefix.count..<total, limit: total - prefix.count).bytes
        }
        result.bytes = bytes
        result.received = conditional.bytesReceived + remote.bytesReceived
        result.requests = conditional.requests + remote.requests
        result.etag = remote.etag ?? conditional.etag
        return result
    }

    private static func shortPart(_ url: String) -> SignatureError {
        SignatureError(.truncated, "the server sent less of the manifest at \(url) than its index describes")
    }
}
