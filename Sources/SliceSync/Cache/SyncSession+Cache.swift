extension SyncSession {
    /// The destination's cached slice digests, when the cache holds a current entry for it with the
    /// signature's geometry (format 2 with a tree hash only: the digests are the tree hash's parts).
    func cachedDigests(_ signature: LoadedSignature, stamp: FileStamp?) -> [UInt8]? {
        guard let cache = options.cache, let header = signature.v2, header.treeHash != nil,
              let stamp else { return nil }
        return cache.load(stamp, sliceSize: header.sliceSize, blockSize: header.blockSize)
    }

    /// The destination's slice digests at their own offsets, in one pass on every core, when a sample
    /// of 16 slices says most of the new version is where it was (the usual update of a big file):
    /// that pass places those slices, is cheaper than a scan at every offset (which then covers only
    /// the rest), and vouches for the untouched slices when an in-place update is verified. Kept in
    /// the cache. Nil when the sample says otherwise.
    func digestsInPlace(_ signature: LoadedSignature, alike: AlikeFile, stamp: FileStamp) async throws -> [UInt8]? {
        guard let header = signature.v2, header.treeHash != nil, stamp.size == alike.length else { return nil }
        let full = min(alike.length, header.length) / header.sliceSize
        guard full >= 16 else { return nil }
        let coarse = signature.coarse
        let threads = options.threads
        let digests = try await runBlocking { () throws -> [UInt8]? in
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: header.sliceSize, alignment: 16)
            defer { buffer.deallocate() }
            var inPlace = 0
            for pick in 0..<16 {
                let slice = pick * (full - 1) / 15
                let offset = slice * header.sliceSize
                guard try alike.file.read(into: buffer, count: header.sliceSize, at: offset) == header.sliceSize else {
                    continue
                }
                let digest = TreeHash.sliceDigest(buffer, length: header.sliceSize, blockSize: header.blockSize)
                if digest.withUnsafeBufferPointer({ HashRecord.truncate($0.baseAddress!) }) == coarse[slice].strong {
                    inPlace += 1
                }
            }
            guard inPlace >= 8 else { return nil }
            return try TreeHash.sliceDigests(of: alike.file, length: alike.length, sliceSize: header.sliceSize,
                blockSize: header.blockSize, threads: threads)
        }
        guard let digests else { return nil }
        logger.info("most slices of \(alike.path) are in place: hashed it at its own offsets")
        options.cache?.store(stamp, sliceSize: header.sliceSize, blockSize: header.blockSize, digests: digests)
        return digests
    }

    /// Keeps the slice digests of the file now at `destination` (which matched the signature).
    func remember(_ destination: String, signature: LoadedSignature, digests: [UInt8]?) {
        guard let cache = options.cache, let header = signature.v2, header.treeHash != nil, let digests,
              let stamp = try? FileSystem.stamp(destination), stamp.size == header.length else { return }
        cache.store(stamp, sliceSize: header.sliceSize, blockSize: header.blockSize, digests: digests)
    }

    /// Whether the destination, which holds every piece of the new version in place, is that version:
    /// by the cache when it vouches for it (unless every byte is to be checked), else by reading it.
    /// A read that proves it fills the cache.
    func isCurrent(_ alike: AlikeFile, signature: LoadedSignature, cached: [UInt8]?) async throws -> Bool {
        let length = signature.length
        if let cached, !options.verifyAll, TreeHash.combine(cached) == signature.expectedDigest { return true }
        guard case .tree(let sliceSize, let blockSize) = signature.wholeFileCheck else {
            return try await runBlocking { try signature.wholeFileDigest(of: alike.file, length: length) }
                == signature.expectedDigest
        }
        let threads = options.threads
        let digests = try await runBlocking {
            try TreeHash.sliceDigests(of: alike.file, length: length, sliceSize: sliceSize, blockSize: blockSize,
                threads: threads)
        }
        guard TreeHash.combine(digests) == signature.expectedDigest else { return false }
        remember(alike.path, signature: signature, digests: digests)
        return true
    }
}
