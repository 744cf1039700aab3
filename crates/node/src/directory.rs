//! The members' addresses: where to dial each peer, and where it serves
//! HTTP.
//!
//! Raft's configuration names members by id only (dissertation ch. 4); how
//! to reach them is the executor's business, as in etcd, which keeps its
//! member list beside the raft log. This node keeps its list in
//! `<data-dir>/members.json`, rewritten atomically (temporary file, fsync,
//! rename, directory fsync) whenever it changes, so that a restarted or a
//! joined node knows whom to dial.
//!
//! Addresses travel three ways: founding members get them from `--peers`;
//! a joining node from the member it joins through (the answer to `POST
//! /admin/nodes`); everyone else from the handshake of each new peer, which
//! carries the dialler's peer and HTTP addresses. Nothing here can change
//! what Raft decides: a missing address only delays messages, which Raft
//! tolerates like any loss.
//!
//! The file also records the founding voters this node started with (none
//! for a node that joined): raft's configuration before the first
//! configuration entry of the log, which must be the same at every restart.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file's name inside the data dir.
pub const FILE: &str = "members.json";

/// How to reach one member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAddrs {
    /// Where it accepts peer connections.
    pub peer: SocketAddr,
    /// Where it serves HTTP, once known.
    pub http: Option<String>,
}

/// What `members.json` holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    /// The voters this node was founded with (empty for a joined node).
    founders: Option<Vec<u64>>,
    /// Every member this node knows of, by id, itself included.
    members: BTreeMap<u64, MemberAddrs>,
}

/// The members' addresses, kept on disk.
#[derive(Debug)]
pub struct Directory {
    path: PathBuf,
    saved: Saved,
}

impl Directory {
    /// Reads the list from `data_dir` (empty if the file is absent).
    pub fn load(data_dir: &Path) -> Result<Directory, String> {
        let path = data_dir.join(FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{} is not a member list: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Directory { path, saved })
    }

    /// The founding voters recorded, if any were.
    pub fn founders(&self) -> Option<&[u64]> {
        self.saved.founders.as_deref()
    }

    /// Records the founding voters (once, at bootstrap or join).
    pub fn set_founders(&mut self, founders: Vec<u64>) -> Result<(), String> {
        self.saved.founders = Some(founders);
        self.save()
    }

    /// Every member known, by id.
    pub fn members(&self) -> &BTreeMap<u64, MemberAddrs> {
        &self.saved.members
    }

    /// Member `id`'s addresses, if known.
    pub fn get(&self, id: u64) -> Option<&MemberAddrs> {
        self.saved.members.get(&id)
    }

    /// Records `id`'s peer address (and its HTTP address, if given; a
    /// known one is kept otherwise). Returns whether the peer address is
    /// new or changed, so that the caller (re)starts a dialler.
    pub fn learn(
        &mut self,
        id: u64,
        peer: SocketAddr,
        http: Option<String>,
    ) -> Result<bool, String> {
        let old = self.saved.members.get(&id).cloned();
        let http = http.or_else(|| old.as_ref().and_then(|o| o.http.clone()));
        let new = MemberAddrs { peer, http };
        if old.as_ref() == Some(&new) {
            return Ok(false);
        }
        let peer_changed = old.is_none_or(|o| o.peer != peer);
        self.saved.members.insert(id, new);
        self.save()?;
        Ok(peer_changed)
    }

    /// Forgets a member that left the configuration.
    pub fn forget(&mut self, id: u64) -> Result<(), String> {
        if self.saved.members.remove(&id).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Writes the list atomically: a crash leaves the old or the new one.
    fn save(&self) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(&self.saved).expect("serializes");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_survives_a_reload_and_reports_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Directory::load(dir.path()).unwrap();
        assert!(d.members().is_empty());
        assert_eq!(d.founders(), None);
        let a: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:9002".parse().unwrap();
        assert!(d.learn(1, a, None).unwrap(), "a new member");
        assert!(!d.learn(1, a, None).unwrap(), "nothing new");
        assert!(
            !d.learn(1, a, Some("127.0.0.1:8001".into())).unwrap(),
            "only the HTTP address is new: no new dialler"
        );
        assert!(d.learn(1, b, None).unwrap(), "the peer address moved");
        d.set_founders(vec![1, 2, 3]).unwrap();
        let again = Directory::load(dir.path()).unwrap();
        assert_eq!(again.founders(), Some(&[1, 2, 3][..]));
        assert_eq!(
            again.get(1),
            Some(&MemberAddrs {
                peer: b,
                http: Some("127.0.0.1:8001".into())
            }),
            "the HTTP address is kept when a later learn does not give one"
        );
        let mut again = again;
        again.forget(1).unwrap();
        assert!(Directory::load(dir.path()).unwrap().get(1).is_none());
    }

    #[test]
    fn a_corrupt_list_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{not json").unwrap();
        let err = Directory::load(dir.path()).unwrap_err();
        assert!(err.contains(FILE), "{err}");
    }
}
