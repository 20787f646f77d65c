//! The gateway's secrets as the configuration gives them (`[keys]`), and the check that a
//! node's key is the one its store's data was made with: nodes sharing a store with
//! different password keys would each refuse the others' users.

use std::path::Path;

use anyhow::Context;
use mftgw_core::keys;
use mftgw_domain::password::PasswordKey;
use mftgw_store::Maintenance;

use crate::config::{Config, KeysConfig, SelectedStore};

/// What the store records the password key's fingerprint under.
const PASSWORD_KEY: &str = "gateway_password";

/// The gateway password key: `[keys] password_key`, or the file `password_key_file` names,
/// or, on the embedded store only, `<data_dir>/gateway-password.key` (made on first start).
pub fn password_key(config: &Config) -> anyhow::Result<PasswordKey> {
    key_from(
        &config.keys,
        &config.store.selected()?,
        &config.password_key_path(),
    )
}

fn key_from(
    keys: &KeysConfig,
    store: &SelectedStore,
    own_file: &Path,
) -> anyhow::Result<PasswordKey> {
    match (&keys.password_key, &keys.password_key_file) {
        (Some(_), Some(_)) => {
            anyhow::bail!("[keys] password_key and password_key_file: give one of them")
        }
        (Some(hex), None) => {
            PasswordKey::from_hex(hex).context("[keys] password_key is not 64 hex digits")
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("[keys] password_key_file {}", path.display()))?;
            PasswordKey::from_hex(&text)
                .with_context(|| format!("{} is not 64 hex digits", path.display()))
        }
        (None, None) => match store {
            SelectedStore::Embedded => keys::load_or_create_password_key(own_file),
            SelectedStore::Postgres(_) => anyhow::bail!(
                "a node on a shared store needs [keys] password_key (or password_key_file), the \
                 same on every node: a key made here would refuse the users of every other node"
            ),
        },
    }
}

/// Refuses a key other than the one the store's data was made with (the first node to use
/// the store records its key's fingerprint).
pub async fn check_password_key<S: Maintenance>(
    store: &S,
    key: &PasswordKey,
) -> anyhow::Result<()> {
    let ours = key.fingerprint();
    let recorded = store.key_fingerprint(PASSWORD_KEY, &ours).await?;
    anyhow::ensure!(
        recorded == ours,
        "this node's gateway password key is not the one the store's users were registered \
         with, so every gateway password would fail: give every node the same [keys] \
         password_key"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_store_takes_its_key_from_the_configuration_only() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("gateway-password.key");
        let postgres = SelectedStore::Postgres("postgres://db/gateway".into());
        let error = key_from(&KeysConfig::default(), &postgres, &own).unwrap_err();
        assert!(
            error.to_string().contains("needs [keys] password_key"),
            "{error}"
        );
        assert!(!own.exists(), "a key was made for a shared store");

        let made = key_from(&KeysConfig::default(), &SelectedStore::Embedded, &own).unwrap();
        assert!(own.exists());
        let hex = made.to_hex();
        let given = KeysConfig {
            password_key: Some(hex.clone()),
            ..KeysConfig::default()
        };
        assert_eq!(key_from(&given, &postgres, &own).unwrap().to_hex(), hex);
        let from_file = KeysConfig {
            password_key_file: Some(own.clone()),
            ..KeysConfig::default()
        };
        assert_eq!(key_from(&from_file, &postgres, &own).unwrap().to_hex(), hex);
        let both = KeysConfig {
            password_key: Some(hex),
            password_key_file: Some(own.clone()),
        };
        assert!(key_from(&both, &postgres, &own).is_err());
    }
}
