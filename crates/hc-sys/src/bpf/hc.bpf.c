// SPDX-License-Identifier: GPL-2.0 OR MIT
//
// hc-trace's kernel side: BTF-typed tracepoints (tp_btf) only. This kernel
// has no kprobes and refuses fentry/fexit, so nothing here attaches to a
// function. Every event goes out through one ring buffer; a reservation that
// fails is counted in `drops`, which userspace reports.
//
// No vmlinux.h (bpftool is not needed): the few kernel structures read here
// are declared below with only the fields used, marked
// preserve_access_index, so clang emits CO-RE relocations and libbpf fixes
// every offset against the running kernel's BTF (/sys/kernel/btf/vmlinux).

// The kernel's integer types, spelled out: no host kernel headers needed.
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
// Map types (uapi/linux/bpf.h, stable numbers).
enum { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_PERCPU_ARRAY = 6, BPF_MAP_TYPE_RINGBUF = 27 };
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

// ---- the kernel's structures, only the fields read (CO-RE relocated) ----

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct in6_addr {
	__u8 s6_addr[16];
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
	__be32 inet_saddr;
	__be16 inet_sport;
} __attribute__((preserve_access_index));

struct net_device {
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct sk_buff {
	struct net_device *dev;
	unsigned char *head;
	unsigned char *data;
	__u16 network_header;
} __attribute__((preserve_access_index));

// ---- what goes to userspace ----

enum hc_kind {
	HC_STATE = 1,      // sock:inet_sock_set_state
	HC_SEND_RESET = 2, // tcp:tcp_send_reset
	HC_RECV_RESET = 3, // tcp:tcp_receive_reset
	HC_RETRANSMIT = 4, // tcp:tcp_retransmit_skb
	HC_DESTROY = 5,    // tcp:tcp_destroy_sock
};

// 88 bytes, no padding: userspace reads it field by field (bpf/mod.rs).
struct hc_event {
	__u64 ts;      // bpf_ktime_get_ns: CLOCK_MONOTONIC
	__u64 sk;      // the socket's address: its identity while it lives
	__u32 kind;    // enum hc_kind
	__u32 tid;     // the thread the event ran in (softirq: whoever was running)
	__u32 tgid;
	__u32 netns;   // the socket's network namespace (inode number)
	__u16 family;  // AF_INET or AF_INET6
	__u16 sport;   // host order
	__u16 dport;
	__u16 pad;
	__u8 saddr[16]; // AF_INET: the first 4 bytes
	__u8 daddr[16];
	__s32 old_state; // resets: the socket's state (0: no socket)
	__s32 new_state;
	__s32 reason;    // tcp_send_reset: enum sk_rst_reason
	__u32 pad2;
};

// ---- maps ----

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

// Reservations the ring could not take.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// Network namespaces (inode numbers) whose TCP events are kept.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} netns_filter SEC(".maps");

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&drops, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline __u32 net_inum(struct net *net)
{
	if (!net)
		return 0;
	return BPF_CORE_READ(net, ns.inum);
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return net_inum(BPF_CORE_READ(sk, __sk_common.skc_net.net));
}

static __always_inline int wanted(__u32 netns)
{
	return bpf_map_lookup_elem(&netns_filter, &netns) != 0;
}

static __always_inline struct hc_event *reserve(__u32 kind, const void *sk, __u32 netns)
{
	struct hc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	__u64 id = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->sk = (__u64)sk;
	e->kind = kind;
	e->tid = (__u32)id;
	e->tgid = id >> 32;
	e->netns = netns;
	return e;
}

// The socket's own addresses, as the tcp/sock tracepoints store them
// (TP_STORE_ADDR_PORTS): inet_saddr/inet_sport for the local end.
static __always_inline void fill_from_sock(struct hc_event *e, const struct sock *sk)
{
	const struct inet_sock *inet = (const struct inet_sock *)sk;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	e->sport = __builtin_bswap16(BPF_CORE_READ(inet, inet_sport));
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__be32 s = BPF_CORE_READ(inet, inet_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	}
}

struct hc_iphdr {
	__u8 ver_ihl;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct hc_ipv6hdr {
	__u32 ver_tc_flow;
	__u16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

// A reset answering a segment that has no full socket (none, or a
// TIME_WAIT one): the addresses of the segment, reversed (the RST goes back),
// as tcp_send_reset stores them.
static __always_inline void fill_from_skb_reversed(struct hc_event *e, const struct sk_buff *skb)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	unsigned char *data = BPF_CORE_READ(skb, data);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	__u8 ver = 0;
	__be16 ports[2] = {0, 0};
	bpf_probe_read_kernel(&ver, 1, head + nh);
	bpf_probe_read_kernel(ports, sizeof(ports), data);
	e->sport = __builtin_bswap16(ports[1]);
	e->dport = __builtin_bswap16(ports[0]);
	if ((ver >> 4) == 4) {
		struct hc_iphdr ip = {};
		bpf_probe_read_kernel(&ip, sizeof(ip), head + nh);
		e->family = AF_INET;
		__builtin_memcpy(e->saddr, &ip.daddr, 4);
		__builtin_memcpy(e->daddr, &ip.saddr, 4);
	} else {
		struct hc_ipv6hdr ip6 = {};
		bpf_probe_read_kernel(&ip6, sizeof(ip6), head + nh);
		e->family = AF_INET6;
		__builtin_memcpy(e->saddr, ip6.daddr, 16);
		__builtin_memcpy(e->daddr, ip6.saddr, 16);
	}
}

static __always_inline __u32 skb_netns(const struct sk_buff *skb)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (!dev)
		return 0;
	return net_inum(BPF_CORE_READ(dev, nd_net.net));
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hc_state, const struct sock *sk, int oldstate, int newstate)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP)
		return 0;
	__u32 ns = sk_netns(sk);
	if (!wanted(ns))
		return 0;
	struct hc_event *e = reserve(HC_STATE, sk, ns);
	if (!e)
		return 0;
	fill_from_sock(e, sk);
	e->old_state = oldstate;
	e->new_state = newstate;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(hc_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	__u32 ns = 0;
	int full = 0;
	int state = 0;
	if (sk) {
		state = BPF_CORE_READ(sk, __sk_common.skc_state);
		ns = sk_netns(sk);
		full = state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
	} else if (skb) {
		ns = skb_netns(skb);
	} else {
		return 0;
	}
	if (!wanted(ns))
		return 0;
	struct hc_event *e = reserve(HC_SEND_RESET, sk, ns);
	if (!e)
		return 0;
	if (full)
		fill_from_sock(e, sk);
	else if (skb)
		fill_from_skb_reversed(e, skb);
	e->old_state = state;
	e->reason = reason;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int sock_event(__u32 kind, const struct sock *sk)
{
	if (!sk)
		return 0;
	__u32 ns = sk_netns(sk);
	if (!wanted(ns))
		return 0;
	struct hc_event *e = reserve(kind, sk, ns);
	if (!e)
		return 0;
	fill_from_sock(e, sk);
	e->old_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(hc_receive_reset, const struct sock *sk)
{
	return sock_event(HC_RECV_RESET, sk);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(hc_retransmit, const struct sock *sk)
{
	return sock_event(HC_RETRANSMIT, sk);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(hc_destroy, const struct sock *sk)
{
	return sock_event(HC_DESTROY, sk);
}
