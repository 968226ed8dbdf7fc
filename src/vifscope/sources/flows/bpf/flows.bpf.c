// SPDX-License-Identifier: GPL-2.0
/* vifscope flows: per-tap flow accounting, attached with TCX to a tap's ingress and egress.
 *
 * Self-contained on purpose: linux/bpf.h and libbpf's bpf_helpers.h (Debian's libbpf-dev), no
 * vmlinux.h and no CO-RE relocations, so the object loads on any kernel with TCX (6.6+) and a
 * prebuilt copy in the package is as good as a fresh compile. Built by scripts/setup.sh:
 *   clang -O2 -g -target bpf -c flows.bpf.c -o flows.bpf.o
 *
 * Direction is the guest's: the tap's ingress carries what the guest sends (OUT = 0), the
 * tap's egress what it receives (IN = 1).
 * bytes:   L2 frame bytes as a NIC would count them: skb->len (Ethernet header included, no
 *          FCS), plus one copy of the headers per extra segment of a GSO packet.
 * packets: gso_segs of a GSO packet (the segments the guest / wire sees), else 1.
 * payload: bytes after the TCP/UDP/ICMP header (after the IP header for other protocols),
 *          which is what a tool like iperf3 counts; 0 for non-IP frames.
 * Returns TC_ACT_UNSPEC (TCX_NEXT): the packet goes on to the next program and to the legacy
 * ingress / clsact qdisc's filters untouched.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define DIR_OUT 0
#define DIR_IN 1

struct flow_key {
	__u32 ifindex;
	__u8 dir;
	__u8 proto;      /* IP protocol; 0 for a non-IP frame */
	__u16 eth_proto; /* host byte order */
	__u8 src_mac[6];
	__u8 dst_mac[6];
	__u8 src[16]; /* IPv4: the first 4 bytes */
	__u8 dst[16];
	__u16 sport; /* host byte order; ICMP: type */
	__u16 dport; /* ICMP: code */
};

struct flow_val {
	__u64 bytes;
	__u64 packets;
	__u64 payload;
	__u64 first_ns; /* bpf_ktime_get_ns() when the flow was inserted (not per packet: cheaper) */
};

/* 0: packets seen, 1: flows inserted, 2: inserts that failed (counted, not recorded) */
#define STAT_PACKETS 0
#define STAT_INSERTED 1
#define STAT_FAILED 2
#define STAT_N 3

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536); /* the loader sets its own before load */
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_N);
	__type(key, __u32);
	__type(value, __u64);
} flow_stats SEC(".maps");

static __always_inline void bump(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&flow_stats, &which);

	if (n)
		*n += 1; /* per-CPU: no atomics needed */
}

/* L4 ports (or ICMP type/code) at off; returns the L4 header length, 0 when not parsed. */
static __always_inline __u32 read_l4(struct __sk_buff *skb, __u32 off, struct flow_key *k)
{
	__u8 b[14];

	if (k->proto == IPPROTO_TCP) {
		if (bpf_skb_load_bytes(skb, off, b, 14))
			return 0;
		k->sport = ((__u16)b[0] << 8) | b[1];
		k->dport = ((__u16)b[2] << 8) | b[3];
		return (__u32)(b[12] >> 4) * 4;
	}
	if (k->proto == IPPROTO_UDP || k->proto == IPPROTO_ICMP || k->proto == IPPROTO_ICMPV6) {
		if (bpf_skb_load_bytes(skb, off, b, 4))
			return 0;
		if (k->proto == IPPROTO_UDP) {
			k->sport = ((__u16)b[0] << 8) | b[1];
			k->dport = ((__u16)b[2] << 8) | b[3];
		} else {
			k->sport = b[0];
			k->dport = b[1];
		}
		return 8;
	}
	return 0;
}

/* Fills the key's L3/L4 part; returns the header bytes (L2 + L3 + L4) of one segment. */
static __always_inline __u32 read_ip(struct __sk_buff *skb, struct flow_key *k)
{
	__u32 off = ETH_HLEN;

	if (k->eth_proto == ETH_P_IP) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
			return 0;
		k->proto = ip.protocol;
		__builtin_memcpy(k->src, &ip.saddr, 4);
		__builtin_memcpy(k->dst, &ip.daddr, 4);
		off += (__u32)ip.ihl * 4;
		if (ip.frag_off & bpf_htons(0x1fff)) /* a later fragment: no L4 header */
			return off;
	} else if (k->eth_proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
			return 0;
		k->proto = ip6.nexthdr; /* extension headers are not walked: they key as themselves */
		__builtin_memcpy(k->src, &ip6.saddr, 16);
		__builtin_memcpy(k->dst, &ip6.daddr, 16);
		off += sizeof(ip6);
	} else {
		return 0;
	}
	return off + read_l4(skb, off, k);
}

static __always_inline int account(struct __sk_buff *skb, __u8 dir)
{
	struct flow_key k;
	struct flow_val *v;
	__u8 eth[ETH_HLEN];
	__u64 segs = skb->gso_segs ? skb->gso_segs : 1;
	__u64 bytes = skb->len, payload = 0;
	__u32 hdr;

	__builtin_memset(&k, 0, sizeof(k));
	bump(STAT_PACKETS);
	if (bpf_skb_load_bytes(skb, 0, eth, ETH_HLEN))
		return TC_ACT_UNSPEC;
	k.ifindex = skb->ifindex;
	k.dir = dir;
	__builtin_memcpy(k.dst_mac, eth, 6);
	__builtin_memcpy(k.src_mac, eth + 6, 6);
	k.eth_proto = ((__u16)eth[12] << 8) | eth[13];
	hdr = read_ip(skb, &k);
	if (hdr && hdr < skb->len) {
		payload = skb->len - hdr;
		bytes += (segs - 1) * hdr;
	}
	v = bpf_map_lookup_elem(&flows, &k);
	if (!v) {
		struct flow_val nv = {.bytes = bytes, .packets = segs, .payload = payload, .first_ns = bpf_ktime_get_ns()};

		if (bpf_map_update_elem(&flows, &k, &nv, BPF_NOEXIST) == 0) {
			bump(STAT_INSERTED);
			return TC_ACT_UNSPEC;
		}
		v = bpf_map_lookup_elem(&flows, &k); /* another CPU inserted it meanwhile */
		if (!v) {
			bump(STAT_FAILED);
			return TC_ACT_UNSPEC;
		}
	}
	__sync_fetch_and_add(&v->bytes, bytes);
	__sync_fetch_and_add(&v->packets, segs);
	__sync_fetch_and_add(&v->payload, payload);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int vifscope_fl_in(struct __sk_buff *skb) /* the tap's ingress: the guest sends */
{
	return account(skb, DIR_OUT);
}

SEC("tc")
int vifscope_fl_eg(struct __sk_buff *skb) /* the tap's egress: the guest receives */
{
	return account(skb, DIR_IN);
}

char LICENSE[] SEC("license") = "GPL";
