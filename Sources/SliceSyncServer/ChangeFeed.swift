import Foundation
import NIOCore
import NIOHTTP1
import SliceSync
import Synchronization

/// Announces each rewrite of the tree's manifest to the clients listening on
/// `/.slicesync/.slicesync-events` (Server-Sent Events), so that a live mirror follows at once.
///
/// An event is `id: ID`, `event: manifest`, and the manifest's path as data. Every new listener gets
/// the current event first: a client compares its ID with the last one it acted on (sent back as
/// `Last-Event-ID` when it reconnects) and mirrors again when they differ, so a change made while it
/// was away, or before it connected, is never missed. IDs carry the server's start time, so a restart
/// does not repeat an old one.
public final class ChangeFeed: Sendable {
    private struct State {
        var counter = 0
        var subscribers: [Int: @Sendable (String) -> Void] = [:]
        var nextToken = 0
    }
    private let state = Mutex(State())
    private let epoch = Int(Date().timeIntervalSince1970)

    /// The URL path of the feed.
    public static let path = "/" + TreeNaming.signatureDirectory + "/.slicesync-events"

    /// A feed with nothing announced yet.
    public init() {}

    private func id(_ counter: Int) -> String { "\(epoch)-\(counter)" }

    /// Announces that the manifest was rewritten.
    public func publish() {
        let (id, subscribers) = state.withLock { state in
            state.counter += 1
            return (self.id(state.counter), Array(state.subscribers.values))
        }
        for deliver in subscribers { deliver(id) }
    }

    /// Adds a listener; returns its token and the current event's ID.
    func subscribe(_ deliver: @escaping @Sendable (String) -> Void) -> (token: Int, current: String) {
        state.withLock { state in
            state.nextToken += 1
            state.subscribers[state.nextToken] = deliver
            return (state.nextToken, id(state.counter))
        }
    }

    func unsubscribe(_ token: Int) {
        _ = state.withLock { $0.subscribers.removeValue(forKey: token) }
    }

    /// One event, as sent.
    static func event(_ id: String) -> String {
        "id: \(id)\nevent: manifest\ndata: /\(TreeNaming.signatureDirectory)/\(TreeManifest.fileName)\n\n"
    }

    /// The head of the feed's reply.
    static let headers = [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no")]

    /// Subscribes a connection (or stream) on `loop`: `send` gets the current event at once, then each new
    /// one, and a comment every 15 s so that idle proxies keep the stream open. The caller ends it with
    /// ``FeedListening/stop(_:)``.
    func listen<Listener: AnyObject>(_ listener: Listener, on loop: any EventLoop,
        send: @escaping (Listener, String) -> Void) -> FeedListening {
        let bound = NIOLoopBound((listener, send), eventLoop: loop)
        let (token, current) = subscribe { id in
            loop.execute { bound.value.1(bound.value.0, Self.event(id)) }
        }
        let heartbeat = loop.scheduleRepeatedTask(initialDelay: .seconds(15), delay: .seconds(15)) { _ in
            bound.value.1(bound.value.0, ": keep-alive\n\n")
        }
        send(listener, Self.event(current))
        return FeedListening(token: token, heartbeat: heartbeat)
    }
}

/// One listener's place in the feed.
struct FeedListening {
    let token: Int
    let heartbeat: RepeatedTask

    func stop(_ feed: ChangeFeed?) {
        heartbeat.cancel()
        feed?.unsubscribe(token)
    }
}
