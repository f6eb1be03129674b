import Testing
@testable import SliceSync

@Suite("The change feed's event parser")
struct EventStreamParserTests {
    /// Events split anywhere across chunks, comments, CRLF and other event types.
    @Test(arguments: [1, 3, 7, 1000])
    func eventsAreFoundWhateverTheChunks(size: Int) {
        let text = ": hello\r\nid: a-1\r\nevent: manifest\r\ndata: /.slicesync/.slicesync-manifest\r\n\r\n"
            + "id: a-2\nevent: other\ndata: x\n\n: keep-alive\n\nid: a-3\ndata: y\n\nevent: manifest\ndata: z\n\n"
        let bytes = Array(text.utf8)
        var parser = EventStreamParser()
        var ids: [String] = []
        for start in stride(from: 0, to: bytes.count, by: size) {
            let chunk = Array(bytes[start..<min(bytes.count, start + size)])
            ids += chunk.withUnsafeBytes { parser.take($0) }
        }
        // a-2 is of another type; the last event has no id and takes the last one seen (a-3).
        #expect(ids == ["a-1", "a-3", "a-3"])
    }
}
