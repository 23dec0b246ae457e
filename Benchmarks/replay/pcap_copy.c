// Same-run baseline for `mplsgate replay`: read a capture with libpcap and write every frame unchanged with
// libpcap, no processing. Build: clang -O2 -o pcap_copy pcap_copy.c -lpcap
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv) {
    char err[PCAP_ERRBUF_SIZE];
    if (argc != 3) { fprintf(stderr, "usage: pcap_copy IN OUT\n"); return 2; }
    pcap_t *in = pcap_open_offline(argv[1], err);
    if (!in) { fprintf(stderr, "%s\n", err); return 1; }
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    pcap_dumper_t *out = pcap_dump_open(dead, argv[2]);
    if (!out) { fprintf(stderr, "%s\n", pcap_geterr(dead)); return 1; }
    struct pcap_pkthdr *h;
    const u_char *data;
    long n = 0;
    while (pcap_next_ex(in, &h, &data) == 1) { pcap_dump((u_char *)out, h, data); n++; }
    pcap_dump_close(out);
    printf("%ld\n", n);
    return 0;
}
