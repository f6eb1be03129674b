/// Reads the few values S3's XML replies carry (`<UploadId>`, `<ETag>`, `<Code>`, the `<Contents>` of a
/// listing) without an XML library, which FoundationEssentials lacks. The documents are flat and S3
/// escapes text with the five predefined entities and numeric references, which is all this undoes.
enum XMLFields {
    /// The text of every element named `tag` (its inner markup verbatim for a container), in order.
    static func all(_ tag: String, in text: Substring) -> [Substring] {
        var result: [Substring] = []
        let open = "<" + tag, close = "</" + tag + ">"
        var rest = text[...]
        while let start = rest.firstRange(of: open) {
            let afterName = rest[start.upperBound...]
            guard let next = afterName.first else { break }
            guard next == ">" || next == " " || next == "/" else {
                rest = afterName
                continue
            }
            guard let tagEnd = afterName.firstIndex(of: ">") else { break }
            if afterName[..<tagEnd].hasSuffix("/") {
                result.append(afterName[tagEnd..<tagEnd])
                rest = afterName[afterName.index(after: tagEnd)...]
                continue
            }
            let inner = afterName[afterName.index(after: tagEnd)...]
            guard let end = inner.firstRange(of: close) else { break }
            result.append(inner[..<end.lowerBound])
            rest = inner[end.upperBound...]
        }
        return result
    }

    /// The unescaped text of the first element named `tag`.
    static func first(_ tag: String, in text: Substring) -> String? {
        all(tag, in: text).first.map { unescape($0) }
    }

    /// Text with `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;` and `&#N;`/`&#xN;` replaced.
    static func unescape(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var result = ""
        var rest = text
        while let amp = rest.firstIndex(of: "&") {
            result += rest[..<amp]
            let entityStart = rest.index(after: amp)
            guard let semicolon = rest[entityStart...].prefix(10).firstIndex(of: ";") else {
                result += "&"
                rest = rest[entityStart...]
                continue
            }
            let name = rest[entityStart..<semicolon]
            switch name {
            case "amp": result += "&"
            case "lt": result += "<"
            case "gt": result += ">"
            case "quot": result += "\""
            case "apos": result += "'"
            default:
                let number = name.hasPrefix("#x") ? UInt32(name.dropFirst(2), radix: 16)
                    : name.hasPrefix("#") ? UInt32(name.dropFirst(), radix: 10) : nil
                if let number, let scalar = Unicode.Scalar(number) {
                    result.unicodeScalars.append(scalar)
                } else {
                    result += "&" + name + ";"
                }
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return result + rest
    }
}
