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
enum { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_ARRAY = 2, BPF_MAP_TYPE_PERCPU_ARRAY = 6, BPF_MAP_TYPE_RINGBUF = 27, BPF_MAP_TYPE_TASK_STORAGE = 29 };
enum { BPF_F_NO_PREALLOC = 1 };
enum { BPF_LOCAL_STORAGE_GET_F_CREATE = 1 };
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

// Wake the reader once per WAKE_AT bytes written, not once per record:
// a wakeup is an irq_work, an interrupt the traced program's own CPU takes
// (in a VM, a trap to the hypervisor), and it cost the program more than
// the recording itself. Asking for one on every record past a threshold
// (until the reader has caught up) was as bad. The reader also polls every
// 20 ms, so a wakeup lost to two CPUs submitting at once only delays it.
#define BPF_RB_NO_WAKEUP 1
#define BPF_RB_FORCE_WAKEUP 2
#define BPF_RB_AVAIL_DATA 0
#define WAKE_SHIFT 18 // 256 KiB
// A record's room in the ring: an 8-byte header, rounded up to 8 bytes.
#define ROOM(size) ((((size) + 8) + 7) & ~7ULL)

static __always_inline void submit_sized(void *e, __u64 size)
{
	// A socket event's time is taken last: the kernel stores the new state
	// right after the tracepoint returns, so the event is timed as close to
	// that moment as this program can (a call that read the old state must
	// not seem to start after the change).
	struct hc_event *ev = e;
	if (ev->kind < 10)
		ev->ts = bpf_ktime_get_ns();
	// The data not yet read, this record included: wake the reader when
	// this record took it past a multiple of 256 KiB.
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 room = ROOM(size);
	int cross = avail >= room && (avail >> WAKE_SHIFT) != ((avail - room) >> WAKE_SHIFT);
	bpf_ringbuf_submit(e, cross ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

#define submit(e) submit_sized((e), sizeof(*(e)))

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
	return bpf_core_cast(net, struct net)->ns.inum;
}

// Direct loads through bpf_core_cast (a read-only, fault-checked pointer of
// the kernel's type): one load per field, not a bpf_probe_read_kernel call.
static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return net_inum(bpf_core_cast(sk, struct sock)->__sk_common.skc_net.net);
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
	// e->ts is taken in submit(), last.
	e->sk = (__u64)sk;
	e->kind = kind;
	e->tid = (__u32)id;
	e->tgid = id >> 32;
	e->netns = netns;
	return e;
}

// The socket's own addresses, as the tcp/sock tracepoints store them
// (TP_STORE_ADDR_PORTS): inet_saddr/inet_sport for the local end.
static __always_inline void fill_from_sock(struct hc_event *e, const struct sock *sk_in)
{
	const struct sock *sk = bpf_core_cast(sk_in, struct sock);
	const struct inet_sock *inet = bpf_core_cast(sk_in, struct inet_sock);
	__u16 family = sk->__sk_common.skc_family;
	e->family = family;
	e->sport = __builtin_bswap16(inet->inet_sport);
	e->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (family == AF_INET6) {
		// The kernel's in6_addr is a union: read whole, with the helper.
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__be32 s = inet->inet_saddr;
		__be32 d = sk->__sk_common.skc_daddr;
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
	struct net_device *dev = bpf_core_cast(skb, struct sk_buff)->dev;
	if (!dev)
		return 0;
	return net_inum(bpf_core_cast(dev, struct net_device)->nd_net.net);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(hc_state, const struct sock *sk, int oldstate, int newstate)
{
	if (bpf_core_cast(sk, struct sock)->sk_protocol != IPPROTO_TCP)
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
	submit(e);
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(hc_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	__u32 ns = 0;
	int full = 0;
	int state = 0;
	if (sk) {
		state = bpf_core_cast(sk, struct sock)->__sk_common.skc_state;
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
	submit(e);
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
	e->old_state = bpf_core_cast(sk, struct sock)->__sk_common.skc_state;
	submit(e);
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

// ==== exec: the traced program's socket calls (tp_btf on raw syscalls) ====
//
// Entry: the call's arguments, the socket its descriptor names (read from
// the task's descriptor table: 4-tuple, state, bytes handed) and the
// address or option it passes, kept per thread. Exit: the same socket read
// again (or the new descriptor's, for socket/accept/dup), one record out.
// Only the traced process tree (`pids`, followed through fork) and only
// calls on TCP sockets reach userspace.

struct pt_regs {
	unsigned long r10;
	unsigned long r9;
	unsigned long r8;
	unsigned long dx;
	unsigned long si;
	unsigned long di;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
	unsigned long *close_on_exec;
	unsigned long *open_fds;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	int exit_code;
	struct files_struct *files;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct tcp_sock {
	__u32 write_seq;
	__u32 snd_nxt;
	__u64 bytes_sent;
	__u64 bytes_retrans;
} __attribute__((preserve_access_index));

enum { HC_CALL = 10, HC_FORK = 11, HC_EXIT = 12 };

// How a watched call names its socket (the `watched` map's value).
enum {
	FD_ARG0 = 1,   // the descriptor is the first argument
	FD_BETWEEN = 2, // splice/copy_file_range: the third, else the first
	FD_NONE = 3,   // socket(): no descriptor yet
	FD_SOCKOPT = 4, // setsockopt: the first, and the option's value
	FD_ADDR = 5,   // bind/connect: the first, and the address
	FD_NEWFD = 6,  // accept, dup: the first; the result is a new descriptor
	FD_ANY = 7,    // close_range, io_uring_setup: recorded whatever the descriptors
	FD_EXEC = 8,   // execve: recorded, with (the start of) its path
	FD_EXECAT = 9, // execveat: the same, the path in the second argument
	FD_MMSG = 10,  // sendmmsg: the first; at exit, the bytes of each message sent
};

// struct mmsghdr { struct msghdr msg_hdr; unsigned int msg_len; } on the
// 64-bit ABIs this runs on: 64 bytes, msg_len at 56 (uapi, not kernel
// internals: no CO-RE needed). At most MMSG_MAX entries are added up in
// the kernel; a call that sent more is left to userspace.
#define MMSGHDR_SIZE 64
#define MMSG_LEN_AT 56
#define MMSG_MAX 32

struct hc_sockinfo {
	__u64 sk;
	__u64 ino;
	__u64 handed;   // bytes sent once + not yet sent (TCP_INFO's view)
	__u16 family;
	__u16 sport;    // local port, host order
	__u16 dport;
	__u16 state;
	__u8 saddr[16]; // local address (getsockname's)
	__u8 daddr[16];
};

struct hc_call {
	__u64 ts;       // exit, CLOCK_MONOTONIC
	__u64 start;    // entry
	__u32 kind;     // HC_CALL / HC_FORK / HC_EXIT
	__u32 tid;
	__u32 tgid;
	__s32 nr;
	__s64 ret;
	__u64 args[6];
	__s32 fd;       // the descriptor whose socket `before` is
	__u32 pad;
	struct hc_sockinfo before; // at entry
	struct hc_sockinfo after;  // at exit (socket/accept/dup: the new descriptor)
	__u8 addr[32];  // bind/connect: the sockaddr; setsockopt: the value
	__u64 files;    // the descriptor table (fork: the parent's)
	__u64 files2;   // fork: the child's table; execve: the close-on-exec bitmap;
	                // sendmmsg: the bytes its messages sent (msg_len added up)
	__u32 child;    // fork: the child's tid; execve, sendmmsg: 1 when files2 is known
	__u32 child_tgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

// By system call number: how the call names its socket (0: not watched).
// An array: its lookup is one bounds check and a load.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

// The call in progress, per thread: task-local storage (no hashing, no
// delete; the kernel frees it with the task). `kind` is 0 between calls.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct hc_call);
} inflight SEC(".maps");

// The socket behind descriptor `fd` of task `t`, when it is a TCP socket
// of IPv4 or IPv6. Read with direct loads: the task is BTF-typed, and each
// pointer taken from the descriptor table is cast to its kernel type
// (bpf_core_cast: a read-only, fault-checked BTF pointer), so a field costs
// one load instead of a bpf_probe_read_kernel call. Only the table slot
// itself, an index into an array, is read with the helper.
static __always_inline struct sock *sock_of_fd(struct task_struct *t, long fd, __u64 *ino)
{
	if (fd < 0)
		return 0;
	struct files_struct *files = t->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd >= fdt->max_fds)
		return 0;
	struct file **arr = fdt->fd;
	struct file *slot = 0;
	if (bpf_probe_read_kernel(&slot, sizeof(slot), &arr[fd]) || !slot)
		return 0;
	struct file *f = bpf_core_cast(slot, struct file);
	struct inode *in = f->f_inode;
	if (!in || (in->i_mode & 0170000) != 0140000)
		return 0;
	struct socket *so = bpf_core_cast(f->private_data, struct socket);
	if (!so)
		return 0;
	struct sock *sk = so->sk;
	if (!sk || sk->sk_protocol != IPPROTO_TCP)
		return 0;
	__u16 fam = sk->__sk_common.skc_family;
	if (fam != AF_INET && fam != AF_INET6)
		return 0;
	*ino = in->i_ino;
	return sk;
}

static __always_inline void read_sock(struct hc_sockinfo *s, struct sock *sk_in, __u64 ino)
{
	const struct sock *sk = bpf_core_cast(sk_in, struct sock);
	const struct inet_sock *inet = bpf_core_cast(sk_in, struct inet_sock);
	const struct tcp_sock *tp = bpf_core_cast(sk_in, struct tcp_sock);
	s->sk = (__u64)sk_in;
	s->ino = ino;
	__u16 family = sk->__sk_common.skc_family;
	s->family = family;
	s->state = sk->__sk_common.skc_state;
	s->sport = __builtin_bswap16(inet->inet_sport);
	s->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (family == AF_INET6) {
		// The kernel's in6_addr is a union: read whole, with the helper.
		BPF_CORE_READ_INTO(&s->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&s->daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__be32 a = sk->__sk_common.skc_rcv_saddr;
		if (!a)
			a = inet->inet_saddr;
		__be32 d = sk->__sk_common.skc_daddr;
		__builtin_memcpy(s->saddr, &a, 4);
		__builtin_memcpy(s->daddr, &d, 4);
	}
	__u32 wseq = tp->write_seq;
	__u32 nxt = tp->snd_nxt;
	__u64 sent = tp->bytes_sent;
	__u64 re = tp->bytes_retrans;
	__s32 notsent = (__s32)(wseq - nxt);
	s->handed = sent - re + (notsent > 0 ? notsent : 0);
}

static __always_inline int traced(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return bpf_map_lookup_elem(&pids, &tgid) != 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(hc_sys_enter, struct pt_regs *regs, long id)
{
	if (!traced())
		return 0;
	__u32 nr = id;
	__u8 *how = bpf_map_lookup_elem(&watched, &nr);
	if (!how || !*how)
		return 0;
	struct task_struct *t = bpf_get_current_task_btf();
	struct hc_call *c = bpf_task_storage_get(&inflight, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return 0;
	__builtin_memset(c, 0, sizeof(*c));
	// Timed before the socket is read, as ptrace times a call before asking
	// TCP_INFO: a state change after this moment may not be in `before`.
	c->start = bpf_ktime_get_ns();
	c->args[0] = regs->di;
	c->args[1] = regs->si;
	c->args[2] = regs->dx;
	c->args[3] = regs->r10;
	c->args[4] = regs->r8;
	c->args[5] = regs->r9;
	__u64 ino = 0;
	struct sock *sk = 0;
	long fd = (long)(int)c->args[0];
	if (*how == FD_BETWEEN) {
		long out = (long)(int)c->args[2];
		sk = sock_of_fd(t, out, &ino);
		if (sk)
			fd = out;
	}
	int any = *how == FD_NONE || *how == FD_ANY || *how == FD_EXEC || *how == FD_EXECAT;
	if (!sk && !any)
		sk = sock_of_fd(t, fd, &ino);
	if (!sk && !any)
		return 0; // not a TCP socket: not shown
	if (sk)
		read_sock(&c->before, sk, ino);
	c->fd = fd;
	if (*how == FD_ADDR) {
		__u32 len = c->args[2];
		if (len > sizeof(c->addr))
			len = sizeof(c->addr);
		bpf_probe_read_user(c->addr, len & 31, (void *)c->args[1]);
	} else if (*how == FD_SOCKOPT) {
		bpf_probe_read_user(c->addr, 8, (void *)c->args[3]);
	} else if (*how == FD_EXEC || *how == FD_EXECAT) {
		bpf_probe_read_user_str(c->addr, sizeof(c->addr), (void *)c->args[*how == FD_EXEC ? 0 : 1]);
		// Which of descriptors 0..63 this execve closes if it succeeds:
		// open and marked close-on-exec at entry. Read here, in the
		// kernel: after the execve the new program may have reused the
		// numbers before userspace could look.
		struct files_struct *files = BPF_CORE_READ(t, files);
		struct fdtable *fdt = files ? BPF_CORE_READ(files, fdt) : 0;
		if (fdt) {
			unsigned long coe = 0, open = 0;
			unsigned long *pc = BPF_CORE_READ(fdt, close_on_exec);
			unsigned long *po = BPF_CORE_READ(fdt, open_fds);
			if (pc && po && !bpf_probe_read_kernel(&coe, sizeof(coe), pc) &&
			    !bpf_probe_read_kernel(&open, sizeof(open), po)) {
				c->files2 = coe & open;
				c->child = 1;
			}
		}
	}
	__u64 idt = bpf_get_current_pid_tgid();
	c->tid = (__u32)idt;
	c->tgid = idt >> 32;
	c->nr = nr;
	c->files = (__u64)t->files;
	c->kind = HC_CALL; // last: the record is whole
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(hc_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct hc_call *p = bpf_task_storage_get(&inflight, t, 0, 0);
	if (!p || p->kind != HC_CALL)
		return 0;
	p->kind = 0;
	struct hc_call *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_drop();
		return 0;
	}
	__builtin_memcpy(c, p, sizeof(*c));
	c->kind = HC_CALL;
	c->ret = ret;
	c->ts = bpf_ktime_get_ns();
	__u64 ino = 0;
	struct sock *sk = 0;
	__u8 *how = bpf_map_lookup_elem(&watched, (__u32 *)&c->nr);
	int newfd = how && *how == FD_NONE; // socket(): the result is the descriptor
	if (how && *how == FD_NEWFD)
		newfd = 1;
	if (newfd && ret >= 0)
		sk = sock_of_fd(t, ret, &ino);
	else if (c->before.sk) {
		sk = (struct sock *)c->before.sk;
		ino = c->before.ino;
	}
	if (sk)
		read_sock(&c->after, sk, ino);
	if (how && *how == FD_MMSG && ret > 0 && ret <= MMSG_MAX) {
		// The kernel wrote each message's byte count into the caller's
		// array before returning: read them as it left them.
		__u64 sum = 0;
		int ok = 1;
		for (int i = 0; i < MMSG_MAX; i++) {
			if (i >= ret)
				break;
			__u32 len = 0;
			if (bpf_probe_read_user(&len, sizeof(len),
						(void *)(c->args[1] + i * MMSGHDR_SIZE + MMSG_LEN_AT))) {
				ok = 0;
				break;
			}
			sum += len;
		}
		if (ok) {
			c->files2 = sum;
			c->child = 1;
		}
	}
	submit(c);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(hc_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	if (!bpf_map_lookup_elem(&pids, &ptgid))
		return 0;
	__u32 ctgid = BPF_CORE_READ(child, tgid);
	__u8 one = 1;
	bpf_map_update_elem(&pids, &ctgid, &one, 0);
	struct hc_call *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_drop();
		return 0;
	}
	__builtin_memset(c, 0, sizeof(*c));
	c->kind = HC_FORK;
	c->ts = bpf_ktime_get_ns();
	c->tid = BPF_CORE_READ(parent, pid);
	c->tgid = ptgid;
	c->child = BPF_CORE_READ(child, pid);
	c->child_tgid = ctgid;
	c->files = (__u64)BPF_CORE_READ(parent, files);
	c->files2 = (__u64)BPF_CORE_READ(child, files);
	submit(c);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(hc_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	if (!bpf_map_lookup_elem(&pids, &tgid))
		return 0;
	__u32 tid = BPF_CORE_READ(p, pid);
	struct hc_call *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_drop();
		return 0;
	}
	__builtin_memset(c, 0, sizeof(*c));
	c->kind = HC_EXIT;
	c->ret = BPF_CORE_READ(p, exit_code);
	c->ts = bpf_ktime_get_ns();
	c->tid = tid;
	c->tgid = tgid;
	c->files = (__u64)BPF_CORE_READ(p, files);
	// Which of descriptors 0..63 are still open as the task goes (an
	// io_uring may have closed some without a system call): args[0], a bitmap.
	struct files_struct *files = BPF_CORE_READ(p, files);
	struct fdtable *fdt = files ? BPF_CORE_READ(files, fdt) : 0;
	if (fdt) {
		unsigned int max = BPF_CORE_READ(fdt, max_fds);
		struct file **arr = BPF_CORE_READ(fdt, fd);
		__u64 open = 0;
		for (int i = 0; i < 64; i++) {
			struct file *f = 0;
			if (i >= max)
				break;
			bpf_probe_read_kernel(&f, sizeof(f), &arr[i]);
			if (f)
				open |= 1ULL << i;
		}
		c->args[0] = open;
		c->args[1] = 1; // the bitmap is known
	}
	submit(c);
	return 0;
}
