import CXDP
import FIB
import Testing

/// The structs shared with bpf/steer.bpf.c: Swift must see the layout the C header defines.
@Suite struct SharedLayoutTests {
    @Test func portConfigLayout() {
        #expect(MemoryLayout<mg_port_config>.size == 8 + 16 * 4 + 16 * 16)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.role) == 0)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v4_count) == 1)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v6_count) == 2)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.vxlan_port_be) == 4)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v4) == 8)
        #expect(MemoryLayout<mg_port_config>.offset(of: \.v6) == 8 + 64)
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
