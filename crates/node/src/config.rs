//! How a node is configured: a flag beats an environment variable, which
//! beats the TOML file (`<data-dir>/config.toml` or `--config`), which beats
//! the default. The CLI reads flags and environment (clap); this module reads
//! the file, merges, and measures what the machine has free.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use peercloud_net::Multiaddr;
use peercloud_types::{Amount, PriceSheet, Resources};
use serde::{Deserialize, Serialize};

/// Name of the config file looked for in the data directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Default API address: loopback only, a port the OS picks.
pub const API_DEFAULT: &str = "127.0.0.1:0";
/// Default web gateway address: loopback, a free port (set `web` to serve
/// sites to other machines, e.g. `0.0.0.0:8080`).
pub const WEB_DEFAULT: &str = "127.0.0.1:0";
/// Default S3 gateway address: loopback, a free port (the gateway acts
/// with its users' wallets: open it to other machines only deliberately).
pub const S3_DEFAULT: &str = "127.0.0.1:0";
/// Default libp2p addresses: every interface, TCP and QUIC, ports the OS
/// picks (kept across restarts).
pub const LISTEN_DEFAULT: [&str; 2] = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];
/// Bandwidth a node offers when the config says nothing (it cannot be measured offline).
pub const BANDWIDTH_DEFAULT_BYTES_PER_SEC: u64 = 100 << 20;
/// Share of free memory and disk a node offers by default, in percent.
pub const OFFER_SHARE_PERCENT: u64 = 50;

/// The settings one source (flags + environment, or the file) may give.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// libp2p listen addresses.
    pub listen: Option<Vec<String>>,
    /// Peers to join through, each ending in `/p2p/<peer id>`.
    pub bootstrap: Option<Vec<String>>,
    /// Relays to reserve a slot on when the node is not reachable directly,
    /// each ending in `/p2p/<peer id>` (default: connected peers that relay).
    pub relays: Option<Vec<String>>,
    /// Addresses others reach this node at (a public IP, a forwarded port).
    pub external: Option<Vec<String>>,
    /// Whether the node relays for peers behind NAT once it is reachable
    /// itself (default: yes).
    pub relay_service: Option<bool>,
    /// The peers are on a private network (a LAN): private addresses count
    /// as reachable when the node tests whether it is behind NAT.
    pub private_network: Option<bool>,
    /// HTTP API address (loopback).
    pub api: Option<String>,
    /// Web gateway address: public buckets' sites, no token (any address).
    pub web: Option<String>,
    /// S3 gateway address: the users' buckets for S3 clients (SigV4 keys).
    pub s3: Option<String>,
    /// Country code the node registers.
    pub location: Option<String>,
    /// CPU offered, millicores (default: every core).
    pub cpu_millicores: Option<u64>,
    /// Memory offered, bytes (default: half the free memory).
    pub memory_bytes: Option<u64>,
    /// Storage offered, bytes (default: half the free disk).
    pub storage_bytes: Option<u64>,
    /// Bandwidth offered, bytes per second.
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Flat price per job, PCL.
    pub price_job: Option<String>,
    /// Price per billion units of fuel, PCL.
    pub price_gigafuel: Option<String>,
    /// A leased space's floor: PCL per core-hour of CPU.
    pub lease_price_cpu_core_hour: Option<String>,
    /// A leased space's floor: PCL per GiB-hour of memory.
    pub lease_price_memory_gib_hour: Option<String>,
    /// A leased space's floor: PCL per GiB-hour of disk.
    pub lease_price_storage_gib_hour: Option<String>,
    /// Stake the owner puts behind the node, PCL (default: the network's
    /// minimum to serve; never less than it).
    pub stake: Option<String>,
    /// Disk the edge cache may use for public pieces served to web
    /// visitors, bytes (default: 1 GiB, at most the storage offered; 0: off).
    pub edge_cache_bytes: Option<u64>,
}

impl Settings {
    /// `self`, with what it leaves unset taken from `lower`.
    pub fn over(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            bootstrap: self.bootstrap.or(lower.bootstrap),
            relays: self.relays.or(lower.relays),
            external: self.external.or(lower.external),
            relay_service: self.relay_service.or(lower.relay_service),
            private_network: self.private_network.or(lower.private_network),
            api: self.api.or(lower.api),
            web: self.web.or(lower.web),
            s3: self.s3.or(lower.s3),
            location: self.location.or(lower.location),
            cpu_millicores: self.cpu_millicores.or(lower.cpu_millicores),
            memory_bytes: self.memory_bytes.or(lower.memory_bytes),
            storage_bytes: self.storage_bytes.or(lower.storage_bytes),
            bandwidth_bytes_per_sec: self
                .bandwidth_bytes_per_sec
                .or(lower.bandwidth_bytes_per_sec),
            price_job: self.price_job.or(lower.price_job),
            price_gigafuel: self.price_gigafuel.or(lower.price_gigafuel),
            lease_price_cpu_core_hour: self
                .lease_price_cpu_core_hour
                .or(lower.lease_price_cpu_core_hour),
            lease_price_memory_gib_hour: self
                .lease_price_memory_gib_hour
                .or(lower.lease_price_memory_gib_hour),
            lease_price_storage_gib_hour: self
                .lease_price_storage_gib_hour
                .or(lower.lease_price_storage_gib_hour),
            stake: self.stake.or(lower.stake),
            edge_cache_bytes: self.edge_cache_bytes.or(lower.edge_cache_bytes),
        }
    }

    /// Reads a TOML config file.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Writes it as TOML.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string(self).map_err(|e| ConfigError::Toml {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })
    }
}

/// A node's resolved configuration.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Keys, ledger, chunks, token.
    pub data_dir: PathBuf,
    /// libp2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers.
    pub bootstrap: Vec<Multiaddr>,
    /// Relays to use when not reachable (empty: any that relays).
    pub relays: Vec<Multiaddr>,
    /// Addresses others reach it at.
    pub external: Vec<Multiaddr>,
    /// Whether it relays for others once reachable.
    pub relay_service: bool,
    /// Whether private addresses count as reachable.
    pub private_network: bool,
    /// HTTP API address.
    pub api: SocketAddr,
    /// Web gateway address.
    pub web: SocketAddr,
    /// S3 gateway address.
    pub s3: SocketAddr,
    /// Country code.
    pub location: String,
    /// What it offers.
    pub resources: Resources,
    /// Its base prices.
    pub prices: PriceSheet,
    /// Its floor for leased spaces (CPU per core-second, memory per
    /// GiB-second, disk per GiB-hour), under which it never bids.
    pub lease_prices: PriceSheet,
    /// Stake its owner puts behind it (`None`: the network's minimum).
    pub stake: Option<Amount>,
    /// The edge cache's budget, bytes (0: off).
    pub edge_cache_bytes: u64,
}

/// A setting is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("config file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a node.
    #[error("config file {}: {reason}", path.display())]
    Toml {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// One setting's value is wrong.
    #[error("setting `{setting}`: {reason}")]
    Invalid {
        /// Its name.
        setting: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
}

fn invalid(setting: &'static str) -> impl Fn(String) -> ConfigError {
    move |reason| ConfigError::Invalid { setting, reason }
}

fn addrs(setting: &'static str, values: Vec<String>) -> Result<Vec<Multiaddr>, ConfigError> {
    values
        .iter()
        .map(|v| {
            v.parse::<Multiaddr>()
                .map_err(|e| invalid(setting)(format!("{v:?} is not a multiaddr: {e}")))
        })
        .collect()
}

/// A leased space's default floor per core-hour: 0.05 PCL.
pub const LEASE_CPU_CORE_HOUR_DEFAULT: Amount = Amount::from_base_units(50_000_000);
/// A leased space's default floor per GiB-hour of memory: 0.005 PCL.
pub const LEASE_MEMORY_GIB_HOUR_DEFAULT: Amount = Amount::from_base_units(5_000_000);
/// A leased space's default floor per GiB-hour of disk: 0.0001 PCL.
pub const LEASE_STORAGE_GIB_HOUR_DEFAULT: Amount = Amount::from_base_units(100_000);

fn price(
    setting: &'static str,
    value: Option<String>,
    default: Amount,
) -> Result<Amount, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<Amount>()
            .map_err(|e| invalid(setting)(format!("{v:?} is not an amount of PCL: {e}"))),
    }
}

impl NodeConfig {
    /// Merges `given` (flags over environment) over the config file (`file`,
    /// or `<data_dir>/config.toml` when present) over the defaults.
    pub fn resolve(
        data_dir: &Path,
        file: Option<&Path>,
        given: Settings,
    ) -> Result<NodeConfig, ConfigError> {
        let default_file = data_dir.join(CONFIG_FILE);
        let from_file = match file {
            Some(path) => Settings::load(path)?,
            None if default_file.exists() => Settings::load(&default_file)?,
            None => Settings::default(),
        };
        let s = given.over(from_file);
        let listen = addrs(
            "listen",
            s.listen
                .unwrap_or_else(|| LISTEN_DEFAULT.iter().map(|a| (*a).to_owned()).collect()),
        )?;
        let bootstrap = addrs("bootstrap", s.bootstrap.unwrap_or_default())?;
        let relays = addrs("relays", s.relays.unwrap_or_default())?;
        if let Some(addr) = relays.iter().find(|a| {
            !matches!(
                a.iter().last(),
                Some(peercloud_net::multiaddr::Protocol::P2p(_))
            )
        }) {
            return Err(invalid("relays")(format!(
                "{addr} does not end in /p2p/<peer id>"
            )));
        }
        let external = addrs("external", s.external.unwrap_or_default())?;
        let api_text = s.api.unwrap_or_else(|| API_DEFAULT.to_owned());
        let api: SocketAddr = api_text
            .parse()
            .map_err(|e| invalid("api")(format!("{api_text:?} is not host:port: {e}")))?;
        if !api.ip().is_loopback() {
            return Err(invalid("api")(format!(
                "{api} is not a loopback address: the API is for this machine only"
            )));
        }
        let web_text = s.web.unwrap_or_else(|| WEB_DEFAULT.to_owned());
        let web: SocketAddr = web_text
            .parse()
            .map_err(|e| invalid("web")(format!("{web_text:?} is not host:port: {e}")))?;
        let s3_text = s.s3.unwrap_or_else(|| S3_DEFAULT.to_owned());
        let s3: SocketAddr = s3_text
            .parse()
            .map_err(|e| invalid("s3")(format!("{s3_text:?} is not host:port: {e}")))?;
        let location = s.location.unwrap_or_else(|| "ZZ".to_owned());
        if location.len() != 2 || !location.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid("location")(format!(
                "{location:?} is not a two-letter country code"
            )));
        }
        let measured = measure(data_dir);
        let resources = Resources {
            cpu_millicores: s.cpu_millicores.unwrap_or(measured.cpu_millicores),
            memory_bytes: s.memory_bytes.unwrap_or(measured.memory_bytes),
            storage_bytes: s.storage_bytes.unwrap_or(measured.storage_bytes),
            bandwidth_bytes_per_sec: s
                .bandwidth_bytes_per_sec
                .unwrap_or(BANDWIDTH_DEFAULT_BYTES_PER_SEC),
            gpus: 0,
        };
        let prices = PriceSheet {
            job_base: price("price_job", s.price_job, Amount::from_base_units(1_000_000))?,
            gigafuel: price(
                "price_gigafuel",
                s.price_gigafuel,
                Amount::from_base_units(1_000_000),
            )?,
            ..PriceSheet::default()
        };
        let per_second =
            |amount: Amount| Amount::from_base_units(amount.base_units().div_ceil(3_600));
        let lease_prices = PriceSheet {
            cpu_core_sec: per_second(price(
                "lease_price_cpu_core_hour",
                s.lease_price_cpu_core_hour,
                LEASE_CPU_CORE_HOUR_DEFAULT,
            )?),
            memory_gib_sec: per_second(price(
                "lease_price_memory_gib_hour",
                s.lease_price_memory_gib_hour,
                LEASE_MEMORY_GIB_HOUR_DEFAULT,
            )?),
            storage_gib_hour: price(
                "lease_price_storage_gib_hour",
                s.lease_price_storage_gib_hour,
                LEASE_STORAGE_GIB_HOUR_DEFAULT,
            )?,
            ..PriceSheet::default()
        };
        let stake = s
            .stake
            .map(|v| price("stake", Some(v), Amount::ZERO))
            .transpose()?;
        Ok(NodeConfig {
            data_dir: data_dir.to_owned(),
            listen,
            bootstrap,
            relays,
            external,
            relay_service: s.relay_service.unwrap_or(true),
            private_network: s.private_network.unwrap_or(false),
            api,
            web,
            s3,
            location,
            resources,
            prices,
            lease_prices,
            stake,
            edge_cache_bytes: s.edge_cache_bytes.unwrap_or_else(|| {
                crate::edge::EDGE_CACHE_DEFAULT_BYTES.min(resources.storage_bytes)
            }),
        })
    }
}

/// What this machine has free now: every core, and [`OFFER_SHARE_PERCENT`]
/// of the available memory and of the free space on the data directory's disk.
pub fn measure(data_dir: &Path) -> Resources {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    let memory = system.available_memory();
    let disks = sysinfo::Disks::new_with_refreshed_list();
    let dir = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_owned());
    let storage = disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map_or(0, |d| d.available_space());
    Resources {
        cpu_millicores: cores * 1_000,
        memory_bytes: memory / 100 * OFFER_SHARE_PERCENT,
        storage_bytes: storage / 100 * OFFER_SHARE_PERCENT,
        bandwidth_bytes_per_sec: BANDWIDTH_DEFAULT_BYTES_PER_SEC,
        gpus: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_beats_the_file_which_beats_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = Settings {
            api: Some("127.0.0.1:7001".into()),
            location: Some("DE".into()),
            cpu_millicores: Some(1_500),
            ..Settings::default()
        };
        file.save(&dir.path().join(CONFIG_FILE)).unwrap();
        let given = Settings {
            api: Some("127.0.0.1:7002".into()),
            ..Settings::default()
        };
        let config = NodeConfig::resolve(dir.path(), None, given).unwrap();
        assert_eq!(config.api.port(), 7002, "flag over file");
        assert_eq!(config.location, "DE", "file over default");
        assert_eq!(config.resources.cpu_millicores, 1_500);
        let listen: Vec<String> = config.listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, LISTEN_DEFAULT);
        assert!(config.relay_service && !config.private_network && config.relays.is_empty());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        for (given, name) in [
            (
                Settings {
                    api: Some("0.0.0.0:80".into()),
                    ..Settings::default()
                },
                "api",
            ),
            (
                Settings {
                    bootstrap: Some(vec!["not an address".into()]),
                    ..Settings::default()
                },
                "bootstrap",
            ),
            (
                Settings {
                    relays: Some(vec!["/ip4/10.0.0.1/tcp/4001".into()]),
                    ..Settings::default()
                },
                "relays",
            ),
            (
                Settings {
                    price_job: Some("-1".into()),
                    ..Settings::default()
                },
                "price_job",
            ),
        ] {
            let err = NodeConfig::resolve(dir.path(), None, given).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
        std::fs::write(dir.path().join(CONFIG_FILE), "listn = 3").unwrap();
        let err = NodeConfig::resolve(dir.path(), None, Settings::default()).unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn measuring_finds_cores_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure(dir.path());
        assert!(r.cpu_millicores >= 1_000);
        assert!(r.memory_bytes > 0);
    }
}
