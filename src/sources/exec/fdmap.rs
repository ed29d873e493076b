//! Descriptor -> socket -> connection, across dup, fork, threads and exec.
//!
//! A FIN leaves only when the *last* descriptor of a socket is closed, so
//! the tracer must know when a close() drops the last reference and when it
//! only drops one of several (after dup() or fork()). Descriptors live in
//! descriptor tables, which threads share and fork() copies; sockets are
//! identified by their inode, which every descriptor of the socket shares.

use std::collections::HashMap;

pub use hc_core::model::exec::{Role, Sock, SockId};
pub type TableId = usize;

/// What a descriptor number refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Not a TCP socket (a file, a pipe, a UNIX or UDP socket): its calls are not shown.
    Other,
    Sock(SockId),
}

#[derive(Default, Clone)]
struct Table {
    fds: HashMap<i32, Slot>,
    /// Tasks using this table (threads share one).
    users: usize,
}

/// Every descriptor table and socket seen during one trace.
#[derive(Default)]
pub struct FdMap {
    tables: HashMap<TableId, Table>,
    next_table: TableId,
    pub socks: Vec<Sock>,
    /// Sockets with at least one descriptor, by inode.
    live: HashMap<u64, SockId>,
    /// Sockets that lost their last descriptor since [`FdMap::take_dead`].
    dead: Vec<SockId>,
}

impl FdMap {
    pub fn new_table(&mut self) -> TableId {
        let id = self.next_table;
        self.next_table += 1;
        self.tables.insert(
            id,
            Table {
                fds: HashMap::new(),
                users: 1,
            },
        );
        id
    }

    /// fork(): a copy of `from`; every socket in it gains a reference.
    pub fn fork_table(&mut self, from: TableId) -> TableId {
        let fds = self
            .tables
            .get(&from)
            .map(|t| t.fds.clone())
            .unwrap_or_default();
        for slot in fds.values() {
            if let Slot::Sock(s) = slot {
                self.socks[*s].refs += 1;
            }
        }
        let id = self.next_table;
        self.next_table += 1;
        self.tables.insert(id, Table { fds, users: 1 });
        id
    }

    /// A thread (or CLONE_FILES child) starts using `table`.
    pub fn share(&mut self, table: TableId) {
        if let Some(t) = self.tables.get_mut(&table) {
            t.users += 1;
        }
    }

    /// A task stops using `table` (it exited or exec'd). When nobody uses it
    /// any more its descriptors are closed: returns those whose socket lost
    /// its last reference, as (fd, socket), in descriptor order.
    pub fn release(&mut self, table: TableId) -> Vec<(i32, SockId)> {
        let Some(t) = self.tables.get_mut(&table) else {
            return Vec::new();
        };
        t.users = t.users.saturating_sub(1);
        if t.users > 0 {
            return Vec::new();
        }
        let Some(t) = self.tables.remove(&table) else {
            return Vec::new();
        };
        let mut fds: Vec<(i32, Slot)> = t.fds.into_iter().collect();
        fds.sort_by_key(|(fd, _)| *fd);
        fds.into_iter()
            .filter_map(|(fd, slot)| match slot {
                Slot::Sock(s) if self.unref(s) => Some((fd, s)),
                _ => None,
            })
            .collect()
    }

    pub fn get(&self, table: TableId, fd: i32) -> Option<Slot> {
        self.tables.get(&table)?.fds.get(&fd).copied()
    }

    pub fn fds(&self, table: TableId) -> Vec<i32> {
        self.tables
            .get(&table)
            .map(|t| t.fds.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The socket with this inode, or a new one.
    pub fn sock_for(&mut self, ino: u64, role: Role) -> SockId {
        if let Some(&id) = self.live.get(&ino) {
            return id;
        }
        let id = self.socks.len();
        self.socks.push(Sock {
            ino,
            role,
            local: None,
            peer: None,
            written: 0,
            refs: 0,
        });
        self.live.insert(ino, id);
        id
    }

    /// `fd` now refers to `slot`. Returns the socket that lost its last
    /// reference when `fd` referred to another one (dup2 onto an open socket).
    pub fn set(&mut self, table: TableId, fd: i32, slot: Slot) -> Option<SockId> {
        if let Slot::Sock(s) = slot {
            self.socks[s].refs += 1;
        }
        let old = self.tables.get_mut(&table)?.fds.insert(fd, slot);
        match old {
            Some(Slot::Sock(s)) if self.unref(s) => Some(s),
            _ => None,
        }
    }

    /// close(fd): returns the socket and whether this was its last descriptor.
    pub fn remove(&mut self, table: TableId, fd: i32) -> Option<(SockId, bool)> {
        match self.tables.get_mut(&table)?.fds.remove(&fd)? {
            Slot::Sock(s) => Some((s, self.unref(s))),
            Slot::Other => None,
        }
    }

    /// Other descriptors that refer to socket `s` (in any table).
    pub fn refs(&self, s: SockId) -> usize {
        self.socks.get(s).map_or(0, |k| k.refs)
    }

    /// Sockets whose last descriptor went since the last call.
    pub fn take_dead(&mut self) -> Vec<SockId> {
        std::mem::take(&mut self.dead)
    }

    fn unref(&mut self, s: SockId) -> bool {
        let k = &mut self.socks[s];
        k.refs = k.refs.saturating_sub(1);
        if k.refs == 0 {
            let ino = k.ino;
            if self.live.get(&ino) == Some(&s) {
                self.live.remove(&ino);
            }
            self.dead.push(s);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dup_then_close_keeps_the_socket_until_the_last_descriptor() {
        let mut m = FdMap::default();
        let t = m.new_table();
        let s = m.sock_for(42, Role::Fresh);
        assert_eq!(m.set(t, 3, Slot::Sock(s)), None);
        m.set(t, 4, Slot::Sock(s));
        assert_eq!(m.remove(t, 4), Some((s, false)), "3 still refers to it");
        assert_eq!(m.remove(t, 3), Some((s, true)));
        assert_eq!(
            m.take_dead(),
            vec![s],
            "reported once, when the last one went"
        );
        assert!(m.take_dead().is_empty());
        // The inode may come back for another socket later: a new one.
        assert_ne!(m.sock_for(42, Role::Fresh), s);
    }

    #[test]
    fn fork_copies_and_exit_releases() {
        let mut m = FdMap::default();
        let parent = m.new_table();
        let s = m.sock_for(7, Role::Accepted);
        m.set(parent, 5, Slot::Sock(s));
        m.set(parent, 1, Slot::Other);
        let child = m.fork_table(parent);
        assert_eq!(m.refs(s), 2);
        assert_eq!(
            m.remove(parent, 5),
            Some((s, false)),
            "the child still has it"
        );
        assert_eq!(m.release(child), vec![(5, s)], "the child's exit closes it");
    }

    #[test]
    fn threads_release_the_table_once_the_last_one_leaves() {
        let mut m = FdMap::default();
        let t = m.new_table();
        m.share(t);
        let s = m.sock_for(9, Role::Connecting);
        m.set(t, 3, Slot::Sock(s));
        assert!(m.release(t).is_empty());
        assert_eq!(m.release(t), vec![(3, s)]);
    }

    #[test]
    fn dup2_onto_a_socket_drops_it() {
        let mut m = FdMap::default();
        let t = m.new_table();
        let a = m.sock_for(1, Role::Connecting);
        let b = m.sock_for(2, Role::Connecting);
        m.set(t, 3, Slot::Sock(a));
        m.set(t, 4, Slot::Sock(b));
        assert_eq!(m.set(t, 4, Slot::Sock(a)), Some(b));
        assert_eq!(m.get(t, 4), Some(Slot::Sock(a)));
    }
}
