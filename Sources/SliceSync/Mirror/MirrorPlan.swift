/// What is in the destination directory of a mirror, by path below it (symbolic links not followed).
enum LocalEntry: Sendable, Equatable {
    case file(FileStamp)
    case directory
    case link(target: String)
    /// A FIFO, socket or device: never written through, never deleted.
    case other
}

/// What a mirror does to bring the destination to a manifest, decided with no I/O.
struct MirrorPlan: Sendable {
    /// One file of the manifest and what becomes of it.
    enum FileAction: Sendable, Equatable {
        /// Already there (`mode` fixed when only the executable bit differs).
        case keep(fixMode: Bool)
        /// Its content is another local file's, untouched since the mirror installed it (a rename, a
        /// move, a copy): copied locally, nothing downloaded.
        case copy(from: String)
        /// New or changed: rebuilt from the server, reusing what the local version holds.
        case fetch(replacing: Bool)
    }

    struct FileStep: Sendable, Equatable {
        var path: String
        var size: Int
        var modified: Int
        var executable: Bool
        var hash: TreeManifest.FileHash
        var action: FileAction
    }

    /// Directories to create, parents first.
    var directories: [String] = []
    /// Every file of the manifest, in manifest order.
    var files: [FileStep] = []
    /// Links to (re)create: path and target.
    var links: [(path: String, target: String)] = []
    /// Local files and links in the way of something else the manifest lists at their path (a file
    /// where a directory or link belongs, a link where a file belongs): replaced as part of the update.
    var replaced: [String] = []
    /// Local directories where the manifest lists a file or link: their content is not listed, so they
    /// are removed only with `--delete`, before what replaces them is written.
    var directoriesInTheWay: [String] = []
    /// Local files and links the manifest does not list: removed only with `--delete`.
    var deletions: [String] = []
    /// Local directories the manifest does not list (removed with `--delete` once empty), deepest first.
    var directoryDeletions: [String] = []
    /// Paths the mirror will not touch without `--force`: changed locally since the mirror wrote them.
    var conflicts: [(path: String, reason: String)] = []

    /// The plan for `entries` (paths below the mirrored directory) over `local`, knowing `state`.
    /// `force` overwrites and deletes files changed locally.
    init(entries: [TreeManifest.Entry], local: [String: LocalEntry], state: MirrorState, force: Bool) {
        var listed = Set<String>()
        var byHash: [TreeManifest.FileHash: String] = [:]
        // The first path in order for each content, without sorting them all.
        for (path, installed) in state.files {
            guard case .file(let stamp) = local[path], installed.isUntouched(stamp) else { continue }
            if let known = byHash[installed.hash], known < path { continue }
            byHash[installed.hash] = path
        }
        func changedLocally(_ path: String) -> Bool {
            guard let installed = state.files[path] else { return false }
            guard case .file(let stamp) = local[path] else { return false }
            return !installed.isUntouched(stamp)
        }
        for entry in entries {
            listed.insert(entry.path)
            let present = local[entry.path]
            // What is there already when it is of another kind than the entry.
            func clear() -> Bool {
                switch present {
                case .directory:
                    directoriesInTheWay.append(entry.path)
                case .other:
                    conflicts.append((entry.path, "not a regular file, directory or link; left alone"))
                    return false
                case .file, .link:
                    if changedLocally(entry.path) && !force {
                        conflicts.append((entry.path, "changed locally since the mirror wrote it; not replaced"))
                        return false
                    }
                    replaced.append(entry.path)
                case nil:
                    break
                }
                return true
            }
            switch entry.kind {
            case .directory:
                if case .directory = present { continue }
                if clear() { directories.append(entry.path) }
            case .link(let target):
                if case .link(let current) = present, current == target { continue }
                if clear() { links.append((entry.path, target)) }
            case .file(let size, let modified, let executable, let hash):
                var step = FileStep(path: entry.path, size: size, modified: modified, executable: executable,
                    hash: hash, action: .fetch(replacing: false))
                if case .file(let stamp) = present {
                    let modeDiffers = (stamp.permissions & 0o111 != 0) != executable
                    if let installed = state.files[entry.path], installed.isUntouched(stamp) {
                        step.action = installed.hash == hash ? .keep(fixMode: modeDiffers) : .fetch(replacing: true)
                    } else if state.files[entry.path] == nil, stamp.size == size, stamp.mtimeSeconds == modified {
                        step.action = .keep(fixMode: modeDiffers)
                    } else if changedLocally(entry.path) && !force {
                        conflicts.append((entry.path, "changed locally since the mirror wrote it; not updated"))
                        continue
                    } else {
                        step.action = .fetch(replacing: true)
                    }
                } else if !clear() {
                    continue
                }
                if case .fetch = step.action, let source = byHash[hash], source != entry.path {
                    step.action = .copy(from: source)
                }
                files.append(step)
            }
        }
        // Local entries the manifest does not list.
        for (path, entry) in local.filter({ !listed.contains($0.key) }).sorted(by: { $0.key < $1.key }) {
            switch entry {
            case .directory:
                directoryDeletions.append(path)
            case .other:
                continue
            case .file, .link:
                if changedLocally(path) && !force {
                    conflicts.append((path, "changed locally since the mirror wrote it; not deleted"))
                } else {
                    deletions.append(path)
                }
            }
        }
        directoryDeletions.sort { $0.split(separator: "/").count > $1.split(separator: "/").count }
    }
}
