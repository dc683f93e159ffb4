import Dispatch
import Foundation
import Synchronization
import Testing
@testable import TallyStorage

/// ``DerivedSlot``: a value is made once however many ask for it; ``DerivedSlot/madeOrStarted(variant:_:)``
/// never waits — `nil` while the value is not made (its making started once, in the background),
/// the value once it is — and a value made elsewhere is what it returns.
@Suite struct DerivedSlotTests {
    final class Box: Sendable {
        let n: Int
        init(_ n: Int) { self.n = n }
    }

    @Test func madeOrStartedNeverWaitsAndMakesOnce() throws {
        let slot = DerivedSlot()
        let made = Mutex(0)
        let gate = DispatchSemaphore(value: 0)
        let make: @Sendable () -> Box = {
            made.withLock { $0 += 1 }
            gate.wait()  // held until released below
            return Box(7)
        }
        // Not made: nil at once, and the making starts (once, however often asked meanwhile).
        #expect(slot.madeOrStarted(variant: 1, make) == nil)
        for _ in 0..<20 { #expect(slot.madeOrStarted(variant: 1, make) == nil) }
        var started = false
        for _ in 0..<500 where !started {
            started = made.withLock { $0 } == 1
            if !started { usleep(2_000) }
        }
        #expect(started, "the making started in the background")
        // Still being made: asked again, nil without waiting.
        #expect(slot.madeOrStarted(variant: 1, make) == nil)
        gate.signal()
        var value: Box?
        for _ in 0..<500 where value == nil {
            value = slot.madeOrStarted(variant: 1, make)
            if value == nil { usleep(2_000) }
        }
        #expect(value?.n == 7)
        #expect(made.withLock { $0 } == 1, "made once")
        #expect(slot.get(variant: 1) { Box(99) } === value, "the same value for get")
        // Another variant is another value; one made by get is returned at once.
        _ = slot.get(variant: 2) { Box(2) }
        #expect(slot.madeOrStarted(variant: 2) { Box(3) }?.n == 2)
        #expect(slot.existing(Box.self, variant: 3) == nil)
    }
}
