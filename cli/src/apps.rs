//! The apps a node trusts: one small TOML file per app in the node's `apps/` directory,
//! written by `stnode app add` and read by the node's app server on every connection (so
//! registering or revoking an app needs no restart: delete the file to revoke).
//!
//! ```toml
//! # Offst app registration: stctrl
//! public_key = "Fy2d…"
//! permissions = "info,buy,sell"
//! ```

use std::path::{Path, PathBuf};

use offst_node::app_server::{AppRegistry, RegisteredApp};
use offst_proto::app::Permissions;
use offst_proto::PublicKey;
use serde::{Deserialize, Serialize};

/// The extension of a registration file.
pub const APP_FILE_EXTENSION: &str = "app";

/// Most apps a node registers (the app server reads them all on every connection).
pub const MAX_APPS: usize = 256;

/// Largest registration file read.
const MAX_APP_FILE_LEN: u64 = 4096;

/// Longest app name.
pub const MAX_APP_NAME_LEN: usize = 64;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppFile {
    public_key: String,
    permissions: String,
}

/// A node's app registry on disk.
#[derive(Debug, Clone)]
pub struct AppDirectory {
    dir: PathBuf,
}

impl AppDirectory {
    /// The registry in `dir` (created when the first app is registered).
    pub fn new(dir: impl Into<PathBuf>) -> AppDirectory {
        AppDirectory { dir: dir.into() }
    }

    /// Where the registry lives.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.{APP_FILE_EXTENSION}"))
    }

    /// Registers an app. Refuses an invalid or taken name, and a key registered already.
    pub fn register(
        &self,
        name: &str,
        public_key: PublicKey,
        permissions: Permissions,
    ) -> Result<PathBuf, String> {
        check_name(name)?;
        let apps = self.list()?;
        if let Some(app) = apps.iter().find(|app| app.name == name) {
            return Err(format!(
                "an app named {:?} is registered already (key {}); remove it first with \
                 `stnode app remove {name}`",
                app.name, app.public_key
            ));
        }
        if let Some(app) = apps.iter().find(|app| app.public_key == public_key) {
            return Err(format!(
                "this key is registered already, as the app {:?}",
                app.name
            ));
        }
        if apps.len() >= MAX_APPS {
            return Err(format!("a node registers at most {MAX_APPS} apps"));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| format!("creating {}: {err}", self.dir.display()))?;
        let file = AppFile {
            public_key: public_key.to_string(),
            permissions: permissions.to_string(),
        };
        let body = toml::to_string(&file).map_err(|err| err.to_string())?;
        let path = self.file(name);
        let temp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(
            &temp,
            format!(
                "# Offst app registration: {name}. Delete this file to revoke the app.\n{body}"
            ),
        )
        .map_err(|err| format!("writing {}: {err}", temp.display()))?;
        std::fs::rename(&temp, &path)
            .map_err(|err| format!("writing {}: {err}", path.display()))?;
        Ok(path)
    }

    /// Removes a registration; the app is refused from its next connection on.
    pub fn remove(&self, name: &str) -> Result<(), String> {
        check_name(name)?;
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("no app named {name:?} is registered"))
            }
            Err(err) => Err(format!("removing {}: {err}", path.display())),
        }
    }

    /// Every registered app, by name. A damaged file is an error naming it.
    pub fn list(&self) -> Result<Vec<RegisteredApp>, String> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(format!("reading {}: {err}", self.dir.display())),
        };
        let mut apps = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|err| format!("reading {}: {err}", self.dir.display()))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some(APP_FILE_EXTENSION) {
                continue;
            }
            if apps.len() == MAX_APPS {
                return Err(format!(
                    "{} holds more than {MAX_APPS} app files",
                    self.dir.display()
                ));
            }
            apps.push(read_app(&path)?);
        }
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }
}

impl AppRegistry for AppDirectory {
    fn lookup(&self, key: &PublicKey) -> Result<Option<RegisteredApp>, String> {
        Ok(self.list()?.into_iter().find(|app| &app.public_key == key))
    }
}

fn read_app(path: &Path) -> Result<RegisteredApp, String> {
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .ok_or_else(|| format!("{}: not a valid app file name", path.display()))?;
    check_name(name).map_err(|err| format!("{}: {err}", path.display()))?;
    let text = crate::ticket::read_small_text(path, MAX_APP_FILE_LEN)?;
    let file: AppFile =
        toml::from_str(&text).map_err(|err| format!("{}: {err}", path.display()))?;
    Ok(RegisteredApp {
        name: name.to_owned(),
        public_key: file
            .public_key
            .parse()
            .map_err(|err| format!("{}: public_key: {err}", path.display()))?,
        permissions: file
            .permissions
            .parse()
            .map_err(|err| format!("{}: permissions: {err}", path.display()))?,
    })
}

/// App names: 1 to 64 letters, digits, `-` and `_` (they name files).
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_APP_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid app name: use 1 to {MAX_APP_NAME_LEN} letters, digits, '-' or '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_are_registered_found_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let apps = AppDirectory::new(dir.path().join("apps"));
        let key = PublicKey::from_bytes([1; 32]);
        let permissions: Permissions = "info,buy".parse().unwrap();
        apps.register("wallet", key, permissions).unwrap();
        let found = apps.lookup(&key).unwrap().unwrap();
        assert_eq!(found.name, "wallet");
        assert_eq!(found.permissions, permissions);
        assert!(apps
            .lookup(&PublicKey::from_bytes([2; 32]))
            .unwrap()
            .is_none());
        // Names and keys are unique.
        assert!(apps
            .register("wallet", PublicKey::from_bytes([3; 32]), permissions)
            .is_err());
        assert!(apps.register("other", key, permissions).is_err());
        apps.remove("wallet").unwrap();
        assert!(apps.lookup(&key).unwrap().is_none());
        assert!(apps.remove("wallet").is_err());
    }

    #[test]
    fn bad_names_and_damaged_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let apps = AppDirectory::new(dir.path());
        for name in ["", "../x", "a b", &"x".repeat(65)] {
            assert!(apps
                .register(name, PublicKey::from_bytes([1; 32]), Permissions::ALL)
                .is_err());
        }
        std::fs::write(dir.path().join("broken.app"), "public_key = 3\n").unwrap();
        let err = apps.lookup(&PublicKey::from_bytes([1; 32])).unwrap_err();
        assert!(err.contains("broken.app"), "{err}");
    }
}
