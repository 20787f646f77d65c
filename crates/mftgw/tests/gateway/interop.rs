//! Real FTPS clients against `mftgw demo`: curl, lftp, Python ftplib and the Rust `suppaftp`
//! crate log in with a demo certificate, print the working directory, list the root with
//! `LIST`, `NLST` and `MLSD`, and change into a service folder and `out`.

use std::process::Command;
use std::sync::Arc;

use crate::support::{Demo, curl, heartbeat_files, out_names, run};

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

#[test]
fn curl_lists_the_root_a_service_folder_and_out() {
    let demo = Demo::start();
    for user in demo.users() {
        let (ok, long, err) = curl(&demo, &user, "/", &[]);
        assert!(ok, "curl LIST failed for {}: {err}", user.username);
        let names: Vec<String> = long
            .lines()
            .map(|line| line.split_whitespace().last().unwrap().to_string())
            .collect();
        assert_eq!(sorted(names), user.expected_root(), "LIST:\n{long}");
        assert!(long.lines().all(|l| l.starts_with('d')), "{long}");

        let (ok, names, err) = curl(&demo, &user, "/", &["--list-only"]);
        assert!(ok, "{err}");
        let names = names.lines().map(str::to_string).collect();
        assert_eq!(sorted(names), user.expected_root());

        let (ok, mlsd, err) = curl(&demo, &user, "/", &["-X", "MLSD"]);
        assert!(ok, "{err}");
        let names = mlsd
            .lines()
            .map(|line| line.split_once("; ").unwrap().1.to_string())
            .collect();
        assert_eq!(sorted(names), user.expected_root(), "MLSD:\n{mlsd}");
        assert!(mlsd.lines().all(|l| l.starts_with("type=dir;")), "{mlsd}");

        for folder in [user.services[0].as_str(), "out"] {
            let (ok, listing, err) = curl(&demo, &user, &format!("/{folder}/"), &["-v"]);
            assert!(ok, "curl into /{folder}: {err}");
            assert!(listing.is_empty(), "/{folder} should be empty: {listing}");
            assert!(
                err.contains(&format!("< 250 Directory changed to \"/{folder}\"")),
                "{err}"
            );
        }
    }
    let (ok, _, err) = curl(&demo, &demo.user(0), "/", &["-v", "-Q", "PWD"]);
    assert!(ok, "{err}");
    assert!(
        err.contains("< 257 \"/\" is the current directory"),
        "{err}"
    );
}

#[test]
fn lftp_lists_the_root_a_service_folder_and_out() {
    let demo = Demo::start();
    let user = demo.user(1);
    let script = format!(
        "set net:max-retries 1; set net:timeout 20; set ftp:ssl-force true; \
         set ftp:ssl-protect-data true; set ssl:ca-file {ca}; set ssl:cert-file {cert}; \
         set ssl:key-file {key}; set ftp:use-mlsd true; \
         open -u '{name},{password}' ftp://127.0.0.1:{port}; \
         pwd; echo ==LS; ls; echo ==NLIST; nlist; echo ==CLS; cls -1; \
         cd {service}; pwd; cd /out; pwd; echo ==OUT; ls; quit",
        ca = demo.ca().display(),
        cert = user.cert.display(),
        key = user.key.display(),
        name = user.username,
        password = user.password,
        port = demo.port,
        service = user.services[0],
    );
    let (ok, out, err) = run(Command::new("timeout").args(["90", "lftp", "-c", &script]));
    assert!(
        ok,
        "lftp failed:\n{out}\n{err}\ngateway log:\n{}",
        demo.log()
    );
    let section = |name: &str| -> Vec<String> {
        out.split(&format!("=={name}\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} section in:\n{out}"))
            .lines()
            .take_while(|line| !line.starts_with("==") && !line.starts_with("ftp://"))
            .map(str::to_string)
            .collect()
    };
    let ls: Vec<String> = section("LS")
        .iter()
        .map(|line| line.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(sorted(ls), user.expected_root(), "{out}");
    assert_eq!(sorted(section("NLIST")), user.expected_root(), "{out}");
    let cls: Vec<String> = section("CLS")
        .iter()
        .map(|name| name.trim_end_matches('/').to_string())
        .collect();
    assert_eq!(sorted(cls), user.expected_root(), "{out}");
    // lftp's `pwd` prints the URL of the working directory.
    let root = format!(
        "ftp://{}:{}@127.0.0.1:{}",
        user.username, user.password, demo.port
    );
    let pwds: Vec<&str> = out.lines().filter(|l| l.starts_with("ftp://")).collect();
    assert_eq!(
        pwds,
        [
            root.clone(),
            format!("{root}/{}", user.services[0]),
            format!("{root}/out")
        ],
        "{out}"
    );
    assert!(section("OUT").is_empty(), "{out}");
}

#[test]
fn python_ftplib_lists_the_root_a_service_folder_and_out() {
    let demo = Demo::start();
    for user in demo.users() {
        let (ok, out, err) = demo.python("ftplib_session.py", &user, &[&user.services[0]]);
        assert!(
            ok,
            "ftplib failed for {}:\n{err}\n{}",
            user.username,
            demo.log()
        );
        let result: serde_json::Value = serde_json::from_str(&out).unwrap();
        let strings = |key: &str| -> Vec<String> {
            result[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        assert!(result["welcome"].as_str().unwrap().starts_with("220"));
        assert!(result["login"].as_str().unwrap().starts_with("230"));
        assert_eq!(result["pwd"], "/");
        let listed: Vec<String> = strings("list")
            .iter()
            .map(|line| line.split_whitespace().last().unwrap().to_string())
            .collect();
        assert_eq!(sorted(listed), user.expected_root());
        assert_eq!(sorted(strings("nlst")), user.expected_root());
        let mlsd: Vec<String> = result["mlsd"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| {
                assert_eq!(pair[1], "dir");
                pair[0].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(sorted(mlsd), user.expected_root());
        assert_eq!(result["pwd_service"], format!("/{}", user.services[0]));
        assert!(result["cwd_out"].as_str().unwrap().starts_with("250"));
        assert!(strings("list_out").is_empty());
        assert!(result["quit"].as_str().unwrap().starts_with("221"));
    }
}

#[test]
fn rust_suppaftp_lists_the_root_a_service_folder_and_out() {
    use suppaftp::{RustlsConnector, RustlsFtpStream};
    let demo = Demo::start();
    let user = demo.user(2);
    let tls: Arc<rustls::ClientConfig> = demo.tls(&user);
    let mut ftp = RustlsFtpStream::connect(demo.addr())
        .unwrap()
        .into_secure(RustlsConnector::from(tls), "127.0.0.1")
        .unwrap();
    ftp.login(user.username.as_str(), user.password.as_str())
        .unwrap();
    assert_eq!(ftp.pwd().unwrap(), "/");
    let listed: Vec<String> = ftp
        .list(None)
        .unwrap()
        .iter()
        .map(|line| line.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(sorted(listed), user.expected_root());
    assert_eq!(sorted(ftp.nlst(None).unwrap()), user.expected_root());
    let mlsd: Vec<String> = ftp
        .mlsd(None)
        .unwrap()
        .iter()
        .map(|line| line.split_once("; ").unwrap().1.to_string())
        .collect();
    assert_eq!(sorted(mlsd), user.expected_root());
    ftp.cwd(&user.services[0]).unwrap();
    assert_eq!(ftp.pwd().unwrap(), format!("/{}", user.services[0]));
    ftp.cwd("/out").unwrap();
    assert!(ftp.nlst(None).unwrap().is_empty());
    ftp.quit().unwrap();
}

/// The commands `mftgw demo` prints are meant to be pasted into a shell: run them as printed.
#[test]
fn the_printed_curl_and_lftp_commands_work_as_printed() {
    let demo = Demo::start();
    let printed = demo.stdout();
    // The first command starting with `marker` after the heading `section`.
    let command_after = |section: &str, marker: &str| -> String {
        let start = printed
            .find(section)
            .and_then(|at| printed[at..].find(marker).map(|offset| at + offset))
            .unwrap_or_else(|| panic!("no {marker:?} after {section:?} in:\n{printed}"));
        let mut command = String::new();
        for line in printed[start..].lines() {
            command.push_str(line.trim_end_matches('\\'));
            if !line.ends_with('\\') {
                break;
            }
        }
        command
    };
    let user = demo.user(0);
    for marker in ["curl --ssl-reqd", "lftp -u"] {
        let command = command_after("List the root", marker);
        let (ok, out, err) = run(Command::new("timeout").args(["60", "bash", "-c", &command]));
        assert!(ok, "{command}\nfailed: {err}");
        let names: Vec<String> = out
            .lines()
            .map(|line| line.split_whitespace().last().unwrap().to_string())
            .collect();
        assert_eq!(sorted(names), user.expected_root(), "{command}\n{out}");
    }

    let heartbeat = command_after("Send a heartbeat", "curl --ssl-reqd");
    let (ok, _, err) = run(Command::new("timeout").args(["60", "bash", "-c", &heartbeat]));
    assert!(ok, "{heartbeat}\nfailed: {err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status_3 = loop {
        if let Some(name) = out_names(&demo, &user)
            .into_iter()
            .find(|n| n.ends_with("_3.xml"))
        {
            break name;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no heartbeat answer:\n{}",
            demo.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let ping = status_3
        .strip_prefix("status_FTPSGW.Heartbeat_")
        .and_then(|rest| rest.strip_suffix("_3.xml"))
        .unwrap();
    assert!(
        ping.starts_with("ping") && ping.ends_with("-hb01.xml"),
        "{ping}"
    );
    // The next printed command lists /out.
    let list_out = command_after("-hb01.xml", "curl --ssl-reqd");
    assert!(list_out.ends_with("/out/"), "{list_out}");
    let (ok, listing, err) = run(Command::new("timeout").args(["60", "bash", "-c", &list_out]));
    assert!(ok, "{list_out}\nfailed: {err}");
    let names: Vec<String> = listing
        .lines()
        .map(|line| line.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(names, heartbeat_files(ping));

    // The printed backend API line, with a real SKATTransactionId in it.
    let body = demo.dir.path().join("decl.xml");
    std::fs::write(&body, "<decl/>").unwrap();
    let (ok, _, err) = curl(
        &demo,
        &user,
        "/Manifest.MidlertidigOpbevaringOpdater/decl-1.xml",
        &["-T", body.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let spool = demo.manifest().api.spool.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let id = loop {
        let spooled = std::fs::read_dir(&spool)
            .into_iter()
            .flatten()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .find(|name| name.starts_with("ci") && !name.ends_with(".json"));
        if let Some(id) = spooled {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "nothing spooled");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let accept =
        command_after("Answer as a backend", "curl --cacert").replace("<SKATTransactionId>", &id);
    let (ok, answer, err) = run(Command::new("timeout").args(["60", "bash", "-c", &accept]));
    assert!(ok, "{accept}\nfailed: {err}");
    assert!(answer.contains("\"state\":\"accepted\""), "{answer}");
    let operators = command_after("Operators:", "curl --cacert");
    let operators = operators.split("  (also").next().unwrap();
    let (ok, deliveries, err) = run(Command::new("timeout").args(["60", "bash", "-c", operators]));
    assert!(
        ok && deliveries.contains("\"deliveries\""),
        "{operators}: {deliveries} {err}"
    );

    // The portal line shows the login page for the certificate it names, and the printed
    // PKCS#12 file exists.
    let portal = command_after("Certificate Portal:", "curl --cacert");
    let (ok, page, err) = run(Command::new("timeout").args(["60", "bash", "-c", &portal]));
    let unregistered = crate::support::username_of(&demo.certificate("unregistered").cert);
    assert!(
        ok && page.contains(&unregistered) && page.contains("id=\"password\""),
        "{portal}: {page} {err}"
    );
    let p12 = &demo.manifest().certificates["unregistered"].p12;
    assert!(
        printed.contains(p12.to_str().unwrap()) && p12.exists(),
        "{}",
        p12.display()
    );

    // The legacy lines: the login folder holds the service folders; the company's out lists
    // the files answered above for the same company (none: those were the current profile's).
    let legacy = &demo.legacy().users[0];
    let list_home = command_after("Legacy Secure FTP", "curl --ssl-reqd");
    let (ok, home, err) = run(Command::new("timeout").args(["60", "bash", "-c", &list_home]));
    assert!(
        ok,
        "{list_home}
failed: {err}"
    );
    let mut services = legacy.services.clone();
    services.sort();
    assert_eq!(
        sorted(
            home.lines()
                .map(|line| line.split_whitespace().last().unwrap().to_string())
                .collect()
        ),
        services
    );
    let list_out = printed
        .lines()
        .find(|line| line.ends_with("/%2Fout/"))
        .unwrap_or_else(|| panic!("no legacy out line in:\n{printed}"))
        .trim();
    let (ok, _, err) = run(Command::new("timeout").args(["60", "bash", "-c", list_out]));
    assert!(
        ok,
        "{list_out}
failed: {err}"
    );
}

/// A restarted demo keeps its users, passwords and roles.
#[test]
fn the_demo_keeps_its_data_across_a_restart() {
    let mut demo = Demo::start();
    let before = demo.user(0);
    demo.restart();
    let after = demo.user(0);
    assert_eq!(
        (&after.username, &after.password),
        (&before.username, &before.password)
    );
    let (ok, listing, err) = curl(&demo, &after, "/", &["--list-only"]);
    assert!(ok, "{err}\n{}", demo.log());
    let names = listing.lines().map(str::to_string).collect();
    assert_eq!(sorted(names), after.expected_root());
}
