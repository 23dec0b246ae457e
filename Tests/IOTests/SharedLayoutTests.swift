import CXDP
import FIB
import Testing

/// The structs shared with bpf/steer.bpf.c: Swift must see the layout the C header defines.
@Suite struct SharedLayoutTests {
    @Test func portConfigLayout() {
        #expect(MemoryLayout<mg_port_config>.size == 8 + 16 * 4 + 16 * 16 + 12)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.role) == 0)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v4_count) == 1)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v6_count) == 2)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.vxlan_port_be) == 4)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v4) == 8)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v6) == 8 + 64)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.fast) == 8 + 64 + 256)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.port_index) == 8 + 64 + 256 + 2)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.mac) == 8 + 64 + 256 + 4)
    }

    /// The fast tier's next-hop records are the FIB's own, byte for byte; its entries hold what the program reads.
    @Test func fastTierRecordsMatchTheFIB() {
        #expect(MemoryLayout<mg_fast_next_hop>.size == MemoryLayout<NextHopRecord>.size)
        #expect(MemoryLayout<NextHopRecord>.offset(of: \.port) == 16 && MemoryLayout<NextHopRecord>.offset(of: \.l2Size) == 18)
        #expect(MemoryLayout<NextHopRecord>.offset(of: \.mtu) == 20 && MemoryLayout<NextHopRecord>.offset(of: \.backup) == 24)
        #expect(MemoryLayout<mg_fast_entry>.size == 48)
        #expect(MemoryLayout<mg_fast_config>.size == 8 && MemoryLayout<mg_fast_generation>.size == 16)
        #expect(MemoryLayout<mg_fast_ilm_slot>.size == 8 && MemoryLayout<mg_fast_bucket>.size == 8)
        #expect(Int(MG_FAST_BUCKETS) == ECMP.bucketCount)
        #expect(MG_FAST_NO_TARGET == ForwardTarget.none.rawValue)
        #expect(Operation.swap.rawValue == 1 && Operation.pop.rawValue == 2 && ActionFlags.uniform == 1)
        #expect(Payload.mpls.rawValue == 0 && Payload.ipv4.rawValue == 1 && Payload.ipv6.rawValue == 2)
    }

    @Test func rolesMatchPortRole() {
        #expect(Int32(PortRole.core.rawValue) == MG_ROLE_CORE)
        #expect(Int32(PortRole.dc.rawValue) == MG_ROLE_DC)
        #expect(Int32(PortRole.vrf.rawValue) == MG_ROLE_VRF)
    }

    @Test func statIndices() {
        #expect(MG_STAT_REDIRECTED == 0 && MG_STAT_PASSED == 1 && MG_STAT_NO_SOCKET == 2 && MG_STAT_COUNT == 3)
    }
}
