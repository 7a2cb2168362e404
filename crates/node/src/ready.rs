//! The line a node prints on stdout once it serves: what a launcher (the
//! devnet, a service manager, a test) waits for and reads the node's
//! addresses from.

/// The prefix of the line a node prints when it is ready.
pub const READY_PREFIX: &str = "ready ";

/// The fields of a node's ready line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Node id.
    pub node: String,
    /// `validator` or `provider`.
    pub role: String,
    /// Its libp2p address (with `/p2p/`).
    pub p2p: String,
    /// Its API base URL.
    pub api: String,
    /// Its web gateway's base URL (a node of an older version prints none).
    pub web: Option<String>,
    /// Its S3 gateway's base URL (a node of an older version prints none).
    pub s3: Option<String>,
}

impl Ready {
    /// The line a node prints.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{READY_PREFIX}node={} role={} p2p={} api={}",
            self.node, self.role, self.p2p, self.api
        );
        if let Some(web) = &self.web {
            line.push_str(&format!(" web={web}"));
        }
        if let Some(s3) = &self.s3 {
            line.push_str(&format!(" s3={s3}"));
        }
        line
    }

    /// Parses a ready line.
    pub fn parse(line: &str) -> Option<Ready> {
        let rest = line.trim().strip_prefix(READY_PREFIX)?;
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        Some(Ready {
            node: field("node")?,
            role: field("role")?,
            p2p: field("p2p")?,
            api: field("api")?,
            web: field("web"),
            s3: field("s3"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ready_line_round_trips() {
        let ready = Ready {
            node: "pcn1x".into(),
            role: "provider".into(),
            p2p: "/ip4/127.0.0.1/tcp/1/p2p/12D3".into(),
            api: "http://127.0.0.1:2".into(),
            web: Some("http://127.0.0.1:3".into()),
            s3: Some("http://127.0.0.1:4".into()),
        };
        assert_eq!(Ready::parse(&ready.line()), Some(ready));
        assert_eq!(Ready::parse("starting"), None);
    }
}
