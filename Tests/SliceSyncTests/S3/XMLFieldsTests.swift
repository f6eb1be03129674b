@testable import SliceSync
import Testing

@Suite struct XMLFieldsTests {
    @Test func readsAListingPage() {
        let page = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix/>
            <Contents><Key>a &amp; b/&lt;c&gt;.bin</Key><Size>10</Size><ETag>&quot;abc&quot;</ETag></Contents>
            <Contents><Key>caf&#233;/&#x263A;</Key><Size>0</Size><ETag>"d41d8"</ETag></Contents>
            <IsTruncated>true</IsTruncated>
            <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J</NextContinuationToken>
            </ListBucketResult>
            """[...]
        let entries = XMLFields.all("Contents", in: page)
        #expect(entries.count == 2)
        #expect(XMLFields.first("Key", in: entries[0]) == "a & b/<c>.bin")
        #expect(XMLFields.first("ETag", in: entries[0]) == "\"abc\"")
        #expect(XMLFields.first("Key", in: entries[1]) == "café/☺")
        #expect(XMLFields.first("Prefix", in: page) == "")
        #expect(XMLFields.first("IsTruncated", in: page) == "true")
        #expect(XMLFields.first("NextContinuationToken", in: page) == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J")
        // A longer name that starts the same is another element.
        #expect(XMLFields.first("Name", in: "<NameX>no</NameX><Name>yes</Name>") == "yes")
        #expect(XMLFields.first("Missing", in: page) == nil)
        #expect(XMLFields.unescape("broken & text &bogus; &#xZZ;") == "broken & text &bogus; &#xZZ;")
    }

    @Test func readsAnErrorAfterA200() {
        let body = "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"[...]
        #expect(XMLFields.first("Code", in: body) == "InternalError")
        #expect(XMLFields.first("Message", in: body) == "We encountered an internal error.")
    }
}
