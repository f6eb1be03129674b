#if canImport(Glibc)
import Glibc
#endif

/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, and all three historical forms in.
public enum HTTPDate {
    private static let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Formats seconds since the epoch as an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    public static func format(_ seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Built as bytes: a server formats one of these for every reply.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(29)
        func digits(_ value: Int, count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                bytes.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        bytes += weekdays[Int(parts.tm_wday)].utf8
        bytes += ", ".utf8
        digits(Int(parts.tm_mday), count: 2)
        bytes.append(UInt8(ascii: " "))
        bytes += months[Int(parts.tm_mon)].utf8
        bytes.append(UInt8(ascii: " "))
        digits(Int(parts.tm_year) + 1900, count: 4)
        bytes.append(UInt8(ascii: " "))
        digits(Int(parts.tm_hour), count: 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), count: 2)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), count: 2)
        bytes += " GMT".utf8
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses an IMF-fixdate, an RFC 850 date or an asctime date; nil for anything else.
    public static func parse(_ text: String) -> Int? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        var day: Int?, month: Int?, year: Int?, clock: String?
        switch fields.count {
        case 6 where fields[0].hasSuffix(",") && fields[5] == "GMT":
            // Sun, 06 Nov 1994 08:49:37 GMT
            day = number(fields[1], digits: 2...2)
            month = months.firstIndex(of: fields[2])
            year = number(fields[3], digits: 4...4)
            clock = fields[4]
        case 4 where fields[0].hasSuffix(",") && fields[3] == "GMT":
            // Sunday, 06-Nov-94 08:49:37 GMT
            let date = fields[1].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard date.count == 3, let shortYear = number(date[2], digits: 2...2) else { return nil }
            day = number(date[0], digits: 2...2)
            month = months.firstIndex(of: date[1])
            // RFC 9110: a two-digit year more than 50 years in the future is in the past century.
            year = shortYear + (shortYear < 70 ? 2000 : 1900)
            clock = fields[2]
        case 5 where weekdays.contains(fields[0]):
            // Sun Nov  6 08:49:37 1994
            month = months.firstIndex(of: fields[1])
            day = number(fields[2], digits: 1...2)
            clock = fields[3]
            year = number(fields[4], digits: 4...4)
        default:
            return nil
        }
        guard let day, let month, let year, let clock, (1...31).contains(day), year >= 1970 else { return nil }
        let hms = clock.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard hms.count == 3, let hour = number(hms[0], digits: 2...2), let minute = number(hms[1], digits: 2...2),
              let second = number(hms[2], digits: 2...2), hour < 24, minute < 60, second < 61 else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        return Int(timegm(&parts))
    }

    private static func number(_ text: String, digits: ClosedRange<Int>) -> Int? {
        guard digits.contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }
}
