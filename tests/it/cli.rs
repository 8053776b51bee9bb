//! The operator CLI, run as the real binary.

use crate::support::{K, OPC, akaid, akaid_env, stderr, stdout};

const IMPI: &str = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";

fn add(dir: &std::path::Path, impi: &str) {
    let out = akaid(
        dir,
        &["subscriber", "add", "--impi", impi, "--k", K, "--opc", OPC],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

fn show_json(dir: &std::path::Path, impi: &str) -> serde_json::Value {
    let out = akaid(dir, &["subscriber", "show", impi, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn list(dir: &std::path::Path) -> String {
    let out = akaid(dir, &["subscriber", "list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn add_show_vector_remove() {
    let dir = tempfile::tempdir().unwrap();
    let out = akaid(
        dir.path(),
        &[
            "subscriber",
            "add",
            "--impi",
            IMPI,
            "--k",
            K,
            "--op",
            "cdc202d5123e20f62b6d676ac72cb318",
            "--msisdn",
            "+447700900123",
            "--sqn",
            "00000000003f",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("created a new master key file"),
        "{}",
        stderr(&out)
    );

    let shown = show_json(dir.path(), IMPI);
    assert_eq!(shown["msisdn"], "+447700900123");
    assert_eq!(shown["amf"], "8000");
    assert_eq!(shown["sqn"], "00000000003f");
    let text = stdout(&akaid(dir.path(), &["subscriber", "show", IMPI]));
    for out in [text, shown.to_string()] {
        assert!(
            !out.contains(K) && !out.contains(OPC),
            "keys must never be shown: {out}"
        );
    }

    // OP was turned into OPc (test set 1): the vector matches TS 35.208's outputs.
    let out = akaid(
        dir.path(),
        &[
            "hss",
            "vector",
            IMPI,
            "--rand",
            "23553cbe9637a89d218ae64dae47bf35",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["xres"], "a54211d5e3ba50bf");
    assert_eq!(v["ck"], "b40ba9a3c58b2a05bbf0d987b21bf8cb");
    assert_eq!(v["ik"], "f769bcd751044604127672711c6d3441");
    assert_eq!(v["sqn"], "000000000040", "SEQ 1 → 2, IND 31 → 0");
    assert_eq!(show_json(dir.path(), IMPI)["sqn"], "000000000040");

    let out = akaid(dir.path(), &["hss", "vector", IMPI]);
    let text = stdout(&out);
    for label in [
        "RAND:",
        "AUTN:",
        "XRES:",
        "CK:",
        "IK:",
        "SQN:\t000000000061",
    ] {
        assert!(text.contains(label), "{label} missing from {text}");
    }

    let out = akaid(dir.path(), &["subscriber", "remove", IMPI]);
    assert!(out.status.success());
    assert_eq!(list(dir.path()), "");
}

#[test]
fn bad_fields_are_named_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["--impi", IMPI, "--k", "465b5ce8", "--opc", OPC],
            "k: must be 32 hex digits",
        ),
        (
            &[
                "--impi",
                IMPI,
                "--k",
                K,
                "--opc",
                "zz63cb71954a9f4e48a5994e37a02baf",
            ],
            "opc: is not hex",
        ),
        (
            &["--impi", "no-realm", "--k", K, "--opc", OPC],
            "impi: IMPI \"no-realm\"",
        ),
        (
            &["--impi", IMPI, "--k", K, "--opc", OPC, "--amf", "80"],
            "amf: must be 4 hex digits",
        ),
        (
            &["--impi", IMPI, "--k", K, "--opc", OPC, "--msisdn", "12345"],
            "msisdn: MSISDN",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["subscriber", "add"];
        all.extend_from_slice(args);
        let out = akaid(dir.path(), &all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains(&K[8..]), "a key leaked into {err}");
    }
    assert_eq!(list(dir.path()), "");
}

#[test]
fn unknown_and_duplicate_impi() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["hss", "vector", "nobody@x"][..],
        &["subscriber", "show", "nobody@x"],
        &["subscriber", "remove", "nobody@x"],
    ] {
        let out = akaid(dir.path(), args);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains("no subscriber with IMPI nobody@x"),
            "{}",
            stderr(&out)
        );
    }
    add(dir.path(), IMPI);
    akaid(dir.path(), &["hss", "vector", IMPI]);
    let before = show_json(dir.path(), IMPI);
    let out = akaid(
        dir.path(),
        &[
            "subscriber",
            "add",
            "--impi",
            IMPI,
            "--k",
            K,
            "--opc",
            OPC,
            "--sqn",
            "000000001000",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("IMPI \"{IMPI}\" already exists")),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        show_json(dir.path(), IMPI),
        before,
        "the duplicate changed nothing"
    );
}

#[test]
fn import_with_a_bad_row_2_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subs.csv");
    std::fs::write(
        &file,
        format!(
            "impi,msisdn,k,opc,op,amf,sqn\n\
             a@x,+4411,{K},{OPC},,,\n\
             b@x,+4412,{K}ff,{OPC},,,\n\
             c@x,+4413,{K},{OPC},,,\n"
        ),
    )
    .unwrap();
    let out = akaid(
        dir.path(),
        &["subscriber", "import", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: k: must be 32 hex digits, got 34 characters"),
        "{err}"
    );
    assert_eq!(list(dir.path()), "");
}

#[test]
fn import_colliding_with_the_database_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), "b@x");
    let file = dir.path().join("subs.csv");
    std::fs::write(
        &file,
        format!("impi,k,opc\na@x,{K},{OPC}\nb@x,{K},{OPC}\nc@x,{K},{OPC}\n"),
    )
    .unwrap();
    let out = akaid(
        dir.path(),
        &["subscriber", "import", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: IMPI b@x is already provisioned; nothing was imported"),
        "{err}"
    );
    assert_eq!(list(dir.path()).lines().count(), 1);

    std::fs::write(
        &file,
        format!("impi,k,op\na@x,{K},cdc202d5123e20f62b6d676ac72cb318\n"),
    )
    .unwrap();
    let out = akaid(
        dir.path(),
        &["subscriber", "import", file.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("imported 1 subscribers in "),
        "{}",
        stdout(&out)
    );
    assert_eq!(list(dir.path()).lines().count(), 2);
}

#[test]
fn wrong_or_missing_master_key_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = "11".repeat(32);
    let out = akaid_env(
        dir.path(),
        &["subscriber", "list"],
        &[("AKAID_MASTER_KEY", &key)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !dir.path().join("data/master.key").exists(),
        "an env key makes no key file"
    );

    let other = "22".repeat(32);
    let out = akaid_env(
        dir.path(),
        &["subscriber", "list"],
        &[("AKAID_MASTER_KEY", &other)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is not the key this database was created with"),
        "{err}"
    );
    assert!(!err.contains(&other), "{err}");

    let out = akaid(dir.path(), &["subscriber", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("master key file") && stderr(&out).contains("is missing"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("data/master.key").exists(),
        "never creates a key for a keyed database"
    );

    let out = akaid_env(
        dir.path(),
        &["subscriber", "list"],
        &[("AKAID_MASTER_KEY", "abc")],
    );
    assert!(
        stderr(&out).contains("must be 64 hex digits"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn config_file_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("akaid.toml"),
        "public_ulr = \"http://x/\"\n",
    )
    .unwrap();
    let out = akaid(dir.path(), &["subscriber", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("akaid.toml") && err.contains("unknown field `public_ulr`"),
        "{err}"
    );
}

#[test]
fn config_prints_every_field_with_its_documentation() {
    let dir = tempfile::tempdir().unwrap();
    let out = akaid_env(dir.path(), &["config"], &[("AKAID_LOG", "debug")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for key in [
        "data_dir",
        "database_url",
        "public_url",
        "bsf_url",
        "master_key_file",
        "log",
        "log_format",
    ] {
        assert!(
            text.contains(&format!("\n{key} = ")),
            "{key} missing from {text}"
        );
    }
    assert!(text.contains("log = \"debug\""), "{text}");
    assert!(text.contains("(environment: AKAID_PUBLIC_URL)"));
}

#[test]
fn resync_through_the_cli() {
    use akaid::aka::{Rand, Sqn, UsimError, UsimState};
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), IMPI);
    let out = akaid(dir.path(), &["hss", "vector", IMPI, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut rand = [0u8; 16];
    hex::decode_to_slice(v["rand"].as_str().unwrap(), &mut rand).unwrap();
    let mut autn = [0u8; 16];
    hex::decode_to_slice(v["autn"].as_str().unwrap(), &mut autn).unwrap();

    let keys = crate::support::test_keys();
    let mut usim = UsimState::at(Sqn::from_parts(777, 5).unwrap());
    let Err(UsimError::SyncFailure(auts)) =
        usim.authenticate(&keys, Rand(rand), &akaid::aka::Autn(autn))
    else {
        panic!("expected AUTS");
    };
    let out = akaid(
        dir.path(),
        &[
            "hss",
            "resync",
            IMPI,
            "--rand",
            &hex::encode(rand),
            "--auts",
            &auts.to_string(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(r["sqn_ms"], Sqn::from_parts(777, 5).unwrap().to_string());

    let mut forged = auts;
    forged.0[13] ^= 1;
    let out = akaid(
        dir.path(),
        &[
            "hss",
            "resync",
            IMPI,
            "--rand",
            &hex::encode(rand),
            "--auts",
            &forged.to_string(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("AUTS does not verify"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn serve_answers_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let config = akaid::config::Config::with_data_dir(&dir.path().join("data"));
    let ctx = akaid::context::Context::open(config, &|_| None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = akaid::app(akaid::AppState::new(ctx));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let body = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, r#"{"status":"ok"}"#);
}

#[test]
fn an_op_without_the_bsf_needs_a_zn_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (op, bsf) = (crate::support::free_port(), crate::support::free_port());
    let out = akaid(
        dir.path(),
        &[
            "serve",
            "--roles",
            "op",
            "--public-url",
            &format!("http://127.0.0.1:{op}/"),
            "--bsf-url",
            &format!("http://127.0.0.1:{bsf}/"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("needs zn_secret") && err.contains("akaid naf add"),
        "{err}"
    );
    let out = akaid(dir.path(), &["serve", "--roles", "op,hss"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown role");
    assert!(
        stderr(&out).contains("\"hss\" is not a role"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_remote_op_gets_the_same_key_over_zn() {
    use akaid::gba::{NafId, UaProtocolId};
    let server = crate::support::bsf_server(|_| {}, None).await;
    server
        .ctx
        .hss
        .add(&crate::support::subscriber(IMPI))
        .await
        .unwrap();
    let mut handset = akaid::ue::ub::Handset {
        impi: IMPI.parse().unwrap(),
        keys: crate::support::subscriber(IMPI).keys,
        usim: akaid::aka::UsimState::default(),
    };
    let done = akaid::ue::ub::UbClient::new()
        .unwrap()
        .bootstrap(&server.bsf_url, &mut handset)
        .await
        .unwrap();
    let mut out = Vec::new();
    akaid::cli::naf_add(&server.ctx, "op.example.org", true, &mut out)
        .await
        .unwrap();
    let secret: serde_json::Value = serde_json::from_slice(&out).unwrap();

    // An OP process of its own: same BSF URL, roles op, its Zn secret.
    let op_dir = tempfile::tempdir().unwrap();
    let mut config = akaid::config::Config::with_data_dir(op_dir.path());
    config.bsf_url = server.bsf_url.clone();
    config.roles = "op".parse().unwrap();
    config.zn_secret = Some(akaid::config::SecretString(akaid::secret::Secret::new(
        secret["secret"].as_str().unwrap().to_owned(),
    )));
    let op = akaid::context::Context::open(config, &|_| None)
        .await
        .unwrap();
    let remote = akaid::AppState::for_roles(op).unwrap().keys.clone();
    let local = akaid::AppState::new(server.ctx.clone()).keys.clone();
    let naf_id = NafId::new("op.example.org", UaProtocolId::HTTP_DIGEST).unwrap();
    let a = remote.naf_key(&done.btid, &naf_id).await.unwrap();
    let b = local.naf_key(&done.btid, &naf_id).await.unwrap();
    assert_eq!(a.ks_naf.expose(), b.ks_naf.expose());
    assert!(
        format!("{remote:?}").contains("[redacted]"),
        "the Zn secret is redacted"
    );
}

#[test]
fn subscriber_profile_fields_are_checked_before_any_is_written() {
    let dir = tempfile::tempdir().unwrap();
    add(dir.path(), IMPI);
    let profile = |args: &[&str]| {
        let mut all = vec!["subscriber", "profile", IMPI];
        all.extend_from_slice(args);
        akaid(dir.path(), &all)
    };
    let out = profile(&["--set", "email=ada@example.org", "--set", "country=gbr"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("country"), "{}", stderr(&out));
    let out = profile(&["--set", "phone=+447700900123"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a profile field"),
        "{}",
        stderr(&out)
    );
    // Nothing of the refused commands was stored.
    assert_eq!(stdout(&profile(&["--json"])).trim(), "{}");

    let out = profile(&[
        "--set",
        "email=ada@example.org",
        "--set",
        "country=gb",
        "--set",
        "fullname=Ada Lovelace",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("country   GB"), "{}", stdout(&out));
    let out = profile(&["--unset", "fullname", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"email": "ada@example.org", "country": "GB"})
    );
    let out = akaid(
        dir.path(),
        &[
            "subscriber",
            "profile",
            "nobody@ims.example.org",
            "--set",
            "country=fr",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no subscriber"), "{}", stderr(&out));
}

#[test]
fn ue_proxy_help_lists_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    let out = akaid(dir.path(), &["ue", "proxy", "--help"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let help = stdout(&out);
    for flag in ["--listen", "--bsf", "--impi", "--k", "--opc", "--state"] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

/// The proxy prints the address it really listens on (port 0 picks one) and the Chromium
/// flags that address needs, then serves until stopped.
#[test]
fn ue_proxy_prints_where_it_listens_and_the_browser_flags() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_akaid"))
        .current_dir(dir.path())
        .args([
            "ue",
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--impi",
            IMPI,
            "--k",
            K,
            "--opc",
            OPC,
        ])
        .env("AKAID_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map(Running)
        .unwrap();
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .strip_prefix("akaid ue proxy listening on http://")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let port: u16 = addr.strip_prefix("127.0.0.1:").unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let printed: Vec<String> = lines.take(4).map(Result::unwrap).collect();
    let chromium = printed
        .iter()
        .find(|l| l.contains("--proxy-server"))
        .unwrap_or_else(|| panic!("{printed:?}"));
    assert!(
        chromium.contains(&format!(
            "--proxy-server=http://{addr} --proxy-bypass-list=\"<-loopback>\""
        )),
        "{chromium}"
    );
    // It is serving: a request that is not absolute-form gets the proxy's 400.
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    drop(child);
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
}
