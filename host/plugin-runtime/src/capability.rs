//! Capability names of ABI 0.1 (the same names the SDK writes into manifests).

use std::fmt;
use std::str::FromStr;

/// A capability a plugin may declare. Each host import needs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// `log`: write to the host log.
    Log,
    /// `mesh-read`: read configs, nodes, peer links, rendered configs.
    MeshRead,
    /// `records-read`: read the plugin's records.
    RecordsRead,
    /// `records-write`: write the plugin's records.
    RecordsWrite,
    /// `files-write`: hand files to the host.
    FilesWrite,
    /// `events-publish`: ask for projection refreshes.
    EventsPublish,
    /// `config-hooks`: contribute managed hooks to rendered configs.
    ConfigHooks,
}

impl Capability {
    /// Every capability of this ABI.
    pub const ALL: [Capability; 7] = [
        Capability::Log,
        Capability::MeshRead,
        Capability::RecordsRead,
        Capability::RecordsWrite,
        Capability::FilesWrite,
        Capability::EventsPublish,
        Capability::ConfigHooks,
    ];

    /// The manifest name.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Log => "log",
            Capability::MeshRead => "mesh-read",
            Capability::RecordsRead => "records-read",
            Capability::RecordsWrite => "records-write",
            Capability::FilesWrite => "files-write",
            Capability::EventsPublish => "events-publish",
            Capability::ConfigHooks => "config-hooks",
        }
    }
}

impl FromStr for Capability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("unknown capability {s:?}"))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
