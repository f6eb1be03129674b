#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A directory's entries, rendered as HTML for people or JSON for scripts.
public struct DirectoryListing: Sendable, Equatable {
    /// One entry of a listing.
    public struct Entry: Sendable, Equatable, Codable {
        /// The entry's name.
        public var name: String
        /// `file` or `directory`.
        public var type: String
        /// The size in bytes (files only).
        public var size: Int?
        /// The modification time, seconds since the epoch.
        public var mtime: Int
        /// The URL path of the file's current signature, when there is one.
        public var signature: String?
    }

    /// The URL path of the directory, with a trailing slash.
    public var path: String
    /// The entries, sorted by name, directories and files together.
    public var entries: [Entry]

    /// Reads the directory at `directory` (resolved), published at `relativePath` below `tree`'s root.
    public static func read(tree: ServedTree, directory: String,
        relativePath: String) throws(FileSystemError) -> DirectoryListing {
        var entries: [Entry] = []
        let parentSegments = relativePath.split(separator: "/").map(String.init)
        // Signatures are not themselves signed: no signature column inside `.slicesync/`.
        let insideSignatures = parentSegments.contains(TreeNaming.signatureDirectory)
        for entry in try FileSystem.list(directory) {
            let name = entry.name
            // Resolving applies every serving rule (temporary files, links leaving the root, stale signatures).
            switch tree.resolve(RequestPath(segments: parentSegments + [name], hasTrailingSlash: false)) {
            case .directory(let path):
                let mtime = (try? FileSystem.stamp(path))??.mtimeSeconds ?? 0
                entries.append(Entry(name: name, type: "directory", size: nil, mtime: mtime, signature: nil))
            case .file(_, let stamp):
                let entryRelative = relativePath.isEmpty ? name : relativePath + "/" + name
                let signature = insideSignatures ? nil : tree.signatureURLPath(forFile: entryRelative, stamp: stamp)
                entries.append(Entry(name: name, type: "file", size: stamp.size, mtime: stamp.mtimeSeconds,
                    signature: signature))
            case .notFound:
                continue
            }
        }
        entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return DirectoryListing(path: "/" + relativePath + (relativePath.isEmpty ? "" : "/"), entries: entries)
    }

    /// The listing as a JSON document: `{"path": …, "entries": [{name, type, size, mtime, signature}]}`.
    public func json() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(JSONForm(path: path, entries: entries))) ?? Data("{}".utf8)
        return Array(data) + [0x0A]
    }

    /// The listing as a small HTML page with links.
    public func html() -> [UInt8] {
        let title = "Index of " + Self.escape(path)
        var page = "<!DOCTYPE html>\n<html><head><meta " +
            "charset=\"utf-8\"><title>\(title)</title></head>\n<body>\n<h1>\(title)</h1>\n<table>\n"
        page += "<tr><th>Name</th><th>Size</th><th>Modified (UTC)</th><th>Signature</th></tr>\n"
        if path != "/" { page += "<tr><td><a href=\"../\">../</a></td><td></td><td></td><td></td></tr>\n" }
        for entry in entries {
            let display = entry.name + (entry.type == "directory" ? "/" : "")
            let href = RequestPath.encode(entry.name) + (entry.type == "directory" ? "/" : "")
            let size = entry.size.map { String($0) } ?? "-"
            let signature = entry.signature.map { "<a " +
                "href=\"\(Self.escape(RequestPath.encode($0)))\">signature</a>" } ?? ""
            page += "<tr><td><a href=\"\(Self.escape(href))\">\(Self.escape(display))</a></td><td>\(size)</td>"
                + "<td>\(HTTPDate.format(entry.mtime))</td><td>\(signature)</td></tr>\n"
        }
        page += "</table>\n</body></html>\n"
        return Array(page.utf8)
    }

    private struct JSONForm: Codable {
        var path: String
        var entries: [Entry]
    }

    /// Escapes text for HTML (and XML) content and attribute values.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }
}

/// Media types by file extension, for `Content-Type`.
public enum MediaTypes {
    private static let byExtension: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8", "txt": "text/plain; charset=utf-8",
        "css": "text/css", "js": "text/javascript", "json": "application/json", "xml": "application/xml",
        "md": "text/markdown; charset=utf-8", "csv": "text/csv",
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "svg": "image/svg+xml",
        "pdf": "application/pdf", "iso": "application/x-iso9660-image", "tar": "application/x-tar",
        "gz": "application/gzip", "tgz": "application/gzip", "xz": "application/x-xz", "zst": "application/zstd",
        "bz2": "application/x-bzip2", "zip": "application/zip", "deb": "application/vnd.debian.binary-package",
        "rpm": "application/x-rpm", "wasm": "application/wasm",
    ]

    /// The media type for a file name; `application/octet-stream` when the extension is unknown.
    public static func forName(_ name: String) -> String {
        let bytes = name.utf8
        guard let dot = bytes.lastIndex(of: UInt8(ascii: ".")), dot != bytes.startIndex
            else { return "application/octet-stream" }
        // ASCII lower-casing is enough: every known extension is ASCII.
        let lowered = bytes[bytes.index(after: dot)...].map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        return byExtension[String(decoding: lowered, as: UTF8.self)] ?? "application/octet-stream"
    }
}
