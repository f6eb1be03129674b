import Foundation
import Testing
@testable import SliceSync

struct PreconditionTests {
    static let etag = EntityTag(opaque: "abc-1")
    static let modified = 784_111_777 // Sun, 06 Nov 1994 08:49:37 GMT
    static let modifiedText = "Sun, 06 Nov 1994 08:49:37 GMT"
    static let earlier = "Sun, 06 Nov 1994 08:49:36 GMT"
    static let later = "Sun, 06 Nov 1994 08:49:38 GMT"

    @Test(arguments: [
        (RequestPreconditions(), PreconditionOutcome.proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "\"abc-1\""), .proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "\"x\", \"abc-1\""), .proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "*"), .proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "\"other\""), .preconditionFailed),
        (RequestPreconditions(ifMatch: "W/\"abc-1\""), .preconditionFailed),
        (RequestPreconditions(ifMatch: "abc-1"), .preconditionFailed),
        (RequestPreconditions(ifUnmodifiedSince: earlier), .preconditionFailed),
        (RequestPreconditions(ifUnmodifiedSince: modifiedText), .proceed(honourRange: true)),
        (RequestPreconditions(ifUnmodifiedSince: "yesterday"), .proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "\"abc-1\"", ifUnmodifiedSince: earlier), .proceed(honourRange: true)),
        (RequestPreconditions(ifNoneMatch: "\"abc-1\""), .notModified),
        (RequestPreconditions(ifNoneMatch: "W/\"abc-1\""), .notModified),
        (RequestPreconditions(ifNoneMatch: "*"), .notModified),
        (RequestPreconditions(ifNoneMatch: "\"other\""), .proceed(honourRange: true)),
        (RequestPreconditions(ifNoneMatch: "\"other\"", ifModifiedSince: later), .proceed(honourRange: true)),
        (RequestPreconditions(ifModifiedSince: modifiedText), .notModified),
        (RequestPreconditions(ifModifiedSince: later), .notModified),
        (RequestPreconditions(ifModifiedSince: earlier), .proceed(honourRange: true)),
        (RequestPreconditions(ifModifiedSince: "not a date"), .proceed(honourRange: true)),
        (RequestPreconditions(ifMatch: "\"other\"", ifNoneMatch: "\"abc-1\""), .preconditionFailed),
        (RequestPreconditions(ifRange: "\"abc-1\"", range: "bytes=0-1"), .proceed(honourRange: true)),
        (RequestPreconditions(ifRange: "W/\"abc-1\"", range: "bytes=0-1"), .proceed(honourRange: false)),
        (RequestPreconditions(ifRange: "\"other\"", range: "bytes=0-1"), .proceed(honourRange: false)),
        (RequestPreconditions(ifRange: modifiedText, range: "bytes=0-1"), .proceed(honourRange: true)),
        (RequestPreconditions(ifRange: later, range: "bytes=0-1"), .proceed(honourRange: false)),
        (RequestPreconditions(ifRange: "garbage", range: "bytes=0-1"), .proceed(honourRange: false)),
        (RequestPreconditions(ifRange: "\"other\""), .proceed(honourRange: true)),
    ])
    func evaluatesInRFC9110Order(request: RequestPreconditions, expected: PreconditionOutcome) {
        #expect(PreconditionOutcome.evaluate(request, etag: Self.etag, lastModified: Self.modified) == expected)
    }

    @Test func entityTagListsParseStrictly() {
        #expect(EntityTagCondition.parse(" \"a\" , W/\"b\",\"c\" ") == .tags([.init(opaque: "a"),
            .init(opaque: "b", isWeak: true), .init(opaque: "c")]))
        #expect(EntityTagCondition.parse("*") == .any)
        #expect(EntityTagCondition.parse("\"a") == .malformed)
        #expect(EntityTagCondition.parse("\"a\" \"b\"") == .malformed)
        #expect(EntityTagCondition.parse("") == .malformed)
    }

    @Test func fileTagsChangeWithEveryValidator() throws {
        var raw = stat()
        raw.st_ino = 2
        raw.st_size = 3
        raw.st_mtim = timespec(tv_sec: 4, tv_nsec: 5)
        raw.st_ctim = timespec(tv_sec: 6, tv_nsec: 7)
        var stamp = FileStamp(raw)
        let base = EntityTag(fileStamp: stamp)
        #expect(!base.isWeak)
        var tags: Set<String> = [base.description]
        stamp.inode += 1; tags.insert(EntityTag(fileStamp: stamp).description)
        stamp.size += 1; tags.insert(EntityTag(fileStamp: stamp).description)
        stamp.mtimeNanoseconds += 1; tags.insert(EntityTag(fileStamp: stamp).description)
        stamp.ctimeNanoseconds += 1; tags.insert(EntityTag(fileStamp: stamp).description)
        #expect(tags.count == 5)
    }
}

struct HTTPDateTests {
    @Test(arguments: [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ])
    func parsesAllThreeForms(text: String) {
        #expect(HTTPDate.parse(text) == 784_111_777)
    }

    @Test(arguments: ["", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
                      "Sun, 06 Nov 1994 25:49:37 GMT", "784111777", "Sun, 06 Nov 1994 08:49 GMT"])
    func rejectsOthers(text: String) {
        #expect(HTTPDate.parse(text) == nil)
    }

    @Test func formatsIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.parse(HTTPDate.format(1_795_306_405)) == 1_795_306_405)
    }
}

struct FileResponsePlanTests {
    static let file = FileRepresentation(length: 1000, etag: EntityTag(opaque: "t"), lastModified: 784_111_777,
        contentType: "application/x-tar")

    private func plan(_ preconditions: RequestPreconditions, head: Bool = false) -> FileResponsePlan {
        FileResponsePlan.plan(file: Self.file, preconditions: preconditions, isHead: head, boundary: "B")
    }

    private func header(_ plan: FileResponsePlan, _ name: String) -> String? {
        plan.headers.first { $0.name == name }?.value
    }

    @Test func wholeFile() {
        let reply = plan(RequestPreconditions())
        #expect(reply.status == 200)
        #expect(reply.body == [.file(0..<1000)])
        #expect(header(reply, "Content-Length") == "1000")
        #expect(header(reply, "Accept-Ranges") == "bytes")
        #expect(header(reply, "ETag") == "\"t\"")
        #expect(header(reply, "Last-Modified") == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(header(reply, "Content-Type") == "application/x-tar")
    }

    @Test func headHasGETsHeadersAndNoBody() {
        for preconditions in [RequestPreconditions(), RequestPreconditions(range: "bytes=0-9"),
            RequestPreconditions(range: "bytes=0-9,20-29"), RequestPreconditions(range: "bytes=5000-")] {
            var get = plan(preconditions)
            let head = plan(preconditions, head: true)
            #expect(head.body.isEmpty)
            get.body = []
            #expect(get == head)
        }
    }

    @Test func singleRange() {
        let reply = plan(RequestPreconditions(range: "bytes=-10"))
        #expect(reply.status == 206)
        #expect(header(reply, "Content-Range") == "bytes 990-999/1000")
        #expect(header(reply, "Content-Length") == "10")
        #expect(reply.body == [.file(990..<1000)])
    }

    @Test func multipleRanges() {
        let reply = plan(RequestPreconditions(range: "bytes=100-109,0-9"))
        #expect(reply.status == 206)
        #expect(header(reply, "Content-Type") == "multipart/byteranges; boundary=B")
        #expect(header(reply, "Content-Range") == nil)
        #expect(reply.body.compactMap { if case .file(let r) = $0 { return r } else { return nil } } == [100..<110,
            0..<10])
        #expect(Int(header(reply, "Content-Length") ?? "") == reply.body.reduce(0) { $0 + $1.count })
    }

    @Test func unsatisfiable() {
        let reply = plan(RequestPreconditions(range: "bytes=1000-"))
        #expect(reply.status == 416)
        #expect(header(reply, "Content-Range") == "bytes */1000")
        #expect(header(reply, "Content-Length") == "0")
        #expect(reply.body.isEmpty)
    }

    @Test func invalidRangeAndStaleIfRangeGetTheWholeFile() {
        #expect(plan(RequestPreconditions(range: "bytes=9-1")).status == 200)
        #expect(plan(RequestPreconditions(ifRange: "\"old\"", range: "bytes=0-9")).status == 200)
        #expect(plan(RequestPreconditions(ifRange: "\"t\"", range: "bytes=0-9")).status == 206)
    }

    @Test func conditionalReplies() {
        let notModified = plan(RequestPreconditions(ifNoneMatch: "\"t\""))
        #expect(notModified.status == 304)
        #expect(notModified.body.isEmpty)
        #expect(header(notModified, "ETag") == "\"t\"")
        #expect(header(notModified, "Content-Length") == nil)
        let failed = plan(RequestPreconditions(ifMatch: "\"old\"", range: "bytes=0-9"))
        #expect(failed.status == 412)
        #expect(failed.body.isEmpty)
    }

    @Test func emptyFile() {
        let empty = FileRepresentation(length: 0, etag: EntityTag(opaque: "e"), lastModified: 0,
            contentType: "text/plain")
        let whole = FileResponsePlan.plan(file: empty, preconditions: RequestPreconditions(), isHead: false)
        #expect(whole.status == 200 && whole.body.isEmpty && whole.contentLength == 0)
        let ranged = FileResponsePlan.plan(file: empty, preconditions: RequestPreconditions(range: "bytes=0-"),
            isHead: false)
        #expect(ranged.status == 416)
    }
}
