//! The gateway password key file: 32 random bytes as hex, created on first start, readable by
//! the gateway's user only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use mftgw_domain::password::PasswordKey;

pub fn load_or_create_password_key(path: &Path) -> anyhow::Result<PasswordKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => PasswordKey::from_hex(&text)
            .with_context(|| format!("password key {} is not 64 hex digits", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = PasswordKey::generate();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating password key {}", path.display()))?;
            file.write_all(key.to_hex().as_bytes())?;
            file.sync_all()?;
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}
