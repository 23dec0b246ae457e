// CPcap: libpcap for the replay path. Only IO imports this module.
#ifndef MPLSGATE_CPCAP_SHIM_H
#define MPLSGATE_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
