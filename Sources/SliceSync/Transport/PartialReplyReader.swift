/// Reads the body of a 206 reply as it arrives — one part with its `Content-Range`, or a
/// `multipart/byteranges` body — and hands on each byte with the file offset it belongs at.
///
/// A pure state machine with no I/O: bytes in, events out, in whatever pieces the network delivers.
/// Memory is one part's headers at most (`maxPartHeaderBytes`), whatever the size of the reply, so a
/// reply never has to be held whole before its bytes can be verified and written.
struct PartialReplyReader {
    /// What the body holds, in order.
    enum Event {
        /// A part begins: the bytes that follow belong at `range` of a file of `completeLength` bytes.
        case part(ByteRanges.ContentRange)
        /// Bytes of the current part, starting at file offset `offset`. The buffer is valid only
        /// during the call.
        case data(offset: Int, bytes: UnsafeRawBufferPointer)
    }

    /// Longest header block of one part; nginx and Apache send about 100 bytes.
    static let maxPartHeaderBytes = 8192
    /// Longest preamble before the first boundary; servers send none or a line.
    static let maxPreambleBytes = 64 * 1024

    private enum State {
        /// Single part: the next byte belongs at `position`, the part ends at `end`.
        case single(position: Int, end: Int)
        /// Before the first delimiter; `matched` bytes of it have been seen.
        case preamble(matched: Int, seen: Int)
        /// Just after a delimiter: `--` ends the body, anything else starts a part's headers.
        case afterDelimiter(first: UInt8?)
        /// Inside a part's header block.
        case headers([UInt8])
        /// Inside a part's data.
        case data(position: Int, end: Int)
        /// After a part's data: expecting CRLF and the delimiter; `matched` bytes of it seen.
        case closing(matched: Int)
        /// After the closing delimiter: the epilogue is ignored.
        case done
    }

    private var state: State
    /// `--boundary`, without the CRLF that precedes it after a part.
    private let delimiter: [UInt8]
    /// CRLF then `delimiter`: what must follow every part's data.
    private let closing: [UInt8]
    /// The failure function of `delimiter` for the preamble search.
    private let fallback: [Int]
    private var epilogue = 0

    /// A reader for the reply whose head is `head` (status 206).
    init(head: HTTPResponseHead) throws(TransportError) {
        if let boundary = ByteRanges.boundary(ofContentType: head.value("content-type") ?? "") {
            self = PartialReplyReader(boundary: boundary)
            return
        }
        guard let value = head.value("content-range"), let range = ByteRanges.parseContentRange(value) else {
            throw TransportError(.protocolViolation, "a 206 reply without a valid Content-Range")
        }
        self = PartialReplyReader(single: range)
    }

    private init(single range: ByteRanges.ContentRange) {
        delimiter = []
        closing = []
        fallback = []
        state = .single(position: range.range.lowerBound, end: range.range.upperBound)
        pendingSingle = range
    }

    /// A reader for a `multipart/byteranges` body with this boundary.
    init(boundary: String) {
        delimiter = Array("--\(boundary)".utf8)
        closing = Array("\r\n".utf8) + delimiter
        var fallback = [Int](repeating: 0, count: delimiter.count)
        var length = 0
        for index in delimiter.indices.dropFirst() {
            while length > 0 && delimiter[index] != delimiter[length] { length = fallback[length - 1] }
            if delimiter[index] == delimiter[length] { length += 1 }
            fallback[index] = length
        }
        self.fallback = fallback
        state = .preamble(matched: 0, seen: 0)
    }

    /// The single part's range, reported with the first bytes fed.
    private var pendingSingle: ByteRanges.ContentRange?

    /// Feeds the next bytes of the body.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, _ emit: (Event) throws -> Void) throws {
        if let single = pendingSingle {
            pendingSingle = nil
            try emit(.part(single))
        }
        var index = 0
        let count = chunk.count
        while index < count {
            switch state {
            case .single(let position, let end):
                let take = min(count - index, end - position)
                guard take > 0 else {
                    throw TransportError(.protocolViolation,
                        "the server sent more bytes than its Content-Range announced")
                }
                try emit(.data(offset: position, bytes: UnsafeRawBufferPointer(rebasing: chunk[index..<(index
                    + take)])))
                index += take
                state = .single(position: position + take, end: end)

            case .preamble(var matched, var seen):
                // Knuth–Morris–Pratt, so a boundary that starts with dashes is still found after extra dashes.
                while index < count && matched < delimiter.count {
                    let byte = chunk[index]
                    while matched > 0 && byte != delimiter[matched] { matched = fallback[matched - 1] }
                    if byte == delimiter[matched] { matched += 1 }
                    index += 1
                    seen += 1
                }
                guard seen <= Self.maxPreambleBytes + delimiter.count else {
                    throw TransportError(.protocolViolation, "the multipart reply has no boundary line")
                }
                state = matched == delimiter.count ? .afterDelimiter(first: nil) : .preamble(matched: matched,
                    seen: seen)

            case .afterDelimiter(let first):
                let byte = chunk[index]
                index += 1
                guard let first else {
                    state = .afterDelimiter(first: byte)
                    continue
                }
                if first == UInt8(ascii: "-") && byte == UInt8(ascii: "-") {
                    state = .done
                } else {
                    state = .headers([first, byte])
                    try finishHeadersIfComplete(emit)
                }

            case .headers(var buffer):
                // Copy up to the end of the header block only; data bytes stay in the chunk.
                state = .done  // drop the buffer's reference while appending, so it is not copied
                while index < count {
                    buffer.append(chunk[index])
                    index += 1
                    if buffer.count >= 4 && buffer[buffer.count - 4] == 13 && buffer[buffer.count - 3] == 10
                        && buffer[buffer.count - 2] == 13 && buffer[buffer.count - 1] == 10 { break }
                    guard buffer.count <= Self.maxPartHeaderBytes else {
                        throw TransportError(.protocolViolation, "a part of the multipart reply has over-long headers")
                    }
                }
                state = .headers(buffer)
                try finishHeadersIfComplete(emit)

            case .data(let position, let end):
                let take = min(count - index, end - position)
                if take > 0 {
                    try emit(.data(offset: position, bytes: UnsafeRawBufferPointer(rebasing: chunk[index..<(index
                        + take)])))
                    index += take
                }
                state = position + take == end ? .closing(matched: 0) : .data(position: position + take, end: end)

            case .closing(var matched):
                while index < count && matched < closing.count {
                    guard chunk[index] == closing[matched] else {
                        throw TransportError(.protocolViolation, "a part's length does not match its Content-Range")
                    }
                    matched += 1
                    index += 1
                }
                state = matched == closing.count ? .afterDelimiter(first: nil) : .closing(matched: matched)

            case .done:
                epilogue += count - index
                guard epilogue <= Self.maxPreambleBytes else {
                    throw TransportError(.protocolViolation, "the multipart reply goes on after its closing boundary")
                }
                index = count
            }
        }
    }

    private mutating func finishHeadersIfComplete(_ emit: (Event) throws -> Void) throws {
        guard case .headers(let buffer) = state, buffer.count >= 4,
              buffer.suffix(4).elementsEqual([13, 10, 13, 10]) else { return }
        var contentRange: ByteRanges.ContentRange?
        let text = String(decoding: buffer, as: UTF8.self)
        for line in text.split(separator: "\r\n") {
            let pieces = line.split(separator: ":", maxSplits: 1)
            guard pieces.count == 2, pieces[0].trimmingSpaces.lowercased() == "content-range" else { continue }
            guard let parsed = ByteRanges.parseContentRange(String(pieces[1])) else {
                throw TransportError(.protocolViolation,
                    "a part has an invalid Content-Range: \(pieces[1].trimmingSpaces)")
            }
            contentRange = parsed
        }
        guard let contentRange else {
            throw TransportError(.protocolViolation, "a part of the multipart reply has no Content-Range")
        }
        try emit(.part(contentRange))
        state = .data(position: contentRange.range.lowerBound, end: contentRange.range.upperBound)
    }

    /// Checks, once the body has ended, that it was complete.
    mutating func finish(_ emit: (Event) throws -> Void) throws {
        if let single = pendingSingle {
            pendingSingle = nil
            try emit(.part(single))
        }
        switch state {
        case .single(let position, let end) where position < end:
            throw TransportError(.protocolViolation,
                "the reply was cut short: \(end - position) bytes of the range did not arrive")
        case .single, .done:
            return
        case .preamble:
            throw TransportError(.protocolViolation, "the multipart reply has no boundary line")
        case .data, .headers, .closing, .afterDelimiter:
            throw TransportError(.protocolViolation, "the multipart reply ends inside a part")
        }
    }
}

/// Cuts a stream of `(offset, bytes)` into pieces that end on multiples of `unit` (or at the end of a
/// wanted range), so each piece handed on holds whole verification units. Bytes outside `wanted` (a server
/// may coalesce ranges) are dropped.
///
/// Network reads are gathered into pieces of about 64 KiB (or one unit, when units are larger): reads
/// of 4-8 KiB each checked and written on their own made the tarball's update (zsync's 4 KiB blocks)
/// hash one or two blocks per call, where vector lanes take 16, and write 3,400 times into the file the
/// assembly writes too. Reads that already hold a whole piece, aligned, are handed on in place.
final class UnitCollector {
    typealias Deliver = (Range<Int>, UnsafeRawBufferPointer) throws -> Range<Int>

    private let unit: Int
    private let capacity: Int
    private let wanted: [Range<Int>]
    private let buffer: UnsafeMutableRawPointer
    private var pendingStart = 0
    private var pendingCount = 0
    /// The parts of `wanted` accepted by `deliver` so far.
    private(set) var accepted = ByteRangeSet()

    init(unit: Int, wanted: [Range<Int>], batch: Int = 64 << 10) {
        self.unit = max(1, unit)
        capacity = max(1, batch / self.unit) * self.unit
        self.wanted = wanted
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Takes bytes that belong at `offset`.
    func add(offset: Int, bytes: UnsafeRawBufferPointer, deliver: Deliver) throws {
        let end = offset + bytes.count
        for range in wanted where range.lowerBound < end && offset < range.upperBound {
            let lower = max(range.lowerBound, offset)
            let upper = min(range.upperBound, end)
            try feed(at: lower, UnsafeRawBufferPointer(rebasing: bytes[(lower - offset)..<(upper - offset)]),
                deliver: deliver)
            if upper == range.upperBound { try flush(deliver) }
        }
    }

    private func feed(at start: Int, _ bytes: UnsafeRawBufferPointer, deliver: Deliver) throws {
        var position = start
        var rest = bytes
        if pendingCount > 0 && pendingStart + pendingCount != position { try flush(deliver) }
        while !rest.isEmpty {
            if pendingCount == 0 && position % unit == 0 && rest.count >= capacity {
                let whole = rest.count / unit * unit
                try hand(position..<(position + whole), UnsafeRawBufferPointer(rebasing: rest[..<whole]), deliver)
                position += whole
                rest = UnsafeRawBufferPointer(rebasing: rest[whole...])
                continue
            }
            if pendingCount == 0 { pendingStart = position }
            let take = min(rest.count, capacity - pendingCount)
            (buffer + pendingCount).copyMemory(from: rest.baseAddress!, byteCount: take)
            pendingCount += take
            position += take
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if pendingCount == capacity { try flushWholeUnits(deliver) }
        }
    }

    /// Hands on what is buffered (at the end of a range or of the reply).
    func flush(_ deliver: Deliver) throws {
        guard pendingCount > 0 else { return }
        let range = pendingStart..<(pendingStart + pendingCount)
        pendingCount = 0
        try hand(range, UnsafeRawBufferPointer(start: buffer, count: range.count), deliver)
    }

    /// Hands on the buffered bytes up to the last unit boundary and keeps the rest: when the buffer is
    /// full, and when the reply broke off (what arrived whole is not asked for again).
    func flushWholeUnits(_ deliver: Deliver) throws {
        let end = (pendingStart + pendingCount) / unit * unit
        guard end > pendingStart else { return }
        let count = end - pendingStart
        let range = pendingStart..<end
        let kept = pendingCount - count
        pendingStart = end
        pendingCount = kept
        do {
            try hand(range, UnsafeRawBufferPointer(start: buffer, count: count), deliver)
        } catch {
            // The kept bytes are not at the buffer's start yet: nothing stays that could be handed on wrong.
            pendingCount = 0
            throw error
        }
        if kept > 0 { buffer.copyMemory(from: buffer + count, byteCount: kept) }
    }

    private func hand(_ range: Range<Int>, _ bytes: UnsafeRawBufferPointer, _ deliver: Deliver) throws {
        accepted.insert(try deliver(range, bytes))
    }
}
