//! The gateway password key file: 32 random bytes as hex, created on first start, readable by
//! the gateway's user only, and durable before anything is hashed with it.

use std::path::Path;

use anyhow::Context;
use mftgw_domain::password::PasswordKey;

pub fn load_or_create_password_key(path: &Path) -> anyhow::Result<PasswordKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => PasswordKey::from_hex(&text)
            .with_context(|| format!("password key {} is not 64 hex digits", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = PasswordKey::generate();
            crate::files::create_private(path, key.to_hex().as_bytes())
                .with_context(|| format!("creating password key {}", path.display()))?;
            Ok(key)
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}
