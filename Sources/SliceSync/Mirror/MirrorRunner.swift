#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization

/// Carries out a mirror plan inside the destination, never through a symbolic link: every parent of a
/// path written or removed is checked to be a real directory below the destination first.
struct MirrorRunner {
    let options: MirrorOptions
    let exchange: HTTPExchange
    let logger: Logger
    let destination: String
    /// The URL of the mirrored directory, ending in `/`: file URLs are it plus the encoded path.
    let fileBase: String
    var state: MirrorState
    /// The state as read, to write it back only when it changed.
    let stateAsRead: MirrorState
    /// Set to stop between files.
    let stop: CancellationFlag

    /// Applies `plan` (or, for a dry run, reports it), filling `report`.
    mutating func apply(_ plan: MirrorPlan, local: [String: LocalEntry], report: inout MirrorReport) async throws {
        var blocked = Set<String>()
        for (path, reason) in plan.conflicts {
            report.keptFiles += 1
            report.files.append(.init(path: path, action: "kept", message: reason))
            logger.warning("\(Paths.join(destination, path)): \(reason) (--force overwrites it)")
        }
        if !options.dryRun {
            for path in plan.replaced { try removeEntry(path) }
            for path in plan.directoriesInTheWay {
                guard options.delete else {
                    blocked.insert(path)
                    report.keptFiles += 1
                    report.files.append(.init(path: path, action: "kept", message: "a local directory is where the "
                        + "tree has a file or link; --delete removes it"))
                    continue
                }
                try checkParents(path)
                let removed = try FileSystem.removeTree(Paths.join(destination, path))
                report.deletedFiles += removed
            }
            for directory in plan.directories where !blocked.contains(where: { directory == $0 }) {
                try makeDirectory(directory)
            }
        }
        var fetches: [MirrorPlan.FileStep] = []
        let work = plan.files.filter { step in
            if case .keep = step.action { return false }
            return !blocked.contains(step.path)
        }.count
        var done = 0
        for step in plan.files where !blocked.contains(step.path) {
            switch step.action {
            case .keep(let fixMode):
                report.unchangedFiles += 1
                guard !options.dryRun else { continue }
                let path = Paths.join(destination, step.path)
                if fixMode { try setMode(path, executable: step.executable) }
                if state.files[step.path] == nil, let stamp = try FileSystem.stamp(path) {
                    state.files[step.path] = .init(hash: step.hash, stamp: stamp)
                }
            case .copy(let source):
                report.copiedFiles += 1
                report.files.append(.init(path: step.path, action: "copied"))
                if !options.dryRun { try copyLocally(step, from: source) }
                done += 1
                options.progress?.mirrored(files: done, of: work, bytes: report.bytesDownloaded)
            case .fetch:
                fetches.append(step)
            }
        }
        try await fetch(fetches, report: &report, leaving: plan.deletions, local: local, done: done, of: work)
        if !options.dryRun {
            for (path, target) in plan.links where !blocked.contains(path) {
                try checkParents(path)
                let full = Paths.join(destination, path)
                if (try FileSystem.linkStamp(full)) != nil { try FileSystem.removeFile(full) }
                guard symlink(target, full) == 0 else {
                    throw FileSystemError(errno: errno, operation: "create the link", path: full)
                }
            }
        }
        if options.delete {
            for path in plan.deletions {
                report.deletedFiles += 1
                report.files.append(.init(path: path, action: "deleted"))
                guard !options.dryRun else { continue }
                try removeEntry(path)
                state.files[path] = nil
            }
            if !options.dryRun {
                for directory in plan.directoryDeletions {
                    try checkParents(directory)
                    FileSystem.removeDirectoryIfEmpty(Paths.join(destination, directory))
                }
            }
        }
        if !options.dryRun && state != stateAsRead { try saveState() }
    }

    /// Rebuilds files with the sync engine, a few at once; a file that fails is reported and the others
    /// go on.
    private mutating func fetch(_ steps: [MirrorPlan.FileStep], report: inout MirrorReport, leaving: [String],
        local: [String: LocalEntry], done: Int, of work: Int) async throws {
        var done = done
        var downloaded = report.bytesDownloaded
        let pool = AlikePool(destination: destination, directories: options.alikeDirectories, leaving: leaving,
            local: local)
        var steps = steps
        if options.dryRun {
            // A new file has nothing local to reuse: it comes whole, after its signature's first bytes.
            for step in steps {
                guard case .fetch(replacing: false) = step.action else { continue }
                report.newFiles += 1
                report.bytesDownloaded += step.size
                report.requests += 2
                report.files.append(.init(path: step.path, action: "new", bytesDownloaded: step.size))
            }
            steps.removeAll { $0.action == .fetch(replacing: false) }
        }
        let width = max(1, options.parallelFiles)
        let outcomes = try await withThrowingTaskGroup(of: (MirrorPlan.FileStep, Result<SyncReport, Error>).self) {
            group in
            var results: [(MirrorPlan.FileStep, Result<SyncReport, Error>)] = []
            var iterator = steps.makeIterator()
            func startNext() throws {
                guard !stop.isCancelled, let step = iterator.next() else { return }
                try checkParents(step.path)
                var options = self.options.file
                options.url = fileBase + RequestPath.encode(step.path)
                options.destination = Paths.join(destination, step.path)
                options.dryRun = self.options.dryRun
                options.alikes = pool.candidates(for: step)
                let session = SyncSession(options: options, exchange: exchange, logger: logger)
                group.addTask {
                    do {
                        return (step, .success(try await session.run()))
                    } catch {
                        return (step, .failure(error))
                    }
                }
            }
            for _ in 0..<width { try startNext() }
            while let next = try await group.next() {
                results.append(next)
                done += 1
                if case .success(let sync) = next.1 { downloaded += sync.bytesDownloaded }
                options.progress?.mirrored(files: done, of: work, bytes: downloaded)
                try startNext()
            }
            return results
        }
        for (step, result) in outcomes {
            let isNew: Bool = if case .fetch(let replacing) = step.action { !replacing } else { true }
            switch result {
            case .success(let sync):
                report.bytesDownloaded += options.dryRun ? sync.bytesFromServer : sync.bytesDownloaded
                report.requests += options.dryRun ? sync.dataRequestsPlanned + 1 : sync.requests
                if isNew { report.newFiles += 1 } else { report.changedFiles += 1 }
                report.files.append(.init(path: step.path, action: isNew ? "new" : "changed",
                    bytesDownloaded: options.dryRun ? sync.bytesFromServer : sync.bytesDownloaded))
                guard !options.dryRun else { continue }
                let path = Paths.join(destination, step.path)
                try setMode(path, executable: step.executable)
                try SystemFile.openForReading(path).setModificationTime(seconds: step.modified, nanoseconds: 0)
                if let stamp = try FileSystem.stamp(path) {
                    state.files[step.path] = .init(hash: step.hash, stamp: stamp)
                }
            case .failure(let error):
                report.failedFiles += 1
                let message = (error as? CustomStringConvertible)?.description ?? "\(error)"
                report.files.append(.init(path: step.path, action: "failed", message: message))
                logger.error("\(Paths.join(destination, step.path)): \(message)")
            }
        }
    }

    /// Copies the content of another local file the mirror installed (a rename or a move), staged
    /// beside the target and renamed into place.
    private mutating func copyLocally(_ step: MirrorPlan.FileStep, from source: String) throws {
        try checkParents(step.path)
        try checkParents(source)
        let target = Paths.join(destination, step.path)
        let input = try SystemFile.openForReading(Paths.join(destination, source))
        let temporary = TreeNaming.temporaryPath(for: target)
        do {
            let output = try SystemFile.createExclusive(temporary, mode: 0o600)
            try output.copy(from: input, at: 0, to: 0, count: try input.stamp().size)
            try output.sync()
            try setMode(temporary, executable: step.executable)
            try output.setModificationTime(seconds: step.modified, nanoseconds: 0)
            try FileSystem.rename(temporary, to: target)
        } catch {
            try? FileSystem.removeFile(temporary)
            throw error
        }
        if let stamp = try FileSystem.stamp(target) { state.files[step.path] = .init(hash: step.hash, stamp: stamp) }
    }

    /// Every directory between the destination and `relative`'s parent must be a real directory (a
    /// symbolic link planted there would lead writes out of the destination).
    func checkParents(_ relative: String) throws {
        var path = destination
        for component in relative.split(separator: "/").dropLast() {
            path = Paths.join(path, String(component))
            let found = try FileSystem.linkStamp(path)
            // A dry run creates nothing: a directory still to be made is fine.
            if found == nil && options.dryRun { return }
            guard let (stamp, isLink) = found, stamp.isDirectory, !isLink else {
                throw MirrorError(.unsafePath, "\(path) is not a directory (a symbolic link or a file is there); "
                    + "nothing is written through it")
            }
        }
    }

    private func makeDirectory(_ relative: String) throws {
        try checkParents(relative)
        let path = Paths.join(destination, relative)
        if mkdir(path, 0o755) != 0 {
            guard errno == EEXIST, let (stamp, isLink) = try FileSystem.linkStamp(path), stamp.isDirectory, !isLink
            else {
                throw FileSystemError(errno: errno, operation: "create the directory", path: path)
            }
        }
    }

    private func removeEntry(_ relative: String) throws {
        try checkParents(relative)
        try FileSystem.removeFile(Paths.join(destination, relative))
    }

    private func setMode(_ path: String, executable: Bool) throws {
        let mask = umask(0)
        umask(mask)
        let mode = (executable ? 0o777 : 0o666) & ~mask
        if chmod(path, mode) != 0 {
            throw FileSystemError(errno: errno, operation: "set the permissions of", path: path)
        }
    }

    private func saveState() throws {
        let path = Paths.join(destination, MirrorState.fileName)
        let temporary = TreeNaming.temporaryPath(for: path)
        let file = try SystemFile.createExclusive(temporary, mode: 0o644)
        try file.write(state.encoded(), at: 0)
        try file.sync()
        try FileSystem.rename(temporary, to: path)
    }
}

/// Local files that may share content with a file the mirror rebuilds, besides its own old version
/// (which the sync engine always uses): the file at the same path in each `--alike` directory, and
/// files the update removes that look like it (same name, or same extension and a similar size) —
/// content that moved to a new name and changed on the way.
struct AlikePool: Sendable {
    let destination: String
    let directories: [String]
    /// Files leaving the tree, with their sizes.
    let leaving: [(path: String, size: Int)]
    /// At most this many files are scanned for one file, beside its own old version.
    static let limit = 4

    init(destination: String, directories: [String], leaving: [String], local: [String: LocalEntry]) {
        self.destination = destination
        self.directories = directories
        self.leaving = leaving.compactMap { path in
            if case .file(let stamp) = local[path] { return (path, stamp.size) }
            return nil
        }
    }

    func candidates(for step: MirrorPlan.FileStep) -> [String] {
        var result: [String] = []
        for directory in directories {
            let path = Paths.join(directory, step.path)
            if (try? FileSystem.stamp(path))??.isRegularFile == true { result.append(path) }
        }
        let name = Paths.basename(step.path)
        let suffix = name.lastIndex(of: ".").map { String(name[$0...]) } ?? ""
        let similar = leaving.filter { candidate in
            let other = Paths.basename(candidate.path)
            if other == name { return true }
            guard !suffix.isEmpty, other.hasSuffix(suffix) else { return false }
            return candidate.size * 2 >= step.size && candidate.size <= step.size * 2
        }.sorted { abs($0.size - step.size) < abs($1.size - step.size) }
        result += similar.prefix(Self.limit).map { Paths.join(destination, $0.path) }
        return Array(result.prefix(Self.limit + directories.count))
    }
}
