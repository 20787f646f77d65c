//! The backend API over real HTTPS: a backend reads, accepts, answers and rejects the
//! transactions of its own services, posts unrelated outbound files, and every call made
//! twice has one effect; other backends and callers without a token are refused; bad input
//! gets a JSON 4xx. Every response is checked against `openapi.json`: its status must be
//! documented for the operation, and its body must carry the documented required fields.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crate::support::{Demo, DemoUser, curl, out_names, wait_for_out, xml_element};
use serde_json::Value;

const MANIFEST: &str = "Manifest.MidlertidigOpbevaringOpret";
const OPENAPI: &str = include_str!("../../src/api/openapi.json");

struct Api {
    base: String,
    client: reqwest::Client,
    openapi: Value,
    /// (path template, method) of every call made, to check every operation was tried.
    exercised: BTreeSet<(String, String)>,
}

impl Api {
    fn new(demo: &Demo, addr: SocketAddr) -> Api {
        let ca = std::fs::read(demo.ca()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        Api {
            base: format!("https://{addr}"),
            client,
            openapi: serde_json::from_str(OPENAPI).unwrap(),
            exercised: BTreeSet::new(),
        }
    }

    /// Makes a call and checks its answer against the OpenAPI document.
    async fn call(
        &mut self,
        method: reqwest::Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<reqwest::Body>,
        json: bool,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body);
            if json {
                request = request.header("content-type", "application/json");
            }
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type} {text}"
        );
        let value: Value = serde_json::from_str(&text).unwrap();

        let method = method.as_str().to_ascii_lowercase();
        let operation = &self.openapi["paths"][template][&method];
        assert!(
            !operation.is_null(),
            "{method} {template} is not documented"
        );
        let documented = &operation["responses"][status.to_string()];
        assert!(
            !documented.is_null(),
            "{method} {template} answered {status}, which is not documented: {value}"
        );
        let reference = documented["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let schema_ref = self.openapi["components"]["responses"][reference]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let schema = &self.openapi["components"]["schemas"][schema_ref];
        for field in schema["required"].as_array().unwrap() {
            let field = field.as_str().unwrap();
            assert!(
                value.get(field).is_some(),
                "{method} {template} {status}: no {field} in {value}"
            );
        }
        self.exercised.insert((template.to_string(), method));
        (status, value)
    }

    async fn get(&mut self, id: &str, token: Option<&str>) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            "/v1/transactions/{id}",
            &format!("/v1/transactions/{id}"),
            token,
            None,
            false,
        )
        .await
    }

    async fn accept(&mut self, id: &str, token: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/v1/transactions/{id}/accept",
            &format!("/v1/transactions/{id}/accept"),
            Some(token),
            None,
            false,
        )
        .await
    }

    async fn reject(&mut self, id: &str, token: &str, body: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/v1/transactions/{id}/reject",
            &format!("/v1/transactions/{id}/reject"),
            Some(token),
            Some(body.to_string().into()),
            true,
        )
        .await
    }

    async fn respond(&mut self, id: &str, token: &str, name: &str, body: Vec<u8>) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            "/v1/transactions/{id}/response/{name}",
            &format!("/v1/transactions/{id}/response/{name}"),
            Some(token),
            Some(body.into()),
            false,
        )
        .await
    }

    async fn outbound(&mut self, path: &str, token: &str, body: &[u8]) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            "/v1/outbound/{service}/{username}/{name}",
            path,
            Some(token),
            Some(body.to_vec().into()),
            false,
        )
        .await
    }
}

async fn upload(demo: &Demo, user: &DemoUser, path: &str) -> String {
    let mut client = demo.login(user).await;
    let reply = client.upload(path, b"<declaration/>").await.unwrap();
    assert_eq!(reply.code, 226, "{reply:?}");
    reply
        .text
        .strip_prefix("Transfer complete: transaction ")
        .unwrap()
        .trim()
        .to_string()
}

fn download(demo: &Demo, user: &DemoUser, name: &str) -> String {
    let (ok, body, err) = curl(demo, user, &format!("/out/{name}"), &[]);
    assert!(ok, "{name}: {err}");
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn backends_answer_their_own_transactions_once_and_nobody_else_can() {
    let api_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spool = tempfile::tempdir().unwrap();
    let backends = format!(
        "[{{ name = \"manifest\", kind = \"spool\", directory = \"{dir}/m\", services = [\"{MANIFEST}\"], api_token = \"manifest-token\" }}, \
          {{ name = \"fatca\", kind = \"spool\", directory = \"{dir}/f\", services = [\"FATCA\"], api_token = \"fatca-token\" }}]",
        dir = spool.path().display()
    );
    let demo = Demo::start_with_env(&[
        ("MFTGW__DELIVERY__BACKENDS", &backends),
        ("MFTGW__API__LISTEN", &api_addr.to_string()),
    ]);
    let user = demo.user(0);
    let mut api = Api::new(&demo, api_addr);
    let (m, f) = ("manifest-token", "fatca-token");

    let first = upload(&demo, &user, &format!("/{MANIFEST}/decl-1.xml")).await;
    wait_for_out(
        &demo,
        &user,
        &[format!("status_{MANIFEST}_decl-1.xml_1.xml")],
    );
    let (status, body) = api.get(&first, Some(m)).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("delivered")));
    assert_eq!(body["ftp_transaction_id"], "decl-1.xml");
    assert_eq!(body["history"].as_array().unwrap().len(), 1);

    // No token, a wrong token, another backend, an unknown transaction.
    assert_eq!(api.get(&first, None).await.0, 401);
    assert_eq!(api.get(&first, Some("guess")).await.0, 401);
    assert_eq!(api.get(&first, Some(f)).await.0, 404);
    assert_eq!(api.accept(&first, f).await.0, 404);
    assert_eq!(api.get("ci0_0_0", Some(m)).await.0, 404);

    // Accept, twice: one status_2.
    for _ in 0..2 {
        let (status, body) = api.accept(&first, m).await;
        assert_eq!((status, body["state"].as_str()), (200, Some("accepted")));
    }
    // A response may not have a bad name; then a response, twice: one file, one status_3.
    assert_eq!(
        api.respond(&first, m, "a%5Cb.xml", b"x".to_vec()).await.0,
        400
    );
    let response_body: Vec<u8> = (0..200_000u32).map(|n| (n % 251) as u8).collect();
    let (status, body) = api
        .respond(&first, m, "answer.xml", response_body.clone())
        .await;
    assert_eq!((status, body["state"].as_str()), (201, Some("answered")));
    let (status, _) = api
        .respond(&first, m, "answer.xml", b"again".to_vec())
        .await;
    assert_eq!(status, 200);
    let response_name = format!("{MANIFEST}_answer.xml");
    let mut expected = vec![
        format!("status_{MANIFEST}_decl-1.xml_1.xml"),
        format!("status_{MANIFEST}_decl-1.xml_2.xml"),
        response_name.clone(),
        format!("status_{MANIFEST}_decl-1.xml_3.xml"),
    ];
    assert_eq!(out_names(&demo, &user), expected);
    let target = demo.dir.path().join("answer.bin");
    let (ok, _, err) = curl(
        &demo,
        &user,
        &format!("/out/{response_name}"),
        &["-o", target.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(&target).unwrap(), response_body);
    let status_3 = download(&demo, &user, &expected[3]);
    assert!(
        status_3.contains(&format!(
            "<response>\n<filename>/out/{response_name}</filename>"
        )),
        "{status_3}"
    );
    let (status, body) = api
        .reject(&first, m, r#"{"code":"LATE","message":"too late"}"#)
        .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("conflict")));

    // A rejection, twice: one status_0 with the backend's own error; no accepting it after.
    let second = upload(&demo, &user, &format!("/{MANIFEST}/decl-2.xml")).await;
    assert_eq!(api.reject(&second, m, "{not json").await.0, 400);
    assert_eq!(
        api.reject(&second, m, r#"{"code":"lower","message":"m"}"#)
            .await
            .0,
        400
    );
    assert_eq!(
        api.reject(&second, m, r#"{"code":"X","message":""}"#)
            .await
            .0,
        400
    );
    let long = format!(r#"{{"code":"X","message":"{}"}}"#, "m".repeat(1001));
    assert_eq!(api.reject(&second, m, &long).await.0, 400);
    // What XML cannot carry (review item 7): a C0 control character, a non-character.
    for text in [r"bell\u0007", r"\ufffe", r"nul\u0000"] {
        for body in [
            format!(r#"{{"code":"X","message":"{text}"}}"#),
            format!(r#"{{"code":"X","message":"m","resolution":"{text}"}}"#),
        ] {
            let (status, answer) = api.reject(&second, m, &body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains("cannot appear in XML"),
                "{answer}"
            );
        }
    }
    let rejection = r#"{"code":"MANIFEST_INVALID","message":"Line 3: <script>alert(1)</script>","resolution":"Fix and resend"}"#;
    for _ in 0..2 {
        let (status, body) = api.reject(&second, m, rejection).await;
        assert_eq!((status, body["state"].as_str()), (200, Some("rejected")));
    }
    assert_eq!(api.accept(&second, m).await.0, 409);
    let status_0_name = format!("status_{MANIFEST}_decl-2.xml_0.xml");
    let status_0 = download(&demo, &user, &status_0_name);
    assert_eq!(
        xml_element(&status_0, "error.code").as_deref(),
        Some("MANIFEST_INVALID")
    );
    assert!(status_0.contains("&lt;script&gt;"), "{status_0}");
    expected.push(status_0_name);
    let listed = out_names(&demo, &user);
    assert!(
        expected.iter().all(|name| listed.contains(name)),
        "{listed:?}"
    );

    // An unrelated outbound file, twice: one file and one numbered status_3.
    let outbound = format!(
        "/v1/outbound/{MANIFEST}/{}/notify-1.xml?skat_transaction_id=MAN_1607577057900",
        user.username
    );
    let (status, body) = api.outbound(&outbound, m, b"<notify/>").await;
    assert_eq!((status, body["created"].as_bool()), (201, Some(true)));
    let status_file = body["status_file"].as_str().unwrap().to_string();
    assert!(
        status_file.starts_with(&format!("status_{MANIFEST}_outbound-"))
            && status_file.ends_with("_3.xml")
    );
    let (status, body) = api.outbound(&outbound, m, b"<notify/>").await;
    assert_eq!((status, body["created"].as_bool()), (200, Some(false)));
    assert_eq!(body["skat_transaction_id"], "MAN_1607577057900");
    let (status, body) = api.outbound(&outbound, m, b"<other/>").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("conflict")),
        "same name, other content"
    );
    let unrelated = download(&demo, &user, &status_file);
    assert!(unrelated.contains("<filename/>"), "{unrelated}");
    assert_eq!(
        xml_element(&unrelated, "FTPTransaktionsId"),
        Some(format!("{MANIFEST}_notify-1.xml"))
    );
    assert_eq!(
        xml_element(&unrelated, "SKATTransactionId").as_deref(),
        Some("MAN_1607577057900")
    );
    assert_eq!(
        download(&demo, &user, &format!("{MANIFEST}_notify-1.xml")),
        "<notify/>"
    );
    let listed = out_names(&demo, &user);
    assert_eq!(
        listed
            .iter()
            .filter(|name| name.contains("notify-1") || **name == status_file)
            .count(),
        2
    );

    // Outbound files only for a backend's own services, and only for users who exist.
    let foreign = format!("/v1/outbound/FATCA/{}/n.xml", user.username);
    assert_eq!(api.outbound(&foreign, m, b"x").await.0, 403);
    let nobody = format!("/v1/outbound/{MANIFEST}/CVR_00000000_UID_0/n.xml");
    assert_eq!(api.outbound(&nobody, m, b"x").await.0, 404);
    // ... and who hold the service's role, or held it within the retention (review item 12).
    let other = demo.user(3);
    let no_role = format!("/v1/outbound/{MANIFEST}/{}/n.xml", other.username);
    let (status, body) = api.outbound(&no_role, m, b"x").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("no_role")),
        "{body}"
    );
    assert!(
        out_names(&demo, &other)
            .iter()
            .all(|name| !name.contains("n.xml"))
    );
    demo.admin(&["role", "grant", &other.username, MANIFEST]);
    demo.admin(&["role", "revoke", &other.username, MANIFEST]);
    let (status, body) = api.outbound(&no_role, m, b"x").await;
    assert_eq!(
        status, 201,
        "a role revoked just now is within the retention: {body}"
    );
    assert_eq!(api.outbound(&outbound, "guess", b"x").await.0, 401);

    // Bad methods, bad paths and big bodies get JSON errors too.
    let response = api
        .client
        .delete(format!("{}/v1/transactions/{first}", api.base))
        .bearer_auth(m)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(
        serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap()["error"],
        "method_not_allowed"
    );
    let response = api
        .client
        .get(format!("{}/v1/transactions/%FF", api.base))
        .bearer_auth(m)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap()["error"],
        "bad_request"
    );
    let huge = format!(r#"{{"code":"X","message":"{}"}}"#, "m".repeat(100_000));
    let response = api
        .client
        .post(format!("{}/v1/transactions/{second}/reject", api.base))
        .bearer_auth(m)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let error = serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap();
    assert!(
        error["message"].as_str().unwrap().contains("length limit"),
        "{error}"
    );

    // Every documented operation was tried.
    let documented: BTreeSet<(String, String)> = api.openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, operations)| {
            operations
                .as_object()
                .unwrap()
                .keys()
                .map(|method| (path.clone(), method.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(api.exercised, documented);
}

/// A backend can prove who it is with its client certificate instead of a token; a
/// certificate that is no backend's, or none at all, gets nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_backend_can_authenticate_with_its_client_certificate() {
    let api_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let pki_dir = std::sync::Mutex::new(None);
    let mut demo = Demo::start_with_setup(&[], |data| {
        mftgw_testpki::TestPki::generate(&data.join("pki")).unwrap();
        *pki_dir.lock().unwrap() = Some(data.join("pki"));
    });
    let pki = pki_dir.lock().unwrap().clone().unwrap();
    let backend_cert = pki.join("clients/voces.pem");
    let spool = tempfile::tempdir().unwrap();
    let backends = format!(
        "[{{ name = \"fatca\", kind = \"spool\", directory = \"{}\", services = [\"FATCA\"], api_client_certificate = \"{}\" }}]",
        spool.path().display(),
        crate::support::fingerprint_of(&backend_cert).to_uppercase(),
    );
    demo.kill();
    demo.start_again(&[
        ("MFTGW__DELIVERY__BACKENDS", &backends),
        ("MFTGW__API__LISTEN", &api_addr.to_string()),
        (
            "MFTGW__API__CLIENT_CA",
            pki.join("ca/root.pem").to_str().unwrap(),
        ),
    ]);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(demo.ca()).unwrap()).unwrap();
    let client = |identity: Option<&str>| {
        let mut builder = reqwest::Client::builder().add_root_certificate(ca.clone());
        if let Some(name) = identity {
            let mut pem = std::fs::read(pki.join(format!("clients/{name}.pem"))).unwrap();
            pem.extend(std::fs::read(pki.join(format!("clients/{name}.key.pem"))).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    };
    let fatca_user = demo.user(2);
    let url = format!(
        "https://{api_addr}/v1/outbound/FATCA/{}/letter.xml",
        fatca_user.username
    );
    let put = |client: reqwest::Client| {
        let url = url.clone();
        async move {
            client
                .put(url)
                .body("<letter/>")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(put(client(Some("voces"))).await, 201);
    assert_eq!(
        put(client(Some("voces"))).await,
        200,
        "the same post twice is one post"
    );
    assert_eq!(
        put(client(Some("moces"))).await,
        401,
        "a certificate that is no backend's"
    );
    assert_eq!(put(client(None)).await, 401);
    let manifest = format!(
        "https://{api_addr}/v1/outbound/{MANIFEST}/{}/x.xml",
        fatca_user.username
    );
    let status = client(Some("voces"))
        .put(manifest)
        .body("x")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 403, "another backend's service");
    let out = out_names(&demo, &fatca_user);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out.contains(&"FATCA_letter.xml".to_string()));
}
