import Logging
import NIOCore
import NIOEmbedded
import SliceSync
import Testing
@testable import SliceSyncServer

/// The HTTP/1.x connection handler on an embedded channel, where the test decides when the client
/// takes replies.
struct HTTP1ConnectionTests {
    /// Counts the reads that reach the socket.
    private final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var reads = 0

        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    private func connection(_ tree: TemporaryDirectory) throws -> (EmbeddedChannel, ReadCounter) {
        let channel = EmbeddedChannel()
        let counter = ReadCounter()
        try channel.pipeline.syncOperations.addHandler(counter)
        try channel.pipeline.syncOperations.addHandler(HTTP1Connection(
            replies: FileReplies(tree: try ServedTree(root: tree.path)), accessLog: false, feed: nil,
            limits: ConnectionLimits(), logger: Logger(label: "test")))
        return (channel, counter)
    }

    private func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test func pipelinedRequestsWaitAndReadingStopsWhileTheClientTakesNoReplies() throws {
        let tree = try TemporaryDirectory()
        try tree.write("small.txt", Array("hello\n".utf8))
        let (channel, counter) = try connection(tree)
        defer { _ = try? channel.finish() }
        let request = "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"

        channel.isWritable = false
        try channel.writeInbound(ByteBuffer(string: String(repeating: request, count: 3)))
        #expect(try written(channel).isEmpty)
        channel.read()
        #expect(counter.reads == 0)

        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        let replies = try written(channel)
        #expect(replies.components(separatedBy: "HTTP/1.1 200 OK\r\n").count == 4)
        #expect(replies.components(separatedBy: "\r\n\r\nhello\n").count == 4)
        #expect(counter.reads == 1)

        // With nothing waiting, a read goes through even while replies are not taken.
        channel.isWritable = false
        channel.read()
        #expect(counter.reads == 2)
    }

    @Test func aRejectedHeadIsAnsweredOnceAndTheRestIgnored() throws {
        let tree = try TemporaryDirectory()
        try tree.write("small.txt", Array("hello\n".utf8))
        let (channel, _) = try connection(tree)
        try channel.writeInbound(ByteBuffer(string: "GET /small.txt HTTP/1.1\r\nBad Name: x\r\n\r\n" +
            "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "GET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n"))
        let replies = try written(channel)
        #expect(replies == "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(!channel.isActive)
    }
}
