import Foundation
import SliceSync
import Testing
import TestSupport

/// Random churn on a tree watched by the built `shash --service` or `syncserver`: creates, rewrites,
/// appends, renames, moves inside, in, out and across directories, deletes, directory removals,
/// bursts of small files and slow writers. Bounded: `SLICESYNC_SOAK_SECONDS` of churn per program
/// (30 by default; longer by hand), with the random seed in every failure message
/// (`SLICESYNC_SOAK_SEED` replays one).
struct Churn {
    let tree: Scratch
    var generator: SeededGenerator
    let seed: UInt64
    private(set) var operations = 0
    /// Whether signatures carry the plain SHA-256 (the service runs with --zsync or --sha256).
    var plainDigest = false
    private var serial = 0

    init(tree: Scratch) {
        self.tree = tree
        seed = ProcessInfo.processInfo.environment["SLICESYNC_SOAK_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64(UInt32.max))
        generator = SeededGenerator(seed: seed)
    }

    static var duration: Double {
        ProcessInfo.processInfo.environment["SLICESYNC_SOAK_SECONDS"].flatMap { Double($0) } ?? 30
    }

    private var fm: FileManager { .default }

    /// Paths below pub/ (outside .slicesync and the tools' own files) of this type, relative.
    private func entries(_ type: FileAttributeType) -> [String] {
        ((try? fm.subpathsOfDirectory(atPath: tree.file("pub"))) ?? []).filter { path in
            !path.hasPrefix(".slicesync") && !path.contains(".slicesync.")
                && (try? fm.attributesOfItem(atPath: tree.file("pub/" + path))[.type] as? FileAttributeType) == type
        }.sorted()
    }

    /// Regular files below pub/, relative.
    func files() -> [String] { entries(.typeRegular) }

    /// Directories below pub/, relative, with "" for pub/ itself.
    func directories() -> [String] { [""] + entries(.typeDirectory) }

    private mutating func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[Int(generator.next() % UInt64(items.count))]
    }

    private mutating func size() -> Int {
        switch generator.next() % 10 {
        case 0: 0
        case 1: 3_000_000
        default: Int(generator.next() % 300_000)
        }
    }

    private mutating func newName(in directory: String) -> String {
        serial += 1
        return (directory.isEmpty ? "" : directory + "/") + "f\(serial).bin"
    }

    private mutating func data(_ count: Int) -> Data { pseudoRandomData(count, seed: generator.next()) }

    /// One random change.
    mutating func step() throws {
        operations += 1
        let pub = tree.file("pub")
        switch generator.next() % 12 {
        case 0, 1:
            let directory = pick(directories()) ?? ""
            try tree.write("pub/" + newName(in: directory), data(size()), old: false)
        case 2:
            guard let file = pick(files()) else { return }
            try tree.write("pub/" + file, data(size()), old: false)
        case 3:
            guard let file = pick(files()), let handle = FileHandle(forWritingAtPath: tree.file("pub/" + file))
            else { return }
            handle.seekToEndOfFile()
            handle.write(data(Int(generator.next() % 50_000)))
            handle.closeFile()
        case 4:
            guard let file = pick(files()) else { return }
            let directory = (file as NSString).deletingLastPathComponent
            try? fm.moveItem(atPath: pub + "/" + file, toPath: pub + "/" + newName(in: directory))
        case 5:
            // Across directories, into a new nested one at times.
            guard let file = pick(files()) else { return }
            var directory = pick(directories()) ?? ""
            if generator.next() % 3 == 0 {
                serial += 1
                directory = (directory.isEmpty ? "" : directory + "/") + "d\(serial)/e\(serial)"
                try fm.createDirectory(atPath: pub + "/" + directory, withIntermediateDirectories: true)
            }
            try? fm.moveItem(atPath: pub + "/" + file, toPath: pub + "/" + newName(in: directory))
        case 6:
            guard let file = pick(files()) else { return }
            try? fm.removeItem(atPath: pub + "/" + file)
        case 7:
            // Out of the tree, and back in later (case 8).
            guard let file = pick(files()) else { return }
            serial += 1
            try? fm.moveItem(atPath: pub + "/" + file, toPath: tree.file("outside/o\(serial).bin"))
        case 8:
            let outside = (try? fm.contentsOfDirectory(atPath: tree.file("outside"))) ?? []
            guard let name = pick(outside) else { return }
            let directory = pick(directories()) ?? ""
            try? fm.moveItem(atPath: tree.file("outside/" + name), toPath: pub + "/" + newName(in: directory))
        case 9:
            guard generator.next() % 3 == 0, let directory = pick(directories().filter { !$0.isEmpty }) else { return }
            try? fm.removeItem(atPath: pub + "/" + directory)
        case 10:
            // A burst of small files in a new directory.
            serial += 1
            let directory = "burst\(serial)"
            for index in 0..<40 {
                try tree.write("pub/\(directory)/s\(index).txt", Data("small \(index) \(serial)\n".utf8), old: false)
            }
        default:
            // A slow writer: pieces with pauses shorter than the settle period.
            let path = tree.file("pub/" + newName(in: ""))
            _ = fm.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            for _ in 0..<4 {
                handle.write(data(20_000))
                usleep(100_000)
            }
            handle.closeFile()
        }
        usleep(UInt32(generator.next() % 40_000))
    }

    /// Files whose signature is not exactly what one-shot signing of their content writes.
    func unsigned() -> [String] {
        files().filter { relative in
            guard let content = try? tree.read("pub/" + relative),
                  let signature = try? tree.read("pub/.slicesync/" + relative + ".slicesync"),
                  var parameters = try? SigningParameters().forFile(startingWith: Array(content.prefix(1024)))
            else { return true }
            parameters.plainDigest = plainDigest
            guard let expected = try? SignatureBuilder(parameters: parameters, pool: nil)
                .signature(of: [UInt8](content), filename: (relative as NSString).lastPathComponent)
            else { return true }
            return [UInt8](signature) != expected.serialized()
        }
    }

    /// Signatures (and control files) whose file is gone, and temporary files of the tools.
    func leftovers() -> [String] {
        let signatureFiles = ((try? fm.subpathsOfDirectory(atPath: tree.file("pub/.slicesync"))) ?? []).filter {
            $0.hasSuffix(".slicesync") || $0.hasSuffix(".zsync")
        }
        let present = Set(files())
        let orphans = signatureFiles.filter { path in
            let source = path.hasSuffix(".zsync") ? String(path.dropLast(6)) : String(path.dropLast(10))
            return !present.contains(source)
        }
        let temporary = ((try? fm.subpathsOfDirectory(atPath: tree.file("pub"))) ?? []).filter {
            $0.contains(".slicesync.tmp-")
        }
        return orphans + temporary
    }
}

@Suite("Soak: the signing service under random churn", .serialized)
struct ServiceSoakTests {
    /// Churns for a while, lets the tree settle, then checks every file, orphan and temporary file, and
    /// that SIGTERM ends the program with status 0 within 2 seconds.
    func soak(_ program: String, _ arguments: (String) -> [String]) throws {
        let tree = try Scratch()
        try FileManager.default.createDirectory(atPath: tree.file("pub"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tree.file("outside"), withIntermediateDirectories: true)
        var churn = Churn(tree: tree)
        for index in 0..<20 { try tree.write("pub/start/a\(index).bin", pseudoRandomData(50_000, seed: UInt64(index))) }
        let log = tree.file("service.log")
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = ProgramRunner.buildDirectory.appendingPathComponent(program)
        process.arguments = arguments(tree.file("pub"))
        churn.plainDigest = process.arguments?.contains("--zsync") == true
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer { if process.isRunning { TestServer.stop(process) } }
        let label = "\(program), seed \(churn.seed)"
        let end = Date().addingTimeInterval(Churn.duration)
        while Date() < end { try churn.step() }
        // Settled: signed exactly as one-shot signing would, nothing left over.
        let settled = eventually(within: 60) { churn.unsigned().isEmpty && churn.leftovers().isEmpty }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let problems = "unsigned \(churn.unsigned().prefix(10)), left over \(churn.leftovers().prefix(10))"
        #expect(settled, "\(label), after \(churn.operations) changes: \(problems); log: \(output.suffix(2000))")
        #expect(churn.files().count > 0, "\(label): the churn left no files to check")
        let stopped = Date()
        kill(process.processIdentifier, SIGTERM)
        let status = reap(process, timeout: 20)
        #expect(status == 0, "\(label): exit status \(String(describing: status))")
        #expect(Date().timeIntervalSince(stopped) < 2, "\(label): took \(Date().timeIntervalSince(stopped)) s to stop")
        #expect(churn.leftovers().isEmpty, "\(label): \(churn.leftovers())")
    }

    @Test func shashServiceKeepsUp() throws {
        try soak("shash") { ["--service", "--settle", "0.5", "--zsync", "-q", $0] }
    }

    @Test func syncserverKeepsUp() throws {
        try soak("syncserver") { ["--root", $0, "--port", "0", "--settle", "0.5", "-q"] }
    }
}
