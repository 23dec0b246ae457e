import MetricsEndpoint
import Testing

/// The text format 0.0.4 as Prometheus parses it: HELP and TYPE once per family, escaped label values, integer
/// counters printed exactly (a 64-bit counter never goes through a Double).
@Suite struct ExpositionTests {
    @Test func familiesSamplesAndEscaping() {
        var x = Exposition()
        x.family("mplsgate_port_rx_packets_total", .counter, "Frames received.\nSecond line \\ slash.")
        x.sample("mplsgate_port_rx_packets_total", [("port", "core0")], UInt64.max)
        x.sample("mplsgate_port_rx_packets_total", [("port", "a\"b\\c\nd")], UInt64(0))
        x.family("mplsgate_port_rx_packets_total", .counter, "twice")
        x.family("mplsgate_fib_generation", .gauge, "Generation.")
        x.sample("mplsgate_fib_generation", [], UInt64(7))
        x.family("mplsgate_ratio", .gauge, "A ratio.")
        x.sample("mplsgate_ratio", [], 0.25)
        x.sample("mplsgate_ratio", [("k", "v")], 3.0)
        x.sample("mplsgate_ratio", [("k", "w")], true)
        let text = String(decoding: x.bytes, as: UTF8.self)
        #expect(text == """
            # HELP mplsgate_port_rx_packets_total Frames received.\\nSecond line \\\\ slash.
            # TYPE mplsgate_port_rx_packets_total counter
            mplsgate_port_rx_packets_total{port="core0"} 18446744073709551615
            mplsgate_port_rx_packets_total{port="a\\"b\\\\c\\nd"} 0
            # HELP mplsgate_fib_generation Generation.
            # TYPE mplsgate_fib_generation gauge
            mplsgate_fib_generation 7
            # HELP mplsgate_ratio A ratio.
            # TYPE mplsgate_ratio gauge
            mplsgate_ratio 0.25
            mplsgate_ratio{k="v"} 3
            mplsgate_ratio{k="w"} 1

            """)
    }
}
