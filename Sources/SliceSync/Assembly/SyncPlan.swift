import Logging

/// What finding the local pieces needs from the sync around it: blocking work off the cooperative
/// pool, a logger, and ranges of the signature (fine tables).
protocol LocatingContext: Sendable {
    var logger: Logger { get }
    /// Runs blocking, CPU-bound work on the blocking pool.
    func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T
    /// Connections that fetch ranges of the signature (fine tables) at once.
    var signatureFetchJobs: Int { get }
}

/// Where every piece of the new file comes from, and what that costs: the local pieces found, the
/// byte ranges to fetch, in how many requests, and whether fetching the file whole is cheaper.
///
/// `find` does the finding (matching, zeros and repeats, the work of interrupted runs); the plan
/// itself is a value, decided by `init` from the map with no I/O.
struct SyncPlan: Sendable {
    /// Per unit of the file: where it comes from.
    var map: PieceMap
    /// Bytes taken from local files.
    let reusedBytes: Int
    /// The ranges to download, merged.
    let missingRanges: [Range<Int>]
    /// Their bytes.
    let missingBytes: Int
    /// Requests the ranges take at the server's current limit of ranges per request.
    let requestCount: Int
    /// Whether the file comes whole instead (ranges would cost about as much, or save too little).
    var fullDownload: Bool

    /// Decides the plan for `map` of a file of `length` bytes, whose server takes `maxRanges` ranges
    /// per request; downloads are checked in `unit`s. With `wholeWhenLittleShared` (slicesync
    /// signatures), a file of which local files hold less than 1/`worthwhileShare` comes whole; a zsync
    /// control file has cost its one request already, so every piece found is used.
    /// `maxRequestBytes` is the body one request may ask for.
    init(map: PieceMap, length: Int, maxRanges: Int, unit: Int, wholeWhenLittleShared: Bool = true,
         maxRequestBytes: Int = RequestPlanner.maxRequestBytes) {
        self.map = map
        reusedBytes = map.reusedBytes
        missingRanges = RequestPlanner.merge(map.missingRanges)
        missingBytes = missingRanges.reduce(0) { $0 + $1.count }
        requestCount = RequestPlanner.requests(for: missingRanges, maxRanges: maxRanges, unit: unit,
                                               maxBytes: maxRequestBytes).count
        let overhead = RequestPlanner.overhead(rangeCount: missingRanges.count, requestCount: requestCount)
        // Ranges are worth their requests only when they spare a real share of the file.
        fullDownload = missingBytes > 0
            && (missingBytes + overhead >= length
                || (wholeWhenLittleShared && reusedBytes * LoadedSignature.worthwhileShare < length))
    }

    /// Bytes of the file that come from the server.
    func bytesFromServer(length: Int) -> Int { fullDownload ? length : missingBytes }

    /// Requests the file's data takes (what a dry run reports).
    var dataRequests: Int { missingBytes == 0 ? 0 : (fullDownload ? 1 : requestCount) }

    /// Finds the local pieces of the file `signature` describes: whole slices and blocks in the
    /// scanned files, pieces of zeros and repeats, then the verified work of interrupted runs.
    static func find(_ signature: LoadedSignature, matcher: Matcher, context: LocatingContext,
        known: KnownSlices? = nil) async throws -> PieceMap {
        var map = try await signature.locate(using: matcher, context: context, known: known)
        signature.fillRepeats(&map)
        guard matcher.alikes.contains(where: \.probed) else { return map }
        let found = map
        return try await context.runBlocking {
            var probed = found
            try signature.probeUnits(&probed, alikes: matcher.alikes)
            return probed
        }
    }
}
