#if canImport(Glibc)
import Glibc
#endif

/// `--include` and `--exclude` rules, matched as rsync matches them: in the order given, the first rule
/// that matches decides, and a path no rule matches is included.
///
/// - A pattern ending in `/` matches directories only.
/// - A pattern starting with `/` is anchored at the mirrored directory; one that holds another `/` or a
///   `**` matches the end of the path at a name boundary (`b/c` matches `a/b/c`); a pattern without
///   either matches the last name only.
/// - `*` matches anything but `/`, `?` one character but `/`, `[…]` a class; `**` matches anything,
///   `/` included (then, as a simplification, `*` in the same pattern does too).
/// - An excluded directory takes everything below it along: no rule is looked at inside it.
public struct MirrorFilter: Sendable, Equatable {
    /// One rule.
    public struct Rule: Sendable, Equatable {
        /// Whether a match includes (else excludes).
        public var include: Bool
        /// The pattern as given.
        public var pattern: String

        /// Creates a rule.
        public init(include: Bool, pattern: String) {
            self.include = include
            self.pattern = pattern
        }
    }

    /// The rules, in order.
    public var rules: [Rule]

    /// Rules in the order given.
    public init(rules: [Rule] = []) { self.rules = rules }

    /// Whether `path` (below the mirrored directory) is mirrored, including every directory above it.
    public func includes(_ path: String, isDirectory: Bool) -> Bool {
        guard !rules.isEmpty else { return true }
        let names = path.split(separator: "/")
        for depth in 1..<max(1, names.count) {
            if !decides(names[..<depth].joined(separator: "/"), isDirectory: true) { return false }
        }
        return decides(path, isDirectory: isDirectory)
    }

    /// The first matching rule's verdict for `path` itself.
    private func decides(_ path: String, isDirectory: Bool) -> Bool {
        for rule in rules where Self.matches(rule.pattern, path, isDirectory: isDirectory) { return rule.include }
        return true
    }

    static func matches(_ rawPattern: String, _ path: String, isDirectory: Bool) -> Bool {
        var pattern = Substring(rawPattern)
        if pattern.hasSuffix("/") {
            guard isDirectory else { return false }
            pattern = pattern.dropLast()
        }
        let crosses = pattern.contains("**")
        let flags: Int32 = crosses ? 0 : FNM_PATHNAME
        if pattern.hasPrefix("/") {
            return fnmatch(String(pattern.dropFirst()), path, flags) == 0
        }
        if pattern.contains("/") || crosses {
            // The end of the path, starting at a name.
            var start = path.startIndex
            while true {
                if fnmatch(String(pattern), String(path[start...]), flags) == 0 { return true }
                guard let slash = path[start...].firstIndex(of: "/") else { return false }
                start = path.index(after: slash)
            }
        }
        let last = path.split(separator: "/").last.map(String.init) ?? path
        return fnmatch(String(pattern), last, flags) == 0
    }
}
