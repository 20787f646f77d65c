//! What the portal tests share: certificates issued for them from the demo's test PKI, and
//! the portal's address.

use std::path::PathBuf;
use std::process::Command;

use super::{Demo, DemoUser, binary, run};

impl Demo {
    /// The Certificate Portal's base URL, `https://127.0.0.1:<port>` (no trailing slash).
    pub fn portal_url(&self) -> String {
        self.manifest["portal"]["url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/')
            .to_string()
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir().join("pki")
    }

    /// Issues another client certificate from the demo's test PKI with `mftgw pki issue`
    /// (`kind`: voces, moces, foces, ...); returns it as a user with no gateway password.
    pub fn issue_certificate(&self, name: &str, kind: &str, cvr: &str, id: &str) -> DemoUser {
        let (ok, out, err) = run(Command::new(binary())
            .args(["pki", "issue"])
            .arg(self.pki_dir())
            .args([name, "--kind", kind, "--cvr", cvr, "--id", id])
            .env("MFTGW_LOG", "warn"));
        assert!(ok, "mftgw pki issue {name} failed: {out}{err}");
        let clients = self.pki_dir().join("clients");
        let cert = clients.join(format!("{name}.pem"));
        DemoUser {
            username: super::username_of(&cert),
            password: String::new(),
            key: clients.join(format!("{name}.key.pem")),
            cert,
            services: Vec::new(),
        }
    }
}
