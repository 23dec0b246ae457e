import Wire
import FIB

/// A compiled FIB: the engine that owns it, its current snapshot, and names for its action slots.
public struct CompiledFIB: @unchecked Sendable {
    public let engine: FIBEngine
    /// The current snapshot (owned by the engine).
    public var snapshot: FIBSnapshot { engine.snapshot.pointee }
    /// `actionNames[i]` names action slot i: "ilm 100", "vni 5000", "ftn default:10.0.0.0/8".
    public let actionNames: [String]
    public let portNames: [String]
    /// Frees the FIB's memory; only once nothing reads it.
    public func release() { engine.release() }
}

/// Compiles intent into an immutable snapshot: validates the whole document first, so an invalid one produces
/// nothing; then loads it into a `FIBEngine` as one transaction (every rewrite precomputed in network order).
public enum FIBCompiler {
    public static func compile(config: InstanceConfig, fib: FIBSpec, maxEntries: Int = 2_000_000) throws(ValidationError) -> CompiledFIB {
        let engine = try FIBEngine(config: config, maxEntries: max(maxEntries, fib.ilm.count + fib.vni.count + fib.ftn.count))
        try validateDocument(fib, config: config)
        let (early, late) = FIBEngine.nextHopPhases(fib)
        var changes: [FIBChange] = early.map { .add(.nextHop($0)) } + fib.ecmpGroups.map { .add(.ecmpGroup($0)) }
            + late.map { .replace(.nextHop($0)) }
        changes += fib.ilm.sorted { $0.label < $1.label }.map { .add(.ilm($0)) }
        changes += fib.vni.map { .add(.vni($0)) }
        changes += fib.ftn.map { .add(.ftn($0)) }
        changes += fib.macs.map { .add(.mac($0)) }
        do { try engine.apply(changes) } catch {
            engine.release()
            throw error.validationError
        }
        return CompiledFIB(engine: engine, actionNames: engine.slotNames(), portNames: config.ports.map(\.name))
    }

    /// A push action: templates carry label and S (bottom); pipe mode also TC and TTL. `backup` labels, pushed
    /// instead while the next hop is down, follow the primary ones.
    static func pushAction(_ labels: [UInt32], mode: TTLMode, tc: UInt8, ttl: UInt8, backup: [UInt32]? = nil) -> Action {
        var a = Action()
        a.labelCount = UInt8(labels.count)
        a.tc = tc; a.ttl = ttl
        if mode == .uniform { a.flags |= ActionFlags.uniform }
        func templates(_ stack: [UInt32], at base: Int) {
            for (i, l) in stack.enumerated() {
                var bits = l << 12
                if i == stack.count - 1 { bits |= 0x100 }
                if mode == .pipe { bits |= UInt32(tc & 7) << 9 | UInt32(ttl) }
                a.setLabelTemplate(base + i, bits)
            }
        }
        templates(labels, at: 0)
        if let backup {
            templates(backup, at: labels.count)
            a.backupLabelCount = UInt32(backup.count)
        }
        return a
    }
}
