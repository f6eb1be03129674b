#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// What an in-place update did.
struct InPlaceOutcome: Sendable {
    /// Slices fetched again after the whole-file check failed.
    var repaired: Int
    /// Bytes written to disk: the journal's data and the destination's changed ranges.
    var written: Int
    /// The new file's slice digests (tree hash), for the cache; nil when they are not all known.
    var sliceDigests: [UInt8]?
}

/// The pieces an in-place update works with.
struct InPlaceInputs: Sendable {
    let destination: String
    /// The destination as the matcher opened it, and its index among the alike files.
    let alike: AlikeFile
    /// Its stamp when the sync began reading it.
    let stamp: FileStamp?
    let index: Int
    let plan: InPlacePlan
    /// The destination's slice digests (before the update), from the cache or hashed at their own
    /// offsets while matching; nil when neither.
    let cached: [UInt8]?
}

extension SyncSession {
    /// Takes the update lock of a destination: one in-place update (or journal recovery) at a time.
    /// Held until `file` is closed.
    static func lockForUpdate(_ file: SystemFile) throws {
        while flock(file.descriptor, LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            if errno == EWOULDBLOCK {
                throw FileSystemError(.busy, path: file.path, message: "another slicesync is updating "
                    + "\(file.path) in place; wait for it to finish, then run again")
            }
            // File systems without locks (some network ones) cannot guard it; the journal still does.
            return
        }
    }

    /// Whether the file system of `directory` lacks room for a second copy of `length` bytes.
    static func lacksRoomForCopy(of length: Int, in directory: String) -> (free: Int, short: Bool) {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return (0, false) }
        let free = Int(info.f_bavail) &* Int(info.f_frsize)
        // A margin for the file system's own blocks and for whatever else writes meanwhile.
        return (free, free < length + length / 64 + (16 << 20))
    }

    /// Updates the destination in place (see `UpdateJournal`): the changed ranges are gathered into
    /// the journal while the destination is still whole, the journal is made durable, then applied,
    /// then the destination is verified; slices that fail are fetched again into it.
    func updateInPlace(_ inputs: InPlaceInputs, plan: inout SyncPlan, signature: LoadedSignature,
        remote: RemoteFile, matcher: Matcher) async throws -> InPlaceOutcome {
        let destination = inputs.destination
        let length = signature.length
        let target = try SystemFile.openForUpdating(destination)
        try Self.lockForUpdate(target)
        let before = try target.stamp()
        guard let stamp = inputs.stamp, !stamp.contentMayDiffer(from: before) else {
            throw FileSystemError(.changedWhileReading, path: destination, message: "\(destination) changed "
                + "while slicesync was reading it; run again when nothing else writes to it")
        }
        let changed = inputs.plan
        let summary = "\(formatBytes(changed.changedBytes)) of \(destination) change, in "
            + "\(changed.changed.count) ranges"
        logger.info("in place: \(summary)")

        // Only the missing ranges are fetched, even where a whole download would be simpler: the
        // journal then needs room for what changes, not for the file.
        if plan.missingBytes > 0 && plan.fullDownload { plan.fullDownload = false }

        // 1. Gather every changed range's final bytes into the journal's data area.
        let staging = try OutputFile(destination: destination, length: length)
        var written = 0
        do {
            try await downloadMissing(&plan, remote: remote, output: staging, signature: signature)
            if plan.fullDownload {
                let streamed = try await downloadWhole(remote: remote, output: staging, signature: signature)
                if streamed.digest != signature.expectedDigest && !streamed.badSlices.isEmpty {
                    let bad = streamed.badSlices.count
                    logger.warning("\(bad) slice(s) arrived damaged; they are fetched again after the update")
                }
            } else {
                let sources = matcher.alikes.map(\.file)
                let stagingFile = staging.file
                let map = plan.map
                try await runBlocking {
                    try Self.stage(map: map, sources: sources, destination: target, plan: changed,
                        into: stagingFile)
                }
            }
            written += plan.fullDownload ? length : changed.changedBytes
            CrashPoints.reach("staged")
            let journal = UpdateJournal(device: before.device, inode: before.inode, length: length,
                modified: signature.zsync?.mtime, ranges: changed.changed)
            try journal.seal(staging.file, destination: destination)
            CrashPoints.reach("sealed")

            // 2. Apply it. From here a crash is finished by the next run, from the journal.
            observer?.phase("writing")
            let journalFile = staging.file
            try await runBlocking {
                try journal.apply(from: journalFile, to: target) { CrashPoints.reach($0) }
            }
            written += changed.changedBytes
            CrashPoints.reach("applied")
            try FileSystem.removeFile(UpdateJournal.path(of: destination))
            try FileSystem.syncDirectory(Paths.parent(of: destination))
        } catch {
            if (try? FileSystem.stamp(staging.temporaryPath)) != nil {
                if remote.bytesReceived > 0, let partial = staging.keepAsPartial() {
                    logger.warning("kept the work done so far in \(partial); run the same command again")
                } else {
                    staging.discard()
                }
            }
            throw error
        }

        // 3. Verify: with the tree hash, only the slices that changed are read when the cache knows the
        // others; a mismatch is checked again on every byte before anything is fetched.
        observer?.phase("verifying")
        var checked = try await verify(target, length: length, signature: signature,
            plan: changed, oldLength: inputs.alike.length, cached: inputs.cached)
        if checked.digest != signature.expectedDigest && inputs.cached != nil {
            logger.warning("the update does not match with the cached slice digests; checking every byte")
            checked = try await verify(target, length: length, signature: signature, plan: changed,
                oldLength: inputs.alike.length, cached: nil)
        }
        let digest = checked.digest
        var sliceDigests = checked.sliceDigests
        var repaired = 0
        if digest != signature.expectedDigest {
            var map = plan.map
            repaired = try await repair(output: OutputFile(updating: target, length: length), remote: remote,
                signature: signature, map: &map, knownBad: sliceDigests.map(signature.badSlices(fromDigests:)))
            try target.sync()
            written += repaired * signature.sliceSize
            sliceDigests = nil
        }
        return InPlaceOutcome(repaired: repaired, written: written, sliceDigests: sliceDigests)
    }

    /// Copies the changed ranges' local pieces into the journal's data area, reading the destination
    /// before any of it changes. Downloaded ranges are there already; zeros are holes.
    private static func stage(map: PieceMap, sources: [SystemFile], destination: SystemFile,
        plan: InPlacePlan, into staging: SystemFile) throws(FileSystemError) {
        let changed = SortedRanges(plan.changed)
        for run in map.localRuns where changed.overlaps(run.target) {
            switch run.source.file {
            case LocalSource.zeros:
                continue
            case LocalSource.repeated:
                // A copy of another piece of the new file: in the journal, or unchanged in the destination.
                let source = run.source.offset..<(run.source.offset + run.target.count)
                let from = plan.unchanged.contains(source) ? destination : staging
                try staging.copy(from: from, at: source.lowerBound, to: run.target.lowerBound, count: source.count)
            default:
                try staging.copy(from: sources[run.source.file], at: run.source.offset, to: run.target.lowerBound,
                    count: run.target.count)
            }
        }
    }

    /// The digest `signature.wholeFileCheck` computes for the destination, and with the tree hash its
    /// slice digests. `cached` (the digests before the update) stands in for the slices the update did
    /// not touch.
    private func verify(_ file: SystemFile, length: Int, signature: LoadedSignature, plan: InPlacePlan,
        oldLength: Int, cached: [UInt8]?) async throws -> (digest: [UInt8], sliceDigests: [UInt8]?) {
        guard case .tree(let sliceSize, let blockSize) = signature.wholeFileCheck else {
            let digest = try await runBlocking { try signature.wholeFileDigest(of: file, length: length) }
            return (digest, nil)
        }
        var digests = [UInt8](repeating: 0, count: signature.sliceCount * TreeHash.digestSize)
        var isKnown = [Bool](repeating: false, count: signature.sliceCount)
        if let cached {
            for slice in 0..<min(signature.sliceCount, cached.count / TreeHash.digestSize) {
                let range = signature.sliceRange(slice)
                // Untouched, and the same slice in the old file (the last old slice may be shorter).
                guard plan.unchanged.contains(range), range.count == sliceSize || range.upperBound == oldLength
                    else { continue }
                let bytes = (slice * TreeHash.digestSize)..<((slice + 1) * TreeHash.digestSize)
                digests.replaceSubrange(bytes, with: cached[bytes])
                isKnown[slice] = true
            }
        }
        let threads = options.threads
        let reused = (digests, isKnown)
        let knownCount = isKnown.filter { $0 }.count
        let computed = try await runBlocking {
            try TreeHash.sliceDigests(of: file, length: length, sliceSize: sliceSize, blockSize: blockSize,
                threads: threads, known: reused)
        }
        logger.info("verified \(signature.sliceCount - knownCount) slices by reading, \(knownCount) from the cache")
        return (TreeHash.combine(computed), computed)
    }
}

/// Why a destination is updated in place.
enum InPlaceReason: Sendable, Equatable {
    /// `--inplace`.
    case requested
    /// A second copy does not fit on the file system.
    case forLackOfRoom
}

extension SyncSession {
    /// Whether the existing `destination` is updated in place, and why; nil: it is replaced.
    func decideInPlace(destination: String, length: Int) throws -> InPlaceReason? {
        if options.inPlace { return .requested }
        let room = Self.lacksRoomForCopy(of: length, in: Paths.parent(of: destination))
        guard room.short else { return nil }
        let free = "only \(formatBytes(room.free)) are free beside \(destination), not enough for a second copy"
        logger.warning("\(free) of \(formatBytes(length)): updating it in place (readers may see a mix of versions)")
        return .forLackOfRoom
    }
}
