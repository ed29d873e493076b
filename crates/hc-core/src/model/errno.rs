//! The errno names hc-trace reports for a failed call, as a C programmer
//! reads them in man pages. A scenario's `expect errno NAME` and a
//! prediction's answer are checked against this list, so a misspelt name is
//! a mistake in the file, not a verdict about the kernel. The system layer
//! (`hc_sys::errno::name`) names exactly these; a test of the binary keeps
//! the two lists equal.

pub const NAMES: &[&str] = &[
    "EPERM",
    "ENOENT",
    "EINTR",
    "EBADF",
    "EAGAIN",
    "ENOMEM",
    "EACCES",
    "EFAULT",
    "EINVAL",
    "EMFILE",
    "EPIPE",
    "ENOTSOCK",
    "EOPNOTSUPP",
    "EAFNOSUPPORT",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ENETDOWN",
    "ENETUNREACH",
    "ECONNABORTED",
    "ECONNRESET",
    "ENOBUFS",
    "EISCONN",
    "ENOTCONN",
    "ETIMEDOUT",
    "ECONNREFUSED",
    "EHOSTUNREACH",
    "EALREADY",
    "EINPROGRESS",
];

/// `name` as hc-trace writes it (upper case), when it is one of [`NAMES`].
pub fn known(name: &str) -> Option<&'static str> {
    let up = name.to_ascii_uppercase();
    NAMES.iter().copied().find(|n| *n == up)
}
