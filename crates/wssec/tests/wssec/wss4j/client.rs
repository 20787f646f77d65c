//! Runs `WssClient.java` (beside this file), Apache WSS4J 1.6 from Debian's
//! `libwss4j-java`, compiled once per directory with `javac`: the independent WS-Security
//! peer of the wssec tests and of the gateway's EMCS tests (which include this file by path).

use std::path::{Path, PathBuf};
use std::process::Command;

const JARS: [&str; 6] = [
    "wss4j",
    "xmlsec",
    "commons-logging",
    "commons-codec",
    "slf4j-api",
    "slf4j-simple",
];

/// The compiled client in a directory of its own.
pub struct Wss4j {
    classes: PathBuf,
}

/// A PKCS#12 key store: file and password.
pub struct KeyStore<'a> {
    pub file: &'a Path,
    pub password: &'a str,
}

impl Wss4j {
    /// Compiles the client into `dir/classes` unless it is there.
    pub fn compile(dir: &Path) -> Wss4j {
        let wss4j = Wss4j {
            classes: dir.join("classes"),
        };
        if !wss4j.classes.join("WssClient.class").exists() {
            // The path works from every crate of the workspace.
            let source = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../wssec/tests/wssec/wss4j/WssClient.java"
            );
            run(Command::new("javac")
                .arg("-d")
                .arg(&wss4j.classes)
                .arg("-cp")
                .arg(wss4j.classpath())
                .arg(source));
        }
        wss4j
    }

    fn classpath(&self) -> String {
        let mut entries = vec![self.classes.display().to_string()];
        for jar in JARS {
            let path = PathBuf::from(format!("/usr/share/java/{jar}.jar"));
            assert!(
                path.exists(),
                "{} is missing: scripts/test installs libwss4j-java",
                path.display()
            );
            entries.push(path.display().to_string());
        }
        entries.join(":")
    }

    fn java(&self, mode: &str, args: &[&Path]) -> String {
        run(Command::new("java")
            .arg("-cp")
            .arg(self.classpath())
            .args(["WssClient", mode])
            .args(args))
    }

    /// Each `input` secured by `client` for the holder of `recipient` (a DER certificate),
    /// with WSS4J's Basic Security Profile compliance on or off, written to its `output`; in
    /// one run.
    pub fn seal(
        &self,
        files: &[(&Path, &Path)],
        client: &KeyStore<'_>,
        recipient: &Path,
        bsp: bool,
    ) {
        let bsp = bsp.to_string();
        let args: Vec<&Path> = files
            .iter()
            .flat_map(|&(input, output)| {
                [
                    input,
                    client.file,
                    Path::new(client.password),
                    recipient,
                    output,
                    Path::new(&bsp),
                ]
            })
            .collect();
        self.java("seal", &args);
    }

    /// Each `input` processed as WSS4J receives it for `client`, trusting the certificates
    /// of `trust` (password `changeit`), in one run: the decrypted envelope is written to its
    /// `output`, and the client's reports returned in order (`signer …`, `signed …`,
    /// `decrypted`, `timestamp` lines).
    pub fn open(
        &self,
        files: &[(&Path, &Path)],
        client: &KeyStore<'_>,
        trust: &Path,
    ) -> Vec<String> {
        let args: Vec<&Path> = files
            .iter()
            .flat_map(|&(input, output)| {
                [
                    input,
                    client.file,
                    Path::new(client.password),
                    trust,
                    output,
                ]
            })
            .collect();
        let report = self.java("open", &args);
        report
            .split("== ")
            .skip(1)
            .map(|one| one.split_once('\n').map_or("", |(_, rest)| rest).to_owned())
            .collect()
    }
}

/// A PKCS#12 trust store (password `changeit`) at `path` holding `certificates` (PEM or DER
/// files), made with the JDK's `keytool`.
pub fn trust_store(path: &Path, certificates: &[&Path]) -> PathBuf {
    for (index, certificate) in certificates.iter().enumerate() {
        run(Command::new("keytool")
            .args(["-importcert", "-noprompt", "-storetype", "PKCS12"])
            .args(["-storepass", "changeit", "-alias", &format!("ca{index}")])
            .arg("-file")
            .arg(certificate)
            .arg("-keystore")
            .arg(path));
    }
    path.to_path_buf()
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("java and javac are installed");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}
