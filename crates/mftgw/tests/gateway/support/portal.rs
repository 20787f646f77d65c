//! What the portal tests share: certificates issued for them from the demo's test PKI, and
//! the portal's address.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use super::{Demo, DemoUser, binary, run};

impl Demo {
    /// The Certificate Portal's base URL, `https://127.0.0.1:<port>` (no trailing slash).
    pub fn portal_url(&self) -> String {
        self.manifest().portal.url.trim_end_matches('/').to_string()
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir().join("pki")
    }

    /// Issues another client certificate from the demo's test PKI with `mftgw pki issue`
    /// (`kind`: voces, moces, foces, ...); returns it as a user with no gateway password.
    pub fn issue_certificate(&self, name: &str, kind: &str, cvr: &str, id: &str) -> DemoUser {
        self.issue(name, &["--kind", kind, "--cvr", cvr, "--id", id])
    }

    /// Like [`Demo::issue_certificate`], valid for only `seconds` from now.
    pub fn issue_certificate_valid_for(
        &self,
        name: &str,
        kind: &str,
        cvr: &str,
        id: &str,
        seconds: u64,
    ) -> DemoUser {
        let seconds = seconds.to_string();
        self.issue(
            name,
            &[
                "--kind",
                kind,
                "--cvr",
                cvr,
                "--id",
                id,
                "--valid-secs",
                &seconds,
            ],
        )
    }

    fn issue(&self, name: &str, options: &[&str]) -> DemoUser {
        let (ok, out, err) = run(Command::new(binary())
            .args(["pki", "issue"])
            .arg(self.pki_dir())
            .arg(name)
            .args(options)
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

/// A browser-like client of the portal: one certificate, a cookie jar, no redirects followed.
pub struct Portal {
    pub client: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
    pub username: String,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The first CSRF token in the page's forms.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self
            .body
            .find(marker)
            .expect("the page has a form with a CSRF token")
            + marker.len();
        self.body[start..start + 64].to_string()
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map(|value| value.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn assert(&self, status: StatusCode, contains: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.body.contains(contains),
            "the page does not say {contains:?}:\n{}",
            self.body
        );
    }
}

impl Portal {
    pub fn new(demo: &Demo, user: &DemoUser) -> Portal {
        let tls = (*demo.tls(user)).clone();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Portal {
            client,
            base: demo.portal_url(),
            cookies: BTreeMap::new(),
            username: super::username_of(&user.cert),
        }
    }

    /// The request with this client's cookies.
    pub fn with_cookies(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let cookie = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        }
    }

    /// A `POST` of `form`, urlencoded, with this client's cookies.
    pub fn form_request(&self, path: &str, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let body = form
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        self.with_cookies(
            self.client
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
    }

    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = self.with_cookies(request);
        let response = request.send().await.expect("the portal answers");
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.form_request(path, form);
        self.send(request).await
    }

    /// `POST /password` from `current` to `new` (twice); returns the answer.
    pub async fn change_password(&mut self, current: &str, new: &str) -> Page {
        let csrf = self.get("/password").await.csrf();
        self.post(
            "/password",
            &[
                ("csrf", &csrf),
                ("current", current),
                ("new", new),
                ("confirm", new),
            ],
        )
        .await
    }

    /// First login with the username, then the forced change to `password`; returns the
    /// overview's CSRF token.
    pub async fn first_login(&mut self, password: &str) -> String {
        let csrf = self.get("/").await.csrf();
        let username = self.username.clone();
        let page = self
            .post("/login", &[("csrf", &csrf), ("password", &username)])
            .await;
        assert_eq!(page.location(), "/password", "{}", page.body);
        let page = self.change_password(&username, password).await;
        assert_eq!(page.location(), "/?done=password", "{}", page.body);
        self.get("/").await.csrf()
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                char::from(byte).to_string()
            }
            b' ' => "+".to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
