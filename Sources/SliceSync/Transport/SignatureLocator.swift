#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Where the signature of a published file may be, and the file a signature URL describes.
public enum SignatureLocator {
    /// Candidate signature URLs for `fileURL`, nearest `.slicesync/` first:
    /// `/a/b/.slicesync/f`, `/a/.slicesync/b/f`, `/.slicesync/a/b/f` (each with `.slicesync` appended).
    public static func candidates(for fileURL: String) throws(TransportError) -> [String] {
        let (prefix, components, query) = try split(fileURL)
        guard let name = components.last, !name.isEmpty else {
            throw TransportError(.badURL, "\(fileURL) names a directory, not a file")
        }
        var result: [String] = []
        for rootDepth in stride(from: components.count - 1, through: 0, by: -1) {
            let root = components[..<rootDepth]
            let rest = components[rootDepth...]
            let path = (root + [TreeNaming.signatureDirectory] + rest)
                .joined(separator: "/") + TreeNaming.signatureSuffix
            result.append(prefix + "/" + path + query)
        }
        return result
    }

    /// Where the manifest of the tree holding the directory `directoryURL` may be, nearest first: for
    /// `/a/b/`, `/a/b/.slicesync/M`, `/a/.slicesync/M`, `/.slicesync/M`, each with the tree's root URL
    /// (ending in `/`) and the directory's path below it, percent-decoded.
    public static func manifestCandidates(forDirectory directoryURL: String) throws(TransportError)
        -> [(manifest: String, root: String, subpath: String)] {
        let (prefix, components, query) = try split(directoryURL)
        var decoded: [String] = []
        for component in components {
            guard let name = Paths.percentDecoded(component), !name.contains("/"), name != ".", name != ".." else {
                throw TransportError(.badURL, "\(directoryURL) has a path segment that cannot name a directory")
            }
            decoded.append(name)
        }
        var result: [(manifest: String, root: String, subpath: String)] = []
        for depth in stride(from: components.count, through: 0, by: -1) {
            let root = components[..<depth].map { $0 + "/" }.joined()
            result.append((prefix + "/" + root + TreeNaming.signatureDirectory + "/" + TreeManifest.fileName + query,
                prefix + "/" + root, decoded[depth...].joined(separator: "/")))
        }
        return result
    }

    /// For a URL that names a signature directly (`…/.slicesync/REL.slicesync`), the file's URL.
    public static func fileURL(forSignature url: String) throws(TransportError) -> String {
        let (prefix, components, query) = try split(url)
        guard let index = components.lastIndex(of: TreeNaming.signatureDirectory), index < components.count - 1,
              let last = components.last, last.hasSuffix(TreeNaming.signatureSuffix),
              last.count > TreeNaming.signatureSuffix.count else {
            throw TransportError(.badURL,
                "\(url) ends in .slicesync but is not inside a .slicesync/ directory"
                    + "; give the file's URL and the signature's URL")
        }
        var path = components
        path.remove(at: index)
        path[path.count - 1] = String(last.dropLast(TreeNaming.signatureSuffix.count))
        return prefix + "/" + path.joined(separator: "/") + query
    }

    /// Where zsyncmake puts a file's control file: `FILE.zsync` beside it (before any query).
    public static func zsyncURL(for fileURL: String) throws(TransportError) -> String {
        let (prefix, components, query) = try split(fileURL)
        return prefix + "/" + components.joined(separator: "/") + ".zsync" + query
    }

    /// Whether `text` is an absolute http:// or https:// URL with a host.
    public static func isHTTPURL(_ text: String) -> Bool {
        (try? split(text)) != nil
    }

    /// `reference` (absolute, or relative to `base`) as an absolute http(s) URL; nil when it is
    /// neither, or relative with no base.
    public static func resolve(_ reference: String, against base: String?) -> String? {
        if isHTTPURL(reference) { return reference }
        guard let base, isHTTPURL(base), let resolved = URL(string: reference, relativeTo: URL(string: base))?
            .absoluteURL.absoluteString, isHTTPURL(resolved) else { return nil }
        return resolved
    }

    /// The file name a URL's last path component gives, percent-decoded and checked.
    public static func fileName(of url: String) throws(TransportError) -> String {
        let (_, components, _) = try split(url)
        guard let last = components.last, let decoded = Paths.percentDecoded(last), TreeNaming.isSignable(decoded),
              !decoded.contains("/"), decoded != ".", decoded != ".." else {
            throw TransportError(.badURL, "cannot take a file name from \(url); name the destination")
        }
        return decoded
    }

    /// Splits `scheme://authority/path?query` into prefix, path components and `?query` (kept verbatim).
    private static func split(_ url: String)
        throws(TransportError) -> (prefix: String, components: [String], query: String) {
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http"
            || scheme == "https",
              let host = parsed.host, !host.isEmpty else {
            throw TransportError(.badURL, "\(url) is not an http:// or https:// URL")
        }
        var rest = Substring(url)
        guard let schemeEnd = rest.firstRange(of: "://")?.upperBound else {
            throw TransportError(.badURL, "\(url) is not an http:// or https:// URL")
        }
        rest = rest[schemeEnd...]
        let pathStart = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let prefix = String(url[..<pathStart])
        var pathAndQuery = rest[pathStart...]
        if let hash = pathAndQuery.firstIndex(of: "#") { pathAndQuery = pathAndQuery[..<hash] }
        var query = ""
        if let mark = pathAndQuery.firstIndex(of: "?") {
            query = String(pathAndQuery[mark...])
            pathAndQuery = pathAndQuery[..<mark]
        }
        let components = pathAndQuery.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        return (prefix, components, query)
    }
}
