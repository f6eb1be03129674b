import Testing
@testable import SliceSync

@Suite("Matching: fine records held by slice")
struct FineRecordsTests {
    func record(_ block: Int) -> HashRecord {
        HashRecord(weak: UInt32(block &* 2_654_435_761 & 0xFFFF_FFFF), strong: UInt64(block) &* 0x9E37_79B9_7F4A_7C15)
    }

    @Test func recordsAreFoundByBlockWhateverTheOrderSlicesArrived() {
        // Four blocks per slice; slices 5, 2 and the file's last, 9 (two blocks), arrive in that order.
        var records = FineRecords(blocksPerSlice: 4)
        for slice in [5, 2] { records.add((slice * 4..<slice * 4 + 4).map(record), slice: slice) }
        records.add([record(36), record(37)], slice: 9)
        records.add([record(0)], slice: 5)  // a table already held stays as it was
        #expect(records.count == 10)
        #expect(records.holds(slice: 2) && records.holds(slice: 5) && records.holds(slice: 9))
        #expect(!records.holds(slice: 0) && !records.holds(slice: 3) && !records.holds(slice: 10))
        for block in 0..<44 {
            let held = (8..<12).contains(block) || (20..<24).contains(block) || (36..<38).contains(block)
            #expect(records[block] == (held ? record(block) : nil))
            if let position = records.position(of: block) {
                #expect(records.strong(at: position) == record(block).strong)
            }
        }
        #expect(records[-1] == nil)
        #expect(records.map(\.block) == [8, 9, 10, 11, 20, 21, 22, 23, 36, 37])
        #expect(records.allSatisfy { $0.record == record($0.block) })
    }

    @Test func rawTablesAreReadAsTheSignatureStoresThem() {
        var bytes: [UInt8] = []
        for block in 12..<16 {
            let value = record(block)
            bytes += withUnsafeBytes(of: value.weak.bigEndian) { Array($0) }
            bytes += withUnsafeBytes(of: value.strong.bigEndian) { Array($0) }
        }
        // Slices 3 and 4 (the file's last, of two blocks) laid end to end, as a fetch delivers them.
        for block in 16..<18 {
            let value = record(block)
            bytes += withUnsafeBytes(of: value.weak.bigEndian) { Array($0) }
            bytes += withUnsafeBytes(of: value.strong.bigEndian) { Array($0) }
        }
        var records = FineRecords(blocksPerSlice: 4)
        records.add([(3, 4), (4, 2)], tables: bytes)
        #expect((12..<18).allSatisfy { records[$0] == record($0) })
        #expect(records[18] == nil && records.count == 6)
        // Tables whose size does not add up, or that are held already, are refused.
        records.add([(5, 4)], tables: Array(bytes.prefix(47)))
        records.add([(3, 4)], tables: Array(bytes.prefix(48)))
        #expect(!records.holds(slice: 5) && records.count == 6)
    }
}

extension FineRecords {
    /// Adds one slice's records given as values, encoded as a signature stores them.
    mutating func add(_ records: [HashRecord], slice: Int) {
        var bytes: [UInt8] = []
        for record in records.prefix(blocksPerSlice) {
            withUnsafeBytes(of: record.weak.bigEndian) { bytes += $0 }
            withUnsafeBytes(of: record.strong.bigEndian) { bytes += $0 }
        }
        add([(slice, Swift.min(records.count, blocksPerSlice))], tables: bytes)
    }
}
