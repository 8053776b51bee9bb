//! GBA over real HTTP: Ub bootstrapping with the software handset, every bad input, rate
//! limits, Zn, and two `akaid serve` processes on one PostgreSQL.

use std::sync::Arc;

use akaid::aka::{Rand, Sqn, SubscriberKeys, UsimError, UsimState};
use akaid::clock::{Clock as _, FixedClock};
use akaid::gba::digest::{AKAV1_MD5, Challenge, Credentials, Qop, ha1, request_digest};
use akaid::gba::zn::{HttpKeyService, KeyService, ZnError};
use akaid::gba::{NafId, UaProtocolId, encode_auts, ks_naf, parse_aka_nonce};
use akaid::ids::Impi;
use akaid::ue::ub::{Answered, Handset, UbClient};

use crate::support::{K, OPC, TestServer, bsf_server, subscriber};

const IMPI: &str = "001010000000001@ims.mnc001.mcc001.3gppnetwork.org";

fn keys() -> SubscriberKeys {
    crate::support::test_keys()
}

fn handset() -> Handset {
    Handset {
        impi: IMPI.parse().unwrap(),
        keys: keys(),
        usim: UsimState::default(),
    }
}

async fn server_with_subscriber() -> TestServer {
    let server = bsf_server(|_| {}, None).await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    server
}

async fn sqn(server: &TestServer) -> Sqn {
    let impi: Impi = IMPI.parse().unwrap();
    server
        .ctx
        .store
        .subscribers
        .info(&impi)
        .await
        .unwrap()
        .unwrap()
        .sqn
}

async fn sessions(server: &TestServer) -> usize {
    let impi: Impi = IMPI.parse().unwrap();
    server
        .ctx
        .store
        .bootstraps
        .for_impi(&impi)
        .await
        .unwrap()
        .len()
}

/// Sends one Ub request with `authorization` (raw) and returns status, headers, body.
async fn ub_raw(
    server: &TestServer,
    authorization: &[&str],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new().get(server.bsf_url.clone());
    for value in authorization {
        request = request.header("authorization", *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The credentials a handset would send for `challenge` with `password`.
fn answer_creds(challenge: &Challenge, password: &[u8], auts: Option<String>) -> Credentials {
    let mut creds = Credentials {
        username: IMPI.to_owned(),
        realm: challenge.realm.clone(),
        nonce: challenge.nonce.clone(),
        uri: "/".to_owned(),
        response: String::new(),
        algorithm: Some(AKAV1_MD5.to_owned()),
        cnonce: Some("0a4f113b".to_owned()),
        nc: Some(1),
        qop: Some(Qop::AuthInt),
        opaque: challenge.opaque.clone(),
        auts,
    };
    let ha1 = ha1(IMPI, &challenge.realm, password);
    creds.response = request_digest(
        &ha1,
        &creds.nonce,
        1,
        "0a4f113b",
        creds.qop,
        "GET",
        "/",
        b"",
    );
    creds
}

fn res_for(challenge: &Challenge) -> [u8; 8] {
    let (rand, autn) = parse_aka_nonce(&challenge.nonce).unwrap();
    let r = UsimState::default()
        .authenticate(&keys(), rand, &autn)
        .unwrap();
    *r.res.expose()
}

#[tokio::test]
async fn full_bootstrap_agrees_on_ks_and_ks_naf() {
    let server = server_with_subscriber().await;
    let client = UbClient::new().unwrap();
    let mut handset = handset();
    let before = server.ctx.clock.now();
    let done = client
        .bootstrap(&server.bsf_url, &mut handset)
        .await
        .unwrap();

    // B-TID = base64(RAND)@BSF host; lifetime one hour (the default).
    assert_eq!(done.btid.host(), "127.0.0.1");
    assert_eq!(done.btid.rand(), done.rand);
    let lifetime = done.lifetime - before;
    assert!(
        lifetime >= time::Duration::seconds(3599) && lifetime <= time::Duration::seconds(3601),
        "{lifetime}"
    );

    // Ks = CK ‖ IK as the HSS computes them for this RAND.
    let v =
        akaid::aka::generate_vector(&keys(), done.rand, Sqn::default(), akaid::aka::Amf::DEFAULT);
    assert_eq!(&done.ks.expose()[..16], v.ck.expose());
    assert_eq!(&done.ks.expose()[16..], v.ik.expose());

    // Ks_NAF: the handset's equals the BSF's, in process and over Zn.
    let naf_id = NafId::new("127.0.0.1", UaProtocolId::HTTP_DIGEST).unwrap();
    let ue_key = ks_naf(&done.ks, &done.rand, IMPI, &naf_id);
    let local = server
        .ctx
        .bsf()
        .key_service()
        .naf_key(&done.btid, &naf_id)
        .await
        .unwrap();
    assert_eq!(local.ks_naf.expose(), ue_key.expose());
    assert_eq!(local.impi.as_str(), IMPI);

    let mut out = Vec::new();
    akaid::cli::naf_add(&server.ctx, "127.0.0.1", true, &mut out)
        .await
        .unwrap();
    let added: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let secret = added["secret"].as_str().unwrap().to_owned();
    let zn = HttpKeyService::new(&server.bsf_url, akaid::secret::Secret::new(secret)).unwrap();
    let remote = zn.naf_key(&done.btid, &naf_id).await.unwrap();
    assert_eq!(remote.ks_naf.expose(), ue_key.expose());
    assert_eq!(
        remote.key_expiry.unix_timestamp(),
        done.lifetime.unix_timestamp()
    );
    assert_eq!(sessions(&server).await, 1);

    // A new bootstrap supersedes the old session.
    let again = client
        .bootstrap(&server.bsf_url, &mut handset)
        .await
        .unwrap();
    assert_eq!(sessions(&server).await, 1);
    assert!(matches!(
        zn.naf_key(&done.btid, &naf_id).await,
        Err(ZnError::UnknownBtid)
    ));
    assert!(zn.naf_key(&again.btid, &naf_id).await.is_ok());
}

#[tokio::test]
async fn usim_ahead_resyncs_once_then_succeeds() {
    let server = server_with_subscriber().await;
    let mut handset = handset();
    let ahead = Sqn::from_parts(9000, 3).unwrap();
    handset.usim = UsimState::at(ahead);
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &handset.impi)
        .await
        .unwrap();
    let next = match client
        .answer(&server.bsf_url, &mut handset, &challenge)
        .await
        .unwrap()
    {
        Answered::Challenged(next) => next,
        Answered::Bootstrapped(_) => panic!("a USIM ahead must resynchronise first"),
    };
    assert_eq!(
        sqn(&server).await,
        ahead.next(),
        "the HSS took SQN_MS, then made the next vector"
    );
    match client
        .answer(&server.bsf_url, &mut handset, &next)
        .await
        .unwrap()
    {
        Answered::Bootstrapped(done) => assert_eq!(done.btid.host(), "127.0.0.1"),
        Answered::Challenged(_) => panic!("after the resync the vector must be fresh"),
    }
    assert_eq!(sessions(&server).await, 1);
}

#[tokio::test]
async fn forged_auts_is_refused_and_the_sqn_stays() {
    let server = server_with_subscriber().await;
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    let (rand, autn) = parse_aka_nonce(&challenge.nonce).unwrap();
    let Err(UsimError::SyncFailure(mut auts)) =
        UsimState::at(Sqn::from_parts(9000, 3).unwrap()).authenticate(&keys(), rand, &autn)
    else {
        panic!("expected AUTS");
    };
    auts.0[1] ^= 0x10;
    let before = sqn(&server).await;
    let creds = answer_creds(&challenge, b"", Some(encode_auts(&auts)));
    let (status, _, body) = ub_raw(&server, &[&creds.to_header()]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(sqn(&server).await, before);
    assert_eq!(sessions(&server).await, 0);
    let _ = Rand([0; 16]);
}

#[tokio::test]
async fn wrong_res_is_forbidden_and_stores_no_session() {
    let server = server_with_subscriber().await;
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    let mut res = res_for(&challenge);
    res[0] ^= 1;
    let creds = answer_creds(&challenge, &res, None);
    let before = sqn(&server).await;
    let (status, _, body) = ub_raw(&server, &[&creds.to_header()]).await;
    assert_eq!(status, 403);
    assert!(body.contains("authentication failed"), "{body}");
    assert_eq!(sessions(&server).await, 0);
    assert_eq!(sqn(&server).await, before);
    // The challenge is spent: the right RES now finds no challenge.
    let creds = answer_creds(&challenge, &res_for(&challenge), None);
    let (status, _, _) = ub_raw(&server, &[&creds.to_header()]).await;
    assert_eq!(status, 403);
    assert_eq!(sessions(&server).await, 0);
}

#[tokio::test]
async fn replayed_response_is_refused() {
    let server = server_with_subscriber().await;
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    let creds = answer_creds(&challenge, &res_for(&challenge), None).to_header();
    let (status, _, _) = ub_raw(&server, &[&creds]).await;
    assert_eq!(status, 200);
    let before = sqn(&server).await;
    let btids: Vec<_> = server
        .ctx
        .store
        .bootstraps
        .for_impi(&IMPI.parse().unwrap())
        .await
        .unwrap();
    let (status, _, body) = ub_raw(&server, &[&creds]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("already used"), "{body}");
    assert_eq!(sqn(&server).await, before);
    let after: Vec<_> = server
        .ctx
        .store
        .bootstraps
        .for_impi(&IMPI.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(after, btids);
}

#[tokio::test]
async fn expired_challenge_gets_a_stale_rechallenge_and_no_session() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = bsf_server(|_| {}, Some(clock.clone())).await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    clock.advance(time::Duration::seconds(31));
    let creds = answer_creds(&challenge, &res_for(&challenge), None);
    let (status, headers, _) = ub_raw(&server, &[&creds.to_header()]).await;
    assert_eq!(status, 401);
    let fresh = Challenge::parse(headers["www-authenticate"].to_str().unwrap()).unwrap();
    assert!(fresh.stale);
    assert_ne!(fresh.nonce, challenge.nonce);
    assert_eq!(sessions(&server).await, 0);
}

#[tokio::test]
async fn malformed_requests_are_400_and_store_nothing() {
    let server = server_with_subscriber().await;
    let client = UbClient::new().unwrap();
    let challenge = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    let good = answer_creds(&challenge, &res_for(&challenge), None).to_header();
    let before = sqn(&server).await;
    let long = format!(
        "Digest username=\"{}\", realm=\"x\", nonce=\"\", uri=\"/\", response=\"\"",
        "a".repeat(5000)
    );
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![], "authorization: digest"),
        (
            vec!["Digest realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\"".into()],
            "username",
        ),
        (
            vec![format!(
                "Digest username=\"{IMPI}\", username=\"b@x\", realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\""
            )],
            "username",
        ),
        (vec![long], "long"),
        (
            vec![format!(
                "Digest username=\"{IMPI}\", realm=\"127.0.0.1\", nonce=\"@@not-base64@@\", uri=\"/\", response=\"00\""
            )],
            "nonce",
        ),
        (
            vec![format!(
                "Digest username=\"{IMPI}\", realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\", qop=auth-int"
            )],
            "cnonce",
        ),
        (vec![good.clone(), good.clone()], "more than one"),
        (
            vec![answer_creds(&challenge, b"", Some("!!".into())).to_header()],
            "auts",
        ),
    ];
    for (headers, expect) in cases {
        let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
        let (status, h, body) = ub_raw(&server, &refs).await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        assert_eq!(h["content-type"], "application/problem+json");
        assert!(
            body.to_lowercase().contains(expect),
            "{expect:?} not in {body}"
        );
    }
    assert_eq!(sqn(&server).await, before, "no bad request made a vector");
    assert_eq!(sessions(&server).await, 0);
}

#[tokio::test]
async fn unknown_impi_gets_a_challenge_of_the_same_shape_then_fails_alike() {
    let server = server_with_subscriber().await;
    let challenge_of = |who: &'static str| {
        let server = &server;
        async move {
            let header = format!(
                "Digest username=\"{who}\", realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\""
            );
            let (status, headers, body) = ub_raw(server, &[&header]).await;
            assert_eq!(status, 401);
            (
                headers["www-authenticate"].to_str().unwrap().to_owned(),
                body,
            )
        }
    };
    let (known, known_body) = challenge_of(IMPI).await;
    let (unknown, unknown_body) = challenge_of("999990000000001@ims.example.org").await;
    assert_eq!(known_body, unknown_body);
    let shape = |h: &str| {
        let c = Challenge::parse(h).unwrap();
        (
            c.realm,
            c.algorithm,
            c.qop,
            c.nonce.len(),
            c.opaque.map(|o| o.len()),
            c.stale,
        )
    };
    assert_eq!(shape(&known), shape(&unknown));
    assert!(parse_aka_nonce(&Challenge::parse(&unknown).unwrap().nonce).is_ok());

    // Answering the decoy fails exactly as a wrong RES does.
    let decoy = Challenge::parse(&unknown).unwrap();
    let mut creds = answer_creds(&decoy, &[1; 8], None);
    creds.username = "999990000000001@ims.example.org".into();
    let (status, _, decoy_body) = ub_raw(&server, &[&creds.to_header()]).await;
    let real = Challenge::parse(&known).unwrap();
    let (wrong_status, _, wrong_body) =
        ub_raw(&server, &[&answer_creds(&real, &[1; 8], None).to_header()]).await;
    assert_eq!((status, decoy_body), (wrong_status, wrong_body));
}

#[tokio::test]
async fn per_impi_and_per_address_limits_answer_429() {
    let server = bsf_server(|c| c.ub_limit_per_impi = 2, None).await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    let header = format!(
        "Digest username=\"{IMPI}\", realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\""
    );
    for _ in 0..2 {
        assert_eq!(ub_raw(&server, &[&header]).await.0, 401);
    }
    let before = sqn(&server).await;
    let (status, headers, _) = ub_raw(&server, &[&header]).await;
    assert_eq!(status, 429);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        sqn(&server).await,
        before,
        "a refused request makes no vector"
    );
    // Another IMPI still has its budget.
    let other = header.replace(IMPI, "b@x");
    assert_eq!(ub_raw(&server, &[&other]).await.0, 401);

    let server = bsf_server(|c| c.ub_limit_per_ip = 3, None).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(ub_raw(&server, &[&header]).await.0);
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(&statuses[..3], &[401, 401, 401]);
}

#[tokio::test]
async fn zn_checks_the_naf_its_fqdn_and_the_btid() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = bsf_server(|_| {}, Some(clock.clone())).await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    let done = UbClient::new()
        .unwrap()
        .bootstrap(&server.bsf_url, &mut handset())
        .await
        .unwrap();
    let mut out = Vec::new();
    akaid::cli::naf_add(&server.ctx, "naf.example.org", true, &mut out)
        .await
        .unwrap();
    let secret = serde_json::from_slice::<serde_json::Value>(&out).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = server.bsf_url.join("zn/bootstrapping-info").unwrap();
    let zn = |secret: &str, fqdn: &str, btid: &str| {
        let body = serde_json::json!({
            "btid": btid,
            "nafId": base64_of(NafId::new(fqdn, UaProtocolId::HTTP_DIGEST).unwrap().as_bytes()),
        });
        let request = reqwest::Client::new()
            .post(url.clone())
            .bearer_auth(secret)
            .json(&body);
        async move {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let btid = done.btid.to_string();
    let (status, body) = zn(&secret, "naf.example.org", &btid).await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["impi"], IMPI);
    assert_eq!(answer["gbaType"], "GBA_ME");
    let naf_id = NafId::new("naf.example.org", UaProtocolId::HTTP_DIGEST).unwrap();
    assert_eq!(
        answer["ksNaf"],
        base64_of(ks_naf(&done.ks, &done.rand, IMPI, &naf_id).expose())
    );

    assert_eq!(zn("wrong-secret", "naf.example.org", &btid).await.0, 401);
    assert_eq!(zn(&secret, "other.example.org", &btid).await.0, 403);
    let unknown = akaid::gba::Btid::new(&Rand([7; 16]), "127.0.0.1")
        .unwrap()
        .to_string();
    assert_eq!(zn(&secret, "naf.example.org", &unknown).await.0, 404);
    clock.advance(time::Duration::seconds(3601));
    let (status, body) = zn(&secret, "naf.example.org", &btid).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"status\":404"), "{body}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Two `akaid serve` processes on one PostgreSQL: the 401 comes from one, the answer goes to
/// the other, and the bootstrap succeeds. Then `akaid ue bootstrap` against one of them.
#[tokio::test]
async fn two_processes_on_one_postgres_share_a_bootstrap() {
    let Some(url) = crate::support::postgres_url_with_fresh_schema().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let key = "3c".repeat(32);
    let run = |args: &[&str]| {
        crate::support::akaid_env(
            dir.path(),
            args,
            &[("AKAID_MASTER_KEY", &key), ("AKAID_DATABASE_URL", &url)],
        )
    };
    let out = run(&["subscriber", "add", "--impi", IMPI, "--k", K, "--opc", OPC]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));

    let mut children = Vec::new();
    let mut bsfs = Vec::new();
    for _ in 0..2 {
        let (op, bsf) = (crate::support::free_port(), crate::support::free_port());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_akaid"))
            .current_dir(dir.path())
            .args(["--data-dir", "data", "serve"])
            .args(["--public-url", &format!("http://127.0.0.1:{op}/")])
            .args(["--bsf-url", &format!("http://127.0.0.1:{bsf}/")])
            .env("AKAID_MASTER_KEY", &key)
            .env("AKAID_DATABASE_URL", &url)
            .env("AKAID_LOG", "warn")
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        children.push(KillOnDrop(child));
        bsfs.push(url::Url::parse(&format!("http://127.0.0.1:{bsf}/")).unwrap());
    }
    for bsf in &bsfs {
        wait_healthy(bsf).await;
    }
    let client = UbClient::new().unwrap();
    let mut handset = handset();
    let challenge = client.challenge(&bsfs[0], &handset.impi).await.unwrap();
    match client
        .answer(&bsfs[1], &mut handset, &challenge)
        .await
        .unwrap()
    {
        Answered::Bootstrapped(done) => assert_eq!(done.btid.host(), "127.0.0.1"),
        Answered::Challenged(_) => {
            panic!("the second process must finish the first one's challenge")
        }
    }

    let state = dir.path().join("usim.json");
    akaid::ue::state::save(&state, &handset.usim).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akaid"))
        .args([
            "ue",
            "bootstrap",
            "--bsf",
            bsfs[1].as_str(),
            "--impi",
            IMPI,
            "--k",
            K,
            "--opc",
            OPC,
        ])
        .args([
            "--naf",
            "127.0.0.1",
            "--json",
            "--state",
            state.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(done["btid"].as_str().unwrap().ends_with("@127.0.0.1"));
    assert_eq!(base64_len(done["ksNaf"].as_str().unwrap()), 32);
}

fn base64_len(text: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
        .len()
}

pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) async fn wait_healthy(bsf: &url::Url) {
    let url = bsf.join("healthz").unwrap();
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(url.clone()).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{url} did not come up");
}

#[tokio::test]
async fn the_sweep_removes_expired_challenges_sessions_and_rate_windows() {
    let clock = Arc::new(FixedClock::new(akaid::clock::Clock::now(
        &akaid::clock::SystemClock,
    )));
    let server = bsf_server(|_| {}, Some(clock.clone())).await;
    server.ctx.hss.add(&subscriber(IMPI)).await.unwrap();
    let client = UbClient::new().unwrap();
    client
        .bootstrap(&server.bsf_url, &mut handset())
        .await
        .unwrap();
    let pending = client
        .challenge(&server.bsf_url, &IMPI.parse().unwrap())
        .await
        .unwrap();
    let bsf = server.ctx.bsf();
    assert_eq!(
        bsf.sweep().await.unwrap(),
        (0, 0),
        "nothing has expired yet"
    );

    clock.advance(time::Duration::minutes(11));
    assert_eq!(
        bsf.sweep().await.unwrap(),
        (1, 0),
        "the unanswered challenge, after its grace"
    );
    let creds = answer_creds(&pending, &res_for(&pending), None);
    assert_eq!(ub_raw(&server, &[&creds.to_header()]).await.0, 403);

    clock.advance(time::Duration::hours(1));
    assert_eq!(
        bsf.sweep().await.unwrap(),
        (0, 1),
        "the session, after its lifetime"
    );
    assert_eq!(sessions(&server).await, 0);
    let window = clock.now().unix_timestamp();
    assert_eq!(
        server
            .ctx
            .store
            .rates
            .hit(&format!("ub-impi:{IMPI}"), window - window % 60)
            .await
            .unwrap(),
        1,
        "the old window was swept, so the count starts again"
    );
}

/// Behind a trusted proxy the per-address limit counts the client it forwards for; from
/// anyone else the header is ignored.
#[tokio::test]
async fn per_address_limit_counts_the_client_behind_a_trusted_proxy() {
    let send = |server: &TestServer, forwarded_for: &'static str| {
        let request = reqwest::Client::new()
            .get(server.bsf_url.clone())
            .header(
                "authorization",
                format!("Digest username=\"{IMPI}\", realm=\"127.0.0.1\", nonce=\"\", uri=\"/\", response=\"\""),
            )
            .header("x-forwarded-for", forwarded_for);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let server = bsf_server(
        |c| {
            c.ub_limit_per_ip = 2;
            c.trusted_proxies = "127.0.0.0/8".parse().unwrap();
        },
        None,
    )
    .await;
    assert_eq!(send(&server, "198.51.100.1").await, 401);
    assert_eq!(send(&server, "198.51.100.1").await, 401);
    assert_eq!(send(&server, "198.51.100.1").await, 429);
    assert_eq!(
        send(&server, "198.51.100.2").await,
        401,
        "another handset behind the proxy"
    );

    let server = bsf_server(|c| c.ub_limit_per_ip = 2, None).await;
    assert_eq!(send(&server, "198.51.100.1").await, 401);
    assert_eq!(send(&server, "198.51.100.2").await, 401);
    assert_eq!(
        send(&server, "198.51.100.3").await,
        429,
        "an untrusted peer's header is ignored"
    );
}
