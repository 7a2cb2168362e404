//! awscli pointed at a node's S3 gateway, as the benches, the demo and the
//! tests run it: the gateway's endpoint, the region S3 clients default to,
//! and only the given key (the user's own awscli configuration is not read).

use std::process::Command;

/// `aws --endpoint-url ENDPOINT --region us-east-1`, signing with
/// `access_key` / `secret_key`; the caller adds the arguments.
pub fn command(endpoint: &str, access_key: &str, secret_key: &str) -> Command {
    let mut command = Command::new("aws");
    command
        .args(["--endpoint-url", endpoint, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    command
}
