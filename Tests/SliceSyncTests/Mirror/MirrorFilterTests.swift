import Testing
@testable import SliceSync

@Suite("Mirror filters, as rsync matches them")
struct MirrorFilterTests {
    private func filter(_ rules: [(Bool, String)]) -> MirrorFilter {
        MirrorFilter(rules: rules.map { MirrorFilter.Rule(include: $0.0, pattern: $0.1) })
    }

    @Test func aNameWithoutSlashMatchesTheLastName() {
        let tmp = filter([(false, "*.tmp")])
        #expect(!tmp.includes("a/b/x.tmp", isDirectory: false))
        #expect(tmp.includes("a/b/x.tmpl", isDirectory: false))
        #expect(!filter([(false, "a?c")]).includes("x/abc", isDirectory: false))
        #expect(filter([(false, "a?c")]).includes("a/c", isDirectory: false))
    }

    @Test func anchoredAndDirectoryOnlyPatterns() {
        let build = filter([(false, "/build/")])
        #expect(!build.includes("build", isDirectory: true))
        #expect(!build.includes("build/out/x.o", isDirectory: false))
        #expect(build.includes("src/build/x.o", isDirectory: false))
        #expect(build.includes("build", isDirectory: false))
    }

    @Test func patternsWithASlashMatchTheEndOfThePath() {
        let rule = filter([(false, "foo/bar")])
        #expect(!rule.includes("x/foo/bar", isDirectory: false))
        #expect(!rule.includes("foo/bar", isDirectory: false))
        #expect(rule.includes("x/afoo/bar", isDirectory: false))
        #expect(!filter([(false, "**/cache")]).includes("a/b/cache", isDirectory: true))
    }

    /// The classic "only the C files" set: directories kept so that the walk reaches them.
    @Test func theFirstMatchingRuleDecides() {
        let onlyC = filter([(true, "*/"), (true, "*.c"), (false, "*")])
        #expect(onlyC.includes("a/b/x.c", isDirectory: false))
        #expect(!onlyC.includes("a/b/x.h", isDirectory: false))
        #expect(onlyC.includes("a", isDirectory: true))
        // Without the directory rule, the directories go, and everything in them.
        #expect(!filter([(true, "*.c"), (false, "*")]).includes("a/x.c", isDirectory: false))
        #expect(filter([]).includes("anything/at/all", isDirectory: false))
    }
}
