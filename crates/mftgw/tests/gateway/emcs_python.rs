//! The EMCS B2B web services driven by a second independent WS-Security peer,
//! `emcs_python/client.py`: Python with lxml and python-xmlsec (libxmlsec1), which secures
//! each request and decrypts and verifies each answer itself, against the real demo. This
//! module owns that client's virtualenv (made once per set of pins in
//! `emcs_python/requirements.txt`, in the user's cache outside the clone) and its tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use mftgw::demo::EmcsUser;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::emcs::{Call, Caller, IE815, element_text, errors, request_element, structure};
use crate::support::{Demo, run};

const REQUIREMENTS: &str = include_str!("emcs_python/requirements.txt");

fn client_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gateway/emcs_python")
}

/// The virtualenv's Python, with the pinned lxml and xmlsec; made on first use.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(make_virtualenv)
}

fn make_virtualenv() -> PathBuf {
    let pins: Vec<&str> = REQUIREMENTS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let name = format!(
        "mftgw-emcs-python-venv-{}",
        pins.join("-").replace("==", "-")
    );
    let cache = PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache");
    let venv = cache.join(&name);
    let python = venv.join("bin/python");
    if python.exists() {
        return python;
    }
    // Made beside it and renamed into place, so that neither a run stopped halfway nor
    // another test process making it at the same time leaves a virtualenv without its
    // packages.
    let building = cache.join(format!("{name}.building-{}", std::process::id()));
    std::fs::create_dir_all(&cache).unwrap();
    let _ = std::fs::remove_dir_all(&building);
    let building_python = building.join("bin/python");
    let steps: [(&str, Command); 3] = [
        ("python3 -m venv", {
            let mut command = Command::new("python3");
            command.args(["-m", "venv"]).arg(&building);
            command
        }),
        ("pip install", {
            let mut command = Command::new(&building_python);
            command
                .args(["-m", "pip", "install", "--disable-pip-version-check"])
                .args(["--only-binary=:all:", "-r"])
                .arg(client_dir().join("requirements.txt"));
            command
        }),
        // A mismatched pair installs, then fails here: xmlsec checks lxml's libxml2.
        ("import lxml and xmlsec", {
            let mut command = Command::new(&building_python);
            command.args(["-c", "import lxml.etree, xmlsec"]);
            command
        }),
    ];
    for (what, mut command) in steps {
        let (ok, out, err) = run(&mut command);
        if !ok {
            let _ = std::fs::remove_dir_all(&building);
            panic!("making the virtualenv: {what} failed:\n{out}\n{err}");
        }
    }
    if let Err(error) = std::fs::rename(&building, &venv) {
        let _ = std::fs::remove_dir_all(&building);
        assert!(python.exists(), "moving the virtualenv into place: {error}");
    }
    python
}

/// `user` makes `call` with the Python client, which checks the answer's signature against
/// `answer_signer` (the gateway's WS-Security certificate unless given): the answer's Body
/// content, decrypted and verified, or why the client refused the answer.
fn call_with_python(
    demo: &Demo,
    user: &EmcsUser,
    call: &Call<'_>,
    answer_signer: Option<&Path>,
) -> Result<String, String> {
    let emcs = demo.manifest().emcs.as_ref().expect("the demo serves EMCS");
    let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let body = demo.dir.path().join(format!(
        "python-{}-{}.xml",
        call.service, call.transaction_id
    ));
    std::fs::write(&body, request_element(&Caller::from(user), call, &now)).unwrap();
    let mut command = Command::new(python());
    command
        .arg(client_dir().join("client.py"))
        .arg("--url")
        .arg(&emcs.endpoints[call.service])
        .arg("--ca")
        .arg(&emcs.tls_ca_pem)
        .arg("--cert")
        .arg(&user.cert_pem)
        .arg("--key")
        .arg(&user.key_pem)
        .arg("--gateway-cert")
        .arg(&emcs.server_wss_cert_pem);
    if let Some(signer) = answer_signer {
        command.arg("--answer-signer").arg(signer);
    }
    let output = command
        .arg(&body)
        .stdin(Stdio::null())
        .output()
        .expect("running client.py");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.code() {
        Some(0) => Ok(stdout),
        // client.py's status for an answer it refuses; a fault (4) or a crash fails the test.
        Some(3) => Err(stderr),
        _ => panic!("client.py failed ({}):\n{stdout}\n{stderr}", output.status),
    }
}

#[test]
fn a_python_xmlsec_client_submits_an_ie815_and_collects_nothing_waiting() {
    let demo = Demo::start();
    let users = &demo.manifest().emcs.as_ref().unwrap().users;
    let consignor = &users[0];
    // SKAT's sample IE815, from this user's excise number.
    let ie815 = IE815.replace("DK82065873300", &consignor.excise_number);
    let submit = Call {
        service: "OIOLedsageDokumentOpret",
        transaction_id: "python-lrn-1",
        content: &structure("IE815", &ie815),
    };
    let body = call_with_python(&demo, consignor, &submit, None).unwrap();
    assert!(body.contains("OIOLedsageDokumentOpret_O"), "{body}");
    assert_eq!(
        element_text(&body, "TransaktionIdentifikator").as_deref(),
        Some("python-lrn-1"),
        "{body}"
    );
    assert!(errors(&body).is_empty(), "{body}");
    let arc = element_text(&body, "LedsagedokumentARCIdentifikator").expect("an ARC");
    assert_eq!(arc.len(), 21, "{arc}");
    let transactions = demo.transactions(&consignor.username);
    assert!(
        transactions
            .iter()
            .any(|t| t["service"] == "OIOLedsageDokumentOpret" && t["state"] == "answered"),
        "{transactions:?}"
    );

    // The other user has no receipt waiting: advice 130, no error.
    let collect = Call {
        service: "OIOKvitteringSamlingHent",
        transaction_id: "python-collect-1",
        content: "",
    };
    let body = call_with_python(&demo, &users[1], &collect, None).unwrap();
    assert!(body.contains("OIOKvitteringSamlingHent_O"), "{body}");
    assert_eq!(
        element_text(&body, "TransaktionIdentifikator").as_deref(),
        Some("python-collect-1"),
        "{body}"
    );
    assert!(errors(&body).is_empty(), "{body}");
    assert_eq!(
        element_text(&body, "AdvisIdentifikator").as_deref(),
        Some("130"),
        "{body}"
    );
}

#[test]
fn the_python_client_refuses_an_answer_not_signed_by_the_certificate_it_expects() {
    let demo = Demo::start();
    let users = &demo.manifest().emcs.as_ref().unwrap().users;
    let caller = &users[0];
    let call = Call {
        service: "OIOLedsageDokumentSamlingHent",
        transaction_id: "python-wrong-signer-1",
        content: "",
    };
    // The gateway answers, signed with its WS-Security certificate; the client expects
    // another user's.
    let why = call_with_python(&demo, caller, &call, Some(&users[1].cert_pem))
        .expect_err("the client refuses the answer");
    assert!(
        why.contains(&format!(
            "the answer's signature does not verify with {}",
            users[1].cert_pem.display()
        )),
        "{why}"
    );
    let transactions = demo.transactions(&caller.username);
    assert!(
        transactions
            .iter()
            .any(|t| t["service"] == "OIOLedsageDokumentSamlingHent" && t["state"] == "answered"),
        "the gateway answered: {transactions:?}"
    );
}
