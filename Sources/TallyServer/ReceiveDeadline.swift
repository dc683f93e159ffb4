import NIOCore

/// Bounds the time a peer may take to send one request once it has begun: an HTTP request's
/// head and body, or one binary frame (issue 15: slow senders). The idle timeout cannot do
/// this — a peer that sends a byte every few seconds is never idle — so a connection that
/// trickles a request (slowloris) would otherwise hold its buffers, and a connection slot,
/// forever.
///
/// It sits first in the pipeline and sees raw bytes: the first bytes of a request start the
/// clock; the protocol handler above says when the request is whole (``received()``, on the
/// same event loop). One timer per connection at most, re-armed only when it fires with a
/// request still arriving, so a busy keep-alive connection does not schedule a task per
/// request. When the time is up, ``ReceiveTimeoutEvent`` goes up the pipeline: the protocol
/// handler says why (binary) or closes (HTTP).
final class ReceiveDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let timeout: TimeAmount
    /// When the request now arriving began (`nil`: none is).
    private var since: NIODeadline?
    private var timer: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if since == nil {
            let now = NIODeadline.now()
            since = now
            if timer == nil { schedule(context, at: now + timeout) }
        }
        context.fireChannelRead(data)
    }

    /// The request that began is whole. (Bytes already read beyond it — a pipelined request —
    /// start no clock until more arrive; the idle timeout still bounds them.)
    func received() { since = nil }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let since, let context = self.context else { return }
            let due = since + timeout
            if NIODeadline.now() >= due {
                self.since = nil
                context.fireUserInboundEventTriggered(ReceiveTimeoutEvent(timeout: timeout))
            } else {
                schedule(context, at: due)
            }
        }
    }
}

/// A request (or frame) began and was not received whole within `timeout`.
struct ReceiveTimeoutEvent {
    let timeout: TimeAmount
    var seconds: Int64 { timeout.nanoseconds / 1_000_000_000 }
}
