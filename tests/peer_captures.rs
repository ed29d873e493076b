//! `hc-trace analyze` on captures nobody here wrote: the public test traces
//! in ../shared/peer-captures/ (zeek, suricata-verify, tcpdump,
//! PcapPlusPlus, tcpreplay; its SOURCES.md says where each comes from).
//! The files are used by path and never copied into the repository.
//!
//! For every file, three things are checked:
//! - hand-verified facts ([`EXPECTED`]): per connection who closed, which
//!   ends sent a FIN, every RST with its inferred kind, the half-close bytes
//!   (for files of more than 12 connections, the same as counts); each RST
//!   kind was checked by hand against the segments (tshark -V);
//! - tshark, as the independent decoder: per connection (tshark's
//!   `tcp.stream`) the segment count, the first FIN and the first RST of
//!   each end (by frame number), the closer, and the distinct payload bytes
//!   of each direction (the union of the sequence ranges tshark shows);
//! - the same at snap lengths 96 and 68 (tcpdump's old defaults), on copies
//!   cut with `editcap -s` in a temporary directory: the facts must be those
//!   of the whole capture, except where the cut took the TCP flags away
//!   ([`CUT_DIFFERENT`], with the frames analyze counts as too short).
//!
//! The agreement figures of each file are printed (run with --nocapture).
//!
//! Requirements: tshark and editcap (scripts/setup installs them) and the
//! folder itself. Like a tool, the folder is a requirement: under
//! `--features privileged` (scripts/test, CI) the tests fail when it is
//! missing; without the feature they are ignored (docs/testing.md).

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files of more than this many connections are checked by counts.
const LISTED: usize = 12;

/// The hand-verified facts of each file (see [`digest`] for the format).
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "PcapPlusPlus__Tests_ExamplesTest_pcap_examples_tls2.pcap",
        &[
            "334 connections, 0 with their SYN",
            "closer=-: 315",
            "closer=b: 19",
            "fins=-: 315",
            "fins=b: 19",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_650HttpResponses.pcap",
        &[
            "284 connections, 0 with their SYN",
            "closer=-: 241",
            "closer=b: 43",
            "fins=-: 241",
            "fins=b: 43",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_example.pcap",
        &[
            "66 connections, 65 with their SYN",
            "closer=-: 53",
            "closer=a: 11",
            "closer=b: 2",
            "fins=-: 53",
            "fins=ab: 13",
            "rst a:data-after-close: 1",
            "rst a:repeat: 2",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_four_ipv6_http_streams.pcap",
        &[
            "4 connections, 4 with their SYN",
            "[2001:618:400::5199:cc70]:35995>[2001:618:1:8000::5]:80 closer=- fins=- rsts=- half=-",
            "[2001:618:400::5199:cc70]:35997>[2001:618:1:8000::5]:80 closer=- fins=- rsts=- half=-",
            "[2001:618:400::5199:cc70]:35999>[2001:618:1:8000::5]:80 closer=- fins=- rsts=- half=-",
            "[2001:618:400::5199:cc70]:40426>[2001:638:902:1:202:b3ff:feee:5dc2]:80 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_many_interfaces-1.pcapng",
        &[
            "2 connections, 2 with their SYN",
            "192.168.1.139:50981>74.125.228.227:443 closer=- fins=- rsts=- half=-",
            "192.168.1.139:50982>74.125.228.227:443 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_nanosecs_big_endian.pcap",
        &[
            "1 connections, 1 with their SYN",
            "127.0.0.1:43030>127.0.0.1:8000 closer=b fins=b rsts=- half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_null_loopback.pcap",
        &[
            "1 connections, 0 with their SYN",
            "[::1]:49888>[::1]:81 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_one_http_stream_rst.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.3.65.35:5068>185.8.212.46:80 closer=b fins=b rsts=a:abortive half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_one_tcp_stream_fin_rst_close_packet.pcap",
        &[
            "1 connections, 1 with their SYN",
            "192.168.221.130:43766>172.16.0.112:3306 closer=a fins=a rsts=a:abortive,a:repeat half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_pcapng-example.pcapng",
        &[
            "15 connections, 2 with their SYN",
            "closer=-: 14",
            "closer=a: 1",
            "fins=-: 14",
            "fins=ab: 1",
            "rst b:refused: 1",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_sll.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.0.0.8:40800>212.199.202.69:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_sll2.pcap",
        &[
            "1 connections, 0 with their SYN",
            "7.249.151.114:57292>116.63.66.108:443 closer=b fins=b rsts=- half=-",
        ],
    ),
    (
        "suricata-verify__tests_bug-4810_pppoe-session-http.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.100.0.0:57013>142.250.179.131:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "suricata-verify__tests_bug-6244-tcp-rst-with-data_tcp-rst-with-data.pcap",
        &[
            "1 connections, 1 with their SYN",
            "1.1.1.1:12345>2.2.2.2:8080 closer=a fins=- rsts=a:abortive half=-",
        ],
    ),
    (
        "suricata-verify__tests_decode-sll2-02_input.pcap",
        &[
            "1 connections, 1 with their SYN",
            "192.168.1.253:56478>192.168.1.21:80 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "suricata-verify__tests_firewall_ruletype-firewall-117-ftp-all-data-ipv6_input.pcap",
        &[
            "16 connections, 16 with their SYN",
            "closer=a: 9",
            "closer=b: 7",
            "fins=ab: 16",
        ],
    ),
    (
        "suricata-verify__tests_output-eve-ftp-data_input.pcap",
        &[
            "80 connections, 80 with their SYN",
            "closer=a: 48",
            "closer=b: 32",
            "fins=ab: 80",
            "rst a:data-after-close: 34",
            "rst a:repeat: 7",
        ],
    ),
    (
        "suricata-verify__tests_smtp-errors_smtperr.pcap",
        &[
            "4 connections, 4 with their SYN",
            "172.16.2.159:49274>219.94.162.217:25 closer=a fins=a rsts=a:data-after-close half=-",
            "10.6.8.101:49448>98.137.159.25:25 closer=b fins=ba rsts=- half=4",
            "10.7.29.101:49740>197.26.11.151:25 closer=a fins=ab rsts=- half=-",
            "10.4.16.101:50649>104.131.33.237:465 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "suricata-verify__tests_tcp-empty-sack_tcp-opt.pcap",
        &[
            "1 connections, 1 with their SYN",
            "192.168.0.54:49506>17.173.66.179:443 closer=b fins=b rsts=a:no-socket half=-",
        ],
    ),
    (
        "suricata-verify__tests_tcp-rst-unacked-stream-12_TLPW1-tcp-110.37.219.134-10.12.14.101-tcp-990-49254.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.12.14.101:49254>110.37.219.134:990 closer=a fins=- rsts=a:abortive half=-",
        ],
    ),
    (
        "suricata-verify__tests_tcp-split-handshake-02-5whs_split-handshake-5whs.pcap",
        &[
            "1 connections, 1 with their SYN",
            "1.1.1.1:12345>2.2.2.2:80 closer=a fins=- rsts=a:no-socket half=-",
        ],
    ),
    (
        "suricata-verify__tests_tcp-stream-after-swap_http-start-from-response.pcap",
        &[
            "1 connections, 0 with their SYN",
            "172.16.9.181:38498>172.16.9.189:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "suricata-verify__tests_tls_tls-fin-close-data-01_debug-s13.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.84.1.5:53576>172.217.132.169:443 closer=a fins=ab rsts=b:data-after-close,b:repeat,b:repeat half=-",
        ],
    ),
    (
        "tcpdump__tests_bigtcp-ipv4.pcap",
        &[
            "1 connections, 0 with their SYN",
            "10.25.132.11:36425>10.25.132.13:35871 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "tcpdump__tests_mptcp-tcprst.pcap",
        &[
            "1 connections, 0 with their SYN",
            "192.0.2.1:55739>192.168.76.28:8080 closer=a fins=- rsts=a:unknown,a:repeat half=-",
        ],
    ),
    (
        "tcpdump__tests_mptcp-v1.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.0.1.1:33306>10.0.2.1:10004 closer=a fins=ab rsts=- half=2076",
        ],
    ),
    (
        "tcpreplay__test_test.pcap",
        &[
            "7 connections, 6 with their SYN",
            "172.16.11.12:64565>74.125.19.17:443 closer=a fins=ab rsts=- half=-",
            "172.16.11.12:64581>216.34.181.45:80 closer=- fins=- rsts=- half=-",
            "[2001:4958:15a0:24:c1b3:b766:7fff:d0b3]:43250>[2606:4700::6812:69c]:80 closer=a fins=ab rsts=- half=-",
            "172.16.11.12:64582>96.17.211.172:80 closer=b fins=b rsts=- half=-",
            "172.16.11.12:64583>96.17.211.172:80 closer=- fins=- rsts=- half=-",
            "172.16.11.12:64584>96.17.211.172:80 closer=- fins=- rsts=- half=-",
            "172.16.11.12:64585>96.17.211.172:80 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_echo-connections.pcap",
        &[
            "500 connections, 500 with their SYN",
            "closer=a: 500",
            "fins=ab: 500",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ftp_bruteforce.pcap",
        &[
            "30 connections, 30 with their SYN",
            "closer=a: 28",
            "closer=b: 2",
            "fins=ab: 30",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ftp_ipv4.pcap",
        &[
            "5 connections, 5 with their SYN",
            "141.142.220.235:50003>199.233.217.249:21 closer=b fins=ba rsts=- half=-",
            "141.142.220.235:37604>199.233.217.249:56666 closer=b fins=ba rsts=- half=-",
            "141.142.220.235:59378>199.233.217.249:56667 closer=b fins=ba rsts=- half=-",
            "199.233.217.249:61920>141.142.220.235:33582 closer=a fins=ab rsts=- half=-",
            "199.233.217.249:61918>141.142.220.235:37835 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ftp_ipv6.pcap",
        &[
            "6 connections, 6 with their SYN",
            "[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49185>[2001:470:4867:99::21]:21 closer=b fins=ba rsts=- half=-",
            "[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49186>[2001:470:4867:99::21]:57086 closer=b fins=ba rsts=- half=-",
            "[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49187>[2001:470:4867:99::21]:57087 closer=b fins=ba rsts=- half=-",
            "[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49188>[2001:470:4867:99::21]:57088 closer=b fins=ba rsts=- half=-",
            "[2001:470:4867:99::21]:55785>[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49189 closer=a fins=ab rsts=- half=-",
            "[2001:470:4867:99::21]:55647>[2001:470:1f11:81f:c999:d94:aa7c:2e3e]:49190 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ftp_retr.pcap",
        &[
            "2 connections, 2 with their SYN",
            "141.142.228.5:50736>141.142.192.162:21 closer=b fins=ba rsts=- half=-",
            "141.142.228.5:50737>141.142.192.162:38141 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_http-qinq-0.pcap",
        &[
            "1 connections, 1 with their SYN",
            "141.142.228.5:59856>192.150.187.43:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_http_1000-requests-one-dropped-response.pcap",
        &[
            "1 connections, 1 with their SYN",
            "[::1]:44730>[::1]:80 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_http_bro.org.pcap",
        &[
            "13 connections, 13 with their SYN",
            "closer=-: 1",
            "closer=a: 5",
            "closer=b: 7",
            "fins=-: 1",
            "fins=ab: 12",
        ],
    ),
    (
        "zeek__testing_btest_Traces_http_get_nosyn.pcap",
        &[
            "1 connections, 0 with their SYN",
            "141.142.228.5:59856>192.150.187.43:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ipv6-http-atomic-frag.pcap",
        &[
            "4 connections, 4 with their SYN",
            "[2001:db8:1::2]:36951>[2001:db8:1::1]:80 closer=b fins=ba rsts=- half=-",
            "[2001:db8:1::2]:59694>[2001:db8:1::1]:80 closer=b fins=ba rsts=- half=-",
            "[2001:db8:1::2]:27393>[2001:db8:1::1]:80 closer=b fins=ba rsts=- half=-",
            "[2001:db8:1::2]:45805>[2001:db8:1::1]:80 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_mixed-vlan-mpls.pcap",
        &[
            "3 connections, 3 with their SYN",
            "10.1.2.1:11001>10.34.0.1:23 closer=a fins=a rsts=- half=-",
            "141.42.64.125:56730>125.190.109.199:80 closer=a fins=ab rsts=- half=-",
            "10.20.80.1:50343>10.0.0.15:80 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_nflog-http.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.0.2.15:49762>93.184.216.34:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_nmap-vsn.pcap",
        &[
            "17 connections, 17 with their SYN",
            "closer=-: 14",
            "closer=a: 3",
            "fins=-: 17",
            "rst a:abortive: 3",
            "rst b:refused: 6",
        ],
    ),
    (
        "zeek__testing_btest_Traces_pop3_pop3.pcap",
        &[
            "7 connections, 7 with their SYN",
            "192.168.0.4:26242>212.227.15.188:110 closer=- fins=- rsts=b:refused,b:refused,b:refused half=-",
            "192.168.0.4:26245>212.227.15.171:110 closer=- fins=- rsts=b:refused,b:refused,b:refused half=-",
            "192.168.0.4:26272>212.227.15.166:110 closer=b fins=ba rsts=- half=-",
            "192.168.0.4:26284>212.227.15.166:110 closer=b fins=ba rsts=- half=-",
            "192.168.0.4:26304>212.227.15.166:110 closer=b fins=ba rsts=- half=-",
            "192.168.0.4:26308>212.227.15.166:110 closer=b fins=ba rsts=- half=-",
            "192.168.0.4:26383>212.227.15.166:110 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_smtp.pcap",
        &[
            "6 connections, 3 with their SYN",
            "10.10.1.4:1470>74.53.140.153:25 closer=a fins=ab rsts=- half=48",
            "192.168.133.100:49285>66.196.121.26:5050 closer=- fins=- rsts=- half=-",
            "192.168.133.100:49648>192.168.133.102:25 closer=- fins=- rsts=- half=-",
            "192.168.133.100:49336>74.125.71.189:443 closer=- fins=- rsts=- half=-",
            "192.168.133.100:49153>17.172.238.21:5223 closer=- fins=- rsts=- half=-",
            "192.168.133.100:49655>17.167.150.73:443 closer=- fins=- rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_snap-tcp.pcap",
        &[
            "1 connections, 1 with their SYN",
            "192.168.1.1:12345>192.168.1.2:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ssh_ssh.server-side-half-duplex.pcap",
        &[
            "20 connections, 0 with their SYN",
            "closer=b: 20",
            "fins=b: 20",
        ],
    ),
    (
        "zeek__testing_btest_Traces_ssh_sshguess.pcap",
        &[
            "11 connections, 11 with their SYN",
            "192.168.56.1:55470>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55471>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55472>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55473>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55474>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55475>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55476>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55477>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55478>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55479>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
            "192.168.56.1:55480>192.168.56.103:22 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_fin_retransmission.pcap",
        &[
            "1 connections, 1 with their SYN",
            "10.1.30.117:55344>17.167.193.62:443 closer=a fins=a rsts=b:no-socket half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_handshake-reorder.pcap",
        &[
            "1 connections, 1 with their SYN",
            "141.142.228.5:59856>192.150.187.43:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_missing-syn.pcap",
        &[
            "1 connections, 0 with their SYN",
            "141.42.64.125:56730>125.190.109.199:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_one-sided-2745.pcap",
        &[
            "2 connections, 0 with their SYN",
            "247.180.123.139:2745>245.181.165.133:1433 closer=b fins=b rsts=- half=-",
            "91.189.148.149:2745>245.181.165.131:281 closer=b fins=b rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_rst-inject-rae.pcap",
        &[
            "1 connections, 1 with their SYN",
            "1.2.0.2:2527>1.2.0.3:6649 closer=b fins=- rsts=b:ignored,b:abortive,b:repeat half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_single-rst.pcap",
        &[
            "1 connections, 0 with their SYN",
            "10.0.0.10:48777>10.0.0.80:80 closer=a fins=- rsts=a:unknown half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_ssh-dups.pcap",
        &[
            "1 connections, 1 with their SYN",
            "192.168.0.102:53206>192.168.0.112:22 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_syn-then-rst.pcap",
        &[
            "1 connections, 1 with their SYN",
            "1.1.1.1:13131>1.1.1.2:31313 closer=a fins=- rsts=a:abortive half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_syn-then-stuff-then-rst.pcap",
        &[
            "1 connections, 1 with their SYN",
            "1.1.1.1:13131>1.1.1.2:31313 closer=a fins=a rsts=a:abortive half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_tcp-fast-open.pcap",
        &[
            "2 connections, 2 with their SYN",
            "10.99.99.1:55533>10.99.99.45:80 closer=b fins=ba rsts=- half=-",
            "10.99.99.1:55534>10.99.99.45:80 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_tcp_truncated-header.pcap",
        &[
            "1 connections, 1 with their SYN",
            "201.186.157.67:60827>128.3.26.249:25 closer=b fins=ba rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_var-services-std-ports.pcap",
        &[
            "6 connections, 6 with their SYN",
            "172.16.238.1:49656>172.16.238.131:22 closer=a fins=ab rsts=- half=-",
            "172.16.238.1:49657>172.16.238.131:80 closer=b fins=ba rsts=- half=-",
            "172.16.238.1:49658>172.16.238.131:80 closer=b fins=ba rsts=- half=-",
            "172.16.238.1:49659>172.16.238.131:21 closer=a fins=ab rsts=- half=-",
            "172.16.238.131:55515>74.125.225.81:80 closer=- fins=- rsts=- half=-",
            "172.16.238.131:45908>141.142.192.39:22 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_vlan-qinqinq.pcap",
        &[
            "1 connections, 1 with their SYN",
            "141.142.228.5:59856>192.150.187.43:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_web.pcap",
        &[
            "2 connections, 2 with their SYN",
            "141.42.64.125:56729>125.190.109.199:12345 closer=- fins=- rsts=b:refused half=-",
            "141.42.64.125:56730>125.190.109.199:80 closer=a fins=ab rsts=- half=-",
        ],
    ),
    (
        "zeek__testing_btest_Traces_workshop_2011_browse.pcap",
        &[
            "6 connections, 6 with their SYN",
            "10.0.2.15:49282>192.150.187.43:80 closer=a fins=a rsts=- half=-",
            "10.0.2.15:49283>192.150.187.43:80 closer=a fins=a rsts=- half=-",
            "10.0.2.15:49284>192.150.187.43:80 closer=a fins=a rsts=- half=-",
            "10.0.2.15:49285>192.150.187.43:80 closer=a fins=a rsts=- half=-",
            "10.0.2.15:49286>192.150.187.43:80 closer=a fins=a rsts=- half=-",
            "10.0.2.15:49287>192.150.187.43:80 closer=a fins=a rsts=- half=-",
        ],
    ),
];

/// Files and snap lengths whose facts differ from the whole capture's,
/// because the cut took TCP flags away (the frames analyze counts as too
/// short to read, then the facts at that length).
const CUT_DIFFERENT: &[(&str, u32, u64, &[&str])] = &[
    // The NFLOG attributes before the payload are longer in b's packets:
    // at 96 bytes five of them (b's SYN-ACK, ACKs, data and FIN) end before
    // the TCP flags, so b's FIN is not seen and the close is not complete.
    (
        "zeek__testing_btest_Traces_nflog-http.pcap",
        96,
        5,
        &[
            "1 connections, 1 with their SYN",
            "10.0.2.15:49762>93.184.216.34:80 closer=a fins=a rsts=- half=-",
        ],
    ),
    // Stream 13 is Linux cooked capture over IPv6: 16 + 40 bytes of headers
    // leave 12 of the TCP header at 68, before the flags (its 4 frames).
    (
        "PcapPlusPlus__Tests_Pcap++Test_PcapExamples_pcapng-example.pcapng",
        68,
        4,
        &[
            "14 connections, 2 with their SYN",
            "closer=-: 13",
            "closer=a: 1",
            "fins=-: 13",
            "fins=ab: 1",
            "rst b:refused: 1",
        ],
    ),
    // Every packet of the client carries an IPv6 extension header (8 bytes
    // or more: 14 + 40 + 8 + 14 > 68), the server's none: the client's 18
    // segments, its SYNs and FINs, are lost; the server's FINs remain.
    (
        "zeek__testing_btest_Traces_ipv6-http-atomic-frag.pcap",
        68,
        18,
        &[
            "4 connections, 0 with their SYN",
            "[2001:db8:1::2]:36951>[2001:db8:1::1]:80 closer=b fins=b rsts=- half=-",
            "[2001:db8:1::2]:59694>[2001:db8:1::1]:80 closer=b fins=b rsts=- half=-",
            "[2001:db8:1::2]:27393>[2001:db8:1::1]:80 closer=b fins=b rsts=- half=-",
            "[2001:db8:1::2]:45805>[2001:db8:1::1]:80 closer=- fins=- rsts=- half=-",
        ],
    ),
    // At 68 bytes only the last packet (72 bytes, short NFLOG attributes)
    // holds its TCP flags: 12 frames are lost.
    (
        "zeek__testing_btest_Traces_nflog-http.pcap",
        68,
        12,
        &[
            "1 connections, 0 with their SYN",
            "10.0.2.15:49762>93.184.216.34:80 closer=- fins=- rsts=- half=-",
        ],
    ),
];

/// tshark opens a second `tcp.stream` at the server's own SYN of a split
/// handshake; the client's sequence numbers go on, and hc-trace keeps one
/// connection. The streams are compared as one, and the split is counted.
const TSHARK_SPLITS: &[&str] =
    &["suricata-verify__tests_tcp-split-handshake-02-5whs_split-handshake-5whs.pcap"];

/// tshark 4.0 does not dissect an NFLOG packet whose payload attribute the
/// snap length cut, though the captured bytes hold its IP and TCP headers:
/// there hc-trace reads more segments than tshark.
const TSHARK_READS_LESS: &[(&str, u32)] = &[("zeek__testing_btest_Traces_nflog-http.pcap", 96)];

fn peer_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/peer-captures");
    assert!(
        d.join("SOURCES.md").is_file(),
        "this test needs the peer captures at {} (../shared/peer-captures beside the checkout, as CI \
         has it): it is a requirement like a tool; without --features privileged the test is ignored",
        d.display()
    );
    d
}

fn peer_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(peer_dir())
        .expect("read peer-captures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// `hc-trace analyze FILE --format json`: (exit code, document).
fn analyze(p: &Path) -> (i32, Value) {
    let out = Command::new(bin())
        .args(["analyze", "--format", "json"])
        .arg(p)
        .output()
        .expect("run hc-trace analyze");
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON ({e}): {}",
            p.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), doc)
}

/// One connection in a line: "A>B closer=x fins=.. rsts=end:kind .. half=N".
fn conn_line(c: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let fins: String = c["fins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| s(&f["from"]))
        .collect();
    let rsts: Vec<String> = c["rsts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}:{}", s(&r["from"]), s(&r["kind"])))
        .collect();
    format!(
        "{}>{} closer={} fins={} rsts={} half={}",
        s(&c["a"]),
        s(&c["b"]),
        s(&c["active_closer"]),
        if fins.is_empty() { "-".into() } else { fins },
        if rsts.is_empty() {
            "-".into()
        } else {
            rsts.join(",")
        },
        c["half_close"]["bytes_after_first_fin"]
            .as_u64()
            .map_or("-".into(), |b| b.to_string())
    )
}

/// The facts of a document: every connection's line (or, for more than
/// [`LISTED`] connections, counts of closers, FIN senders, RST kinds and
/// half-closes), and how many connections had their SYN captured.
fn digest(doc: &Value) -> Vec<String> {
    let conns = doc["connections"].as_array().expect("connections");
    let syn = conns.iter().filter(|c| c["syn_captured"] == true).count();
    let mut out = vec![format!("{} connections, {syn} with their SYN", conns.len())];
    if conns.len() <= LISTED {
        out.extend(conns.iter().map(conn_line));
        return out;
    }
    let mut h: BTreeMap<String, usize> = BTreeMap::new();
    for c in conns {
        *h.entry(format!(
            "closer={}",
            c["active_closer"].as_str().unwrap_or("-")
        ))
        .or_default() += 1;
        let mut fins: Vec<&str> = c["fins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["from"].as_str().unwrap())
            .collect();
        fins.sort();
        *h.entry(format!(
            "fins={}",
            if fins.is_empty() {
                "-".into()
            } else {
                fins.concat()
            }
        ))
        .or_default() += 1;
        for r in c["rsts"].as_array().unwrap() {
            *h.entry(format!(
                "rst {}:{}",
                r["from"].as_str().unwrap(),
                r["kind"].as_str().unwrap()
            ))
            .or_default() += 1;
        }
        if !c["half_close"].is_null() {
            *h.entry("half-close".into()).or_default() += 1;
        }
    }
    out.extend(h.into_iter().map(|(k, n)| format!("{k}: {n}")));
    out
}

/// One TCP segment as tshark decodes it.
#[derive(Clone, Debug)]
struct TSeg {
    frame: u64,
    stream: u64,
    src: String,
    dst: String,
    flags: u16,
    len: u64,
    seq: u32,
}

fn endpoint(addr: &str, port: &str) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// Every segment whose flags tshark could read (TCP inside ICMP errors left out).
fn tshark(p: &Path) -> Vec<TSeg> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(p)
        .args([
            "-Y",
            "tcp.flags && !icmp && !icmpv6",
            "-T",
            "fields",
            "-E",
            "separator=\t",
        ])
        .args([
            "-e",
            "frame.number",
            "-e",
            "tcp.stream",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "ip.dst",
            "-e",
            "ipv6.dst",
            "-e",
            "tcp.dstport",
        ])
        .args(["-e", "tcp.flags", "-e", "tcp.len", "-e", "tcp.seq_raw"])
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark -r {}: {}",
        p.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 11 || f[1].is_empty() {
                return None;
            }
            // Tunnels list every IP header: the innermost carries the TCP.
            let last = |a: &str, b: &str| {
                let s = if a.is_empty() { b } else { a };
                s.rsplit(',').next().unwrap_or("").to_string()
            };
            Some(TSeg {
                frame: f[0].parse().ok()?,
                stream: f[1].parse().ok()?,
                src: endpoint(&last(f[2], f[3]), f[4]),
                dst: endpoint(&last(f[5], f[6]), f[7]),
                flags: u16::from_str_radix(f[8].trim_start_matches("0x"), 16).ok()?,
                len: f[9].parse().unwrap_or(0),
                seq: f[10].parse().unwrap_or(0),
            })
        })
        .collect()
}

const FIN: u16 = 0x01;
const SYN: u16 = 0x02;
const RST: u16 = 0x04;
const ACK: u16 = 0x10;

/// The closer by the same definitions analyze uses, from tshark's segments:
/// the first FIN, or an RST that neither refused a SYN (its sender sent
/// nothing but RSTs to an end that sent a SYN) nor was followed by more of
/// its sender's traffic (the connection went on: not its last word).
fn tshark_closer(segs: &[&TSeg]) -> Option<String> {
    for (i, s) in segs.iter().enumerate() {
        if s.flags & FIN != 0 {
            return Some(s.src.clone());
        }
        if s.flags & RST != 0 {
            let only_rsts = segs.iter().all(|t| t.src != s.src || t.flags & RST != 0);
            let peer_syn = segs
                .iter()
                .any(|t| t.src != s.src && t.flags & SYN != 0 && t.flags & ACK == 0);
            let went_on = segs[i + 1..].iter().any(|t| {
                t.src == s.src && t.flags & RST == 0 && (t.len > 0 || t.flags & (SYN | FIN) != 0)
            });
            let refused = only_rsts && peer_syn;
            if !refused && !went_on {
                return Some(s.src.clone());
            }
        }
    }
    None
}

/// Distinct payload bytes of the segments (union of their sequence
/// ranges, from the first one seen; RST payload is not stream data).
fn tshark_bytes(segs: &[&TSeg]) -> u64 {
    let mut base = None;
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for s in segs {
        let start = s.seq.wrapping_add(u32::from(s.flags & SYN != 0));
        let b = *base.get_or_insert(start);
        if s.flags & RST != 0 || s.len == 0 {
            continue;
        }
        let rel = u64::from(start.wrapping_sub(b));
        if rel >= 1 << 31 {
            continue; // before the first segment seen
        }
        ranges.push((rel, rel + s.len));
    }
    ranges.sort();
    let (mut total, mut cur): (u64, Option<(u64, u64)>) = (0, None);
    for (s, e) in ranges {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    total + cur.map_or(0, |(s, e)| e - s)
}

/// Agreement with tshark: (checks, agreed, what disagreed, streams tshark split).
#[derive(Default)]
struct Agreement {
    checks: usize,
    agreed: usize,
    differences: Vec<String>,
    splits: usize,
}

impl Agreement {
    fn check(&mut self, what: impl FnOnce() -> String, ok: bool) {
        self.checks += 1;
        if ok {
            self.agreed += 1;
        } else {
            self.differences.push(what());
        }
    }
}

/// Compares analyze's connections with tshark's streams, check by check.
fn compare(doc: &Value, segs: &[TSeg], tshark_reads_less: bool) -> Agreement {
    let conns = doc["connections"].as_array().expect("connections");
    let mut streams: BTreeMap<u64, Vec<&TSeg>> = BTreeMap::new();
    for s in segs {
        streams.entry(s.stream).or_default().push(s);
    }
    // Each stream goes to the analyze connection holding its first frame.
    let mut by_conn: BTreeMap<usize, Vec<&TSeg>> = BTreeMap::new();
    let mut a = Agreement::default();
    for (id, st) in &streams {
        let first = st[0];
        let ends: BTreeSet<&str> = [first.src.as_str(), first.dst.as_str()].into();
        let m: Vec<usize> = conns
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let ce: BTreeSet<&str> =
                    [c["a"].as_str().unwrap(), c["b"].as_str().unwrap()].into();
                ce == ends
                    && c["first_frame"].as_u64().unwrap() <= first.frame
                    && first.frame <= c["last_frame"].as_u64().unwrap()
            })
            .map(|(i, _)| i)
            .collect();
        a.check(
            || {
                format!(
                    "tcp.stream {id} (frame {}): {} analyze connections",
                    first.frame,
                    m.len()
                )
            },
            m.len() == 1,
        );
        if let [i] = m[..] {
            let e = by_conn.entry(i).or_default();
            if !e.is_empty() {
                a.splits += 1;
            }
            e.extend(st.iter().copied());
        }
    }
    for (i, st) in by_conn {
        let c = &conns[i];
        let id = c["id"].as_u64().unwrap();
        let addr = |e: &Value| c[e.as_str().unwrap()].as_str().unwrap().to_string();
        let first_of = |list: &str| {
            let mut m: BTreeMap<String, u64> = BTreeMap::new();
            for x in c[list].as_array().unwrap() {
                m.entry(addr(&x["from"]))
                    .or_insert(x["frame"].as_u64().unwrap());
            }
            m
        };
        let tfirst = |flag: u16| {
            let mut m: BTreeMap<String, u64> = BTreeMap::new();
            for s in st.iter().filter(|s| s.flags & flag != 0) {
                m.entry(s.src.clone()).or_insert(s.frame);
            }
            m
        };
        let segments = c["segments"].as_u64().unwrap() as usize;
        a.check(
            || format!("#{id}: {segments} segments, tshark {}", st.len()),
            segments == st.len() || (tshark_reads_less && segments > st.len()),
        );
        if tshark_reads_less && segments != st.len() {
            continue;
        }
        let (f, tf) = (first_of("fins"), tfirst(FIN));
        a.check(
            || format!("#{id}: first FINs {f:?}, tshark {tf:?}"),
            f == tf,
        );
        let (r, tr) = (first_of("rsts"), tfirst(RST));
        a.check(
            || format!("#{id}: first RSTs {r:?}, tshark {tr:?}"),
            r == tr,
        );
        let closer = c["active_closer"]
            .as_str()
            .map(|e| c[e].as_str().unwrap().to_string());
        let tc = tshark_closer(&st);
        a.check(
            || format!("#{id}: closer {closer:?}, tshark {tc:?}"),
            closer == tc,
        );
        for (dir, from) in [
            ("bytes_a_to_b", addr(&"a".into())),
            ("bytes_b_to_a", addr(&"b".into())),
        ] {
            let mine: Vec<&TSeg> = st.iter().copied().filter(|s| s.src == from).collect();
            let (got, want) = (c[dir].as_u64().unwrap(), tshark_bytes(&mine));
            a.check(|| format!("#{id}: {dir} {got}, tshark {want}"), got == want);
        }
    }
    a
}

/// The per-file result of one snap length, for the figures and the verdict.
struct FileResult {
    name: String,
    conns: usize,
    agreement: Agreement,
    facts_ok: bool,
    problems: Vec<String>,
}

fn expected(name: &str) -> Option<Vec<String>> {
    EXPECTED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, l)| l.iter().map(|s| s.to_string()).collect())
}

/// Checks one file (whole, or cut to `snap` bytes by the caller).
fn check_file(path: &Path, file: &str, snap: Option<u32>) -> FileResult {
    let (code, doc) = analyze(path);
    let got = digest(&doc);
    let mut problems = Vec::new();
    if code != 0 {
        problems.push(format!("exit {code}"));
    }
    let unreadable = doc["snap_cut"]["unreadable"].as_u64().unwrap_or(u64::MAX);
    let cut_rule = snap.and_then(|s| {
        CUT_DIFFERENT
            .iter()
            .find(|(n, sn, ..)| *n == file && *sn == s)
    });
    let want = match cut_rule {
        Some((_, _, frames, facts)) => {
            if unreadable != *frames {
                problems.push(format!(
                    "{unreadable} frames too short to read, expected {frames}"
                ));
            }
            Some(facts.iter().map(|s| s.to_string()).collect())
        }
        None => {
            if unreadable != 0 {
                problems.push(format!(
                    "{unreadable} frames too short to read, expected none"
                ));
            }
            expected(file)
        }
    };
    let facts_ok = match &want {
        Some(w) => *w == got,
        None => false,
    };
    if !facts_ok {
        problems.push(match want {
            Some(w) => format!("facts differ:\n  expected {w:#?}\n  got      {got:#?}"),
            None => format!("no hand-verified facts for this file; it says {got:#?}"),
        });
    }
    let reads_less = snap.is_some_and(|s| TSHARK_READS_LESS.contains(&(file, s)));
    let agreement = compare(&doc, &tshark(path), reads_less);
    let splits_expected = usize::from(TSHARK_SPLITS.contains(&file));
    if agreement.splits != splits_expected {
        problems.push(format!(
            "tshark split {} connections in two, expected {splits_expected}",
            agreement.splits
        ));
    }
    if !agreement.differences.is_empty() {
        problems.push(format!("tshark disagrees: {:#?}", agreement.differences));
    }
    FileResult {
        name: file.to_string(),
        conns: doc["connections"].as_array().map_or(0, Vec::len),
        agreement,
        facts_ok,
        problems,
    }
}

/// Runs `f` over the files on two threads (the tools are slower than analyze).
fn on_two_threads<T: Send>(files: &[PathBuf], f: impl Fn(&Path) -> T + Sync) -> Vec<T> {
    let f = &f;
    let mut out: Vec<(usize, T)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..2)
            .map(|k| {
                sc.spawn(move || {
                    files
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % 2 == k)
                        .map(|(i, p)| (i, f(p)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, t)| t).collect()
}

fn report(title: &str, results: &[FileResult]) {
    println!("\n{title}");
    println!(
        "{:<92} {:>5} {:>13} {:>6}",
        "file", "conns", "tshark checks", "facts"
    );
    let (mut c, mut a) = (0, 0);
    for r in results {
        c += r.agreement.checks;
        a += r.agreement.agreed;
        println!(
            "{:<92} {:>5} {:>6}/{:<6} {:>6}",
            r.name,
            r.conns,
            r.agreement.agreed,
            r.agreement.checks,
            if r.facts_ok { "ok" } else { "WRONG" }
        );
    }
    println!(
        "total: {a} of {c} checks agree with tshark ({:.2} %), facts right in {} of {} files",
        100.0 * a as f64 / c.max(1) as f64,
        results.iter().filter(|r| r.facts_ok).count(),
        results.len()
    );
}

fn verdict(results: &[FileResult]) {
    let bad: Vec<String> = results
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("{}:\n{}", r.name, r.problems.join("\n")))
        .collect();
    assert!(
        bad.is_empty(),
        "{} files wrong:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs tshark, editcap and ../shared/peer-captures: run scripts/test, or cargo test --features privileged"
)]
fn every_peer_capture_tells_the_verified_story_and_agrees_with_tshark() {
    require_tool("tshark");
    let files = peer_files();
    // Every verified file is there, and every file there is verified.
    let names: BTreeSet<String> = files.iter().map(|p| name(p)).collect();
    for (n, _) in EXPECTED {
        assert!(names.contains(*n), "{n} is missing from the peer captures");
    }
    let results = on_two_threads(&files, |p| check_file(p, &name(p), None));
    if std::env::var_os("PEER_FACTS").is_some() {
        // A reviewing aid: what analyze says now, in the form of EXPECTED.
        for p in &files {
            println!("    (\n        \"{}\",\n        &[", name(p));
            for l in digest(&analyze(p).1) {
                println!("            {l:?},");
            }
            println!("        ],\n    ),");
        }
    }
    report("peer captures, whole", &results);
    verdict(&results);
}

#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs tshark, editcap and ../shared/peer-captures: run scripts/test, or cargo test --features privileged"
)]
fn cut_to_96_and_68_bytes_the_stories_stay_as_long_as_the_flags_were_captured() {
    require_tools(&["tshark", "editcap"]);
    let files = peer_files();
    let dir = temp_path("peer-snap");
    for snap in [96u32, 68] {
        let d = dir.join(snap.to_string());
        std::fs::create_dir_all(&d).expect("temp dir");
        let cut: Vec<PathBuf> = on_two_threads(&files, |p| {
            let out = d.join(name(p));
            let st = Command::new("editcap")
                .args(["-s", &snap.to_string()])
                .arg(p)
                .arg(&out)
                .output()
                .expect("run editcap");
            assert!(
                st.status.success(),
                "editcap -s {snap} {}: {}",
                p.display(),
                String::from_utf8_lossy(&st.stderr)
            );
            out
        });
        let results = on_two_threads(&cut, |p| check_file(p, &name(p), Some(snap)));
        report(
            &format!("peer captures cut to {snap} bytes (editcap -s {snap})"),
            &results,
        );
        verdict(&results);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The regressions of issue 14, by the capture that showed each.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs tshark, editcap and ../shared/peer-captures: run scripts/test, or cargo test --features privileged"
)]
fn the_captures_that_showed_each_bug() {
    require_tool("tshark");
    let dir = peer_dir();
    let conns = |f: &str, extra: &[&str]| -> Vec<Value> {
        let out = Command::new(bin())
            .args(["analyze", "--format", "json"])
            .args(extra)
            .arg(dir.join(f))
            .output()
            .expect("run analyze");
        let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        doc["connections"].as_array().unwrap().clone()
    };
    // 1: every RST after crossing FINs discards data the resetting end
    // never acknowledged, and none of that data is a half-close.
    let ftp = conns("suricata-verify__tests_output-eve-ftp-data_input.pcap", &[]);
    let kinds: Vec<&str> = ftp
        .iter()
        .flat_map(|c| c["rsts"].as_array().unwrap())
        .filter_map(|r| r["kind"].as_str())
        .collect();
    assert!(!kinds.contains(&"after-fins"), "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "data-after-close").count(),
        34
    );
    for c in ftp
        .iter()
        .filter(|c| !c["rsts"].as_array().unwrap().is_empty())
    {
        assert!(c["half_close"].is_null(), "{c:#}");
        let d = &c["rsts"][0]["discarded"]["received"]["bytes"];
        assert!(d.as_u64().is_some_and(|b| b > 0), "{c:#}");
    }
    // 2: no half-close made of a sequence number.
    assert!(conns("tcpreplay__test_test.pcap", &["--only", "half-close"]).is_empty());
    // 4: the forged RST is ignored; b's own RST ended the connection.
    let rae = conns("zeek__testing_btest_Traces_tcp_rst-inject-rae.pcap", &[]);
    assert_eq!(rae[0]["rsts"][0]["kind"], "ignored", "{:#}", rae[0]);
    assert!(rae[0]["rsts"][0]["why"]
        .as_str()
        .unwrap()
        .contains("TTL (46)"));
    assert_eq!(rae[0]["rsts"][1]["kind"], "abortive");
    // 6: -w keeps every interface and link type of a pcapng (eleven
    // interfaces: Ethernet, BSD loopback, raw IP), read back by tshark.
    let many = dir.join("PcapPlusPlus__Tests_Pcap++Test_PcapExamples_many_interfaces-1.pcapng");
    let copy = temp_path("pcapng");
    let out = Command::new(bin())
        .arg("analyze")
        .arg(&many)
        .arg("-w")
        .arg(&copy)
        .output()
        .expect("run analyze -w");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &Path| hc_core::capfile::read::read_bytes(&std::fs::read(p).unwrap()).unwrap();
    let (orig, back) = (read(&many), read(&copy));
    assert_eq!(back.linktypes, orig.linktypes);
    assert_eq!(back.linktypes.len(), 11);
    let ifaces = |c: &hc_core::capfile::read::Contents| {
        c.packets.iter().map(|p| p.iface).collect::<Vec<_>>()
    };
    assert_eq!(ifaces(&back), ifaces(&orig));
    let by_tshark = |p: &Path| {
        let o = Command::new("tshark")
            .arg("-r")
            .arg(p)
            .args([
                "-T",
                "fields",
                "-e",
                "frame.interface_id",
                "-e",
                "frame.encap_type",
            ])
            .output()
            .expect("run tshark");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(by_tshark(&copy), by_tshark(&many));
    let _ = std::fs::remove_file(&copy);
    // 5: refused with SYN retries: no closer, no zero window.
    for c in conns(
        "zeek__testing_btest_Traces_pop3_pop3.pcap",
        &["--only", "refused"],
    ) {
        assert!(c["active_closer"].is_null(), "{c:#}");
        assert!(!c["anomalies"].to_string().contains("zero window"), "{c:#}");
    }
}

/// Text output an engineer can line up with Wireshark: frames and UTC
/// times on every story line, the discarded data, the fold line per
/// direction, --no-fold, and the footer's snap length.
#[test]
#[cfg_attr(
    not(feature = "privileged"),
    ignore = "needs tshark, editcap and ../shared/peer-captures: run scripts/test, or cargo test --features privileged"
)]
fn conn_text_lines_up_with_wireshark() {
    let dir = peer_dir();
    let text = |f: &str, extra: &[&str]| -> String {
        let out = Command::new(bin())
            .arg("analyze")
            .args(extra)
            .arg(dir.join(f))
            .output()
            .expect("run analyze");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let t = text(
        "zeek__testing_btest_Traces_tcp_rst-inject-rae.pcap",
        &["--conn", "1"],
    );
    // tshark -t ud shows frame 2 at 2009-01-15 17:11:11.582211.
    assert!(
        t.contains("RST from b at +233.7 ms (frame 2, 2009-01-15 17:11:11.582211 UTC)"),
        "{t}"
    );
    let t = text(
        "suricata-verify__tests_output-eve-ftp-data_input.pcap",
        &["--conn", "4"],
    );
    assert!(t.contains("discarded in flight: 125 B from b that a had not acknowledged (the last sent in frame 126)"), "{t}");
    // A 2.6 MB transfer both ways: each direction's bytes to its sender.
    let sll2 = "suricata-verify__tests_decode-sll2-02_input.pcap";
    let folded = text(sll2, &["--conn", "1"]);
    let line = folded
        .lines()
        .find(|l| l.contains("folded:"))
        .unwrap_or_else(|| panic!("a folded line: {folded}"));
    assert!(
        line.contains("server → client") && line.contains("(--no-fold shows each)"),
        "{line}"
    );
    let all = text(sll2, &["--conn", "1", "--no-fold"]);
    assert!(!all.contains("folded:"), "{all}");
    assert!(all.lines().count() > folded.lines().count() + 100);
    // The footer says the capture kept whole packets (snap 65535 or more).
    assert!(!folded.contains("bytes of each packet kept"), "{folded}");
}
