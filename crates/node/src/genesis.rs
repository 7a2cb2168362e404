//! A chain's genesis as a file every node of a network shares: the params and
//! the signed genesis block, in one canonical encoding. A node that starts
//! from it applies the block like any other (checking the validator's
//! signature and the state root), so it cannot be talked into another chain.

use std::path::Path;

use peercloud_ledger::{Block, BlockError, GenesisConfig, Params};
use peercloud_types::encoding::{DecodeError, Kind, Versioned, decode, encode};
use peercloud_types::{Hash32, Keypair};
use serde::{Deserialize, Serialize};

/// File name of the genesis in a node's data directory.
pub const GENESIS_FILE: &str = "genesis.bin";

/// The params and the genesis block of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The chain's params (validator, treasury, fees, stake, slashing).
    pub params: Params,
    /// Block 0: the genesis allocation, signed by the validator.
    pub block: Block,
}

impl Versioned for Genesis {
    const KIND: u8 = Kind::Genesis as u8;
    const VERSION: u8 = 1;
}

/// Reading or writing a genesis file failed.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read or written.
    #[error("genesis file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a genesis.
    #[error("genesis file {path} is not a Peercloud genesis: {source}")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        source: DecodeError,
    },
    /// The genesis block could not be built.
    #[error("building the genesis block: {0}")]
    Block(Box<BlockError>),
}

impl Genesis {
    /// Builds block 0 from `config`, signed by `validator` (also the genesis authority).
    pub fn create(config: &GenesisConfig, validator: &Keypair) -> Result<Genesis, GenesisError> {
        let (_, built) = config
            .build(validator, validator, Vec::new())
            .map_err(|e| GenesisError::Block(Box::new(e)))?;
        Ok(Genesis {
            params: config.params.clone(),
            block: built.block,
        })
    }

    /// The chain's id: the hash of its genesis block.
    pub fn chain_id(&self) -> Hash32 {
        self.block.hash()
    }

    /// Reads a genesis file.
    pub fn load(path: &Path) -> Result<Genesis, GenesisError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| GenesisError::Io {
            path: shown.clone(),
            source,
        })?;
        decode(&bytes).map_err(|source| GenesisError::Decode {
            path: shown,
            source,
        })
    }

    /// Writes it (the whole file, then renamed into place).
    pub fn save(&self, path: &Path) -> Result<(), GenesisError> {
        let io = |source| GenesisError::Io {
            path: path.display().to_string(),
            source,
        };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, encode(self)).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
