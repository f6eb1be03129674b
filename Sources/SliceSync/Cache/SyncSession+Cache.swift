extension SyncSession {
    /// The destination's cached slice digests, when the cache holds a current entry for it with the
    /// signature's geometry (format 2 with a tree hash only: the digests are the tree hash's parts).
    func cachedDigests(_ signature: LoadedSignature, alike: AlikeFile?) -> [UInt8]? {
        guard let cache = options.cache, let header = signature.v2, header.treeHash != nil, let alike,
              let stamp = try? alike.file.stamp(), stamp.size == alike.length else { return nil }
        return cache.load(stamp, sliceSize: header.sliceSize, blockSize: header.blockSize)
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
