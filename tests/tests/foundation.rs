//! Host foundation end to end: auth, envelope, validation, guard, SSE, throttling, settings,
//! system, fallbacks — each against SQLite and PostgreSQL.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use wfm_e2e::{ADMIN_PASSWORD, Backend, TestServer, both_backends};

async fn setup_login_session(b: Backend) {
    let s = TestServer::start(b).await;
    let st = s.get("/api/v1/auth/state", None).await;
    assert_eq!(st.ok()["setup_required"], true);
    assert_eq!(st.ok()["authenticated"], false);

    let setup = s.post("/api/v1/auth/setup", None, json!({"password": ADMIN_PASSWORD})).await;
    let d = setup.ok();
    assert_eq!(d["token_type"], "bearer");
    assert_eq!(d["authenticated"], true);
    assert_eq!(d["username"], "admin");
    assert_eq!(d["display_name"], "Admin");
    assert!(d["expires_at"].as_str().unwrap().ends_with("+00:00"));

    let login = s.post("/api/v1/auth/login", None, json!({"username": " admin ", "password": ADMIN_PASSWORD})).await;
    let token = login.ok()["access_token"].as_str().unwrap().to_string();
    let sess = s.get("/api/v1/auth/session", Some(&token)).await;
    assert_eq!(sess.ok()["authenticated"], true);
    assert_eq!(sess.ok()["setup_required"], false);
    // A bad token never fails /session, it reports unauthenticated.
    let bad = s.get("/api/v1/auth/session", Some("not.a.token")).await;
    assert_eq!(bad.ok()["authenticated"], false);
    // Locale from setup default is zh-CN.
    assert_eq!(s.get("/api/v1/settings/ui", Some(&token)).await.ok()["locale"], "zh-CN");
    assert_eq!(s.post("/api/v1/auth/logout", None, json!({})).await.ok()["message"], "Logged out");
    s.stop().await;
}

async fn auth_errors(b: Backend) {
    let s = TestServer::start(b).await;
    // Before setup: login 428, S routes 428 even without a token.
    s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "x"})).await.err(428, "AUTH_SETUP_REQUIRED");
    s.get("/api/v1/system/status", None).await.err(428, "AUTH_SETUP_REQUIRED");
    let token = s.setup_admin().await;
    s.post("/api/v1/auth/setup", None, json!({"password": "another-pass"})).await.err(409, "AUTH_ALREADY_INITIALIZED");
    let wrong = s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "wrong-password"})).await;
    wrong.err(401, "AUTH_FAILED");
    let wrong_user = s.post("/api/v1/auth/login", None, json!({"username": "root", "password": ADMIN_PASSWORD})).await;
    wrong_user.err(401, "AUTH_FAILED");
    assert_eq!(wrong.body["error"]["message"], wrong_user.body["error"]["message"]);
    s.get("/api/v1/system/status", None).await.err(401, "AUTH_REQUIRED");
    s.get("/api/v1/system/status", Some("abc.def.ghi")).await.err(401, "INVALID_TOKEN");
    s.get("/api/v1/system/status", Some("garbage")).await.err(401, "INVALID_TOKEN");
    let st = s.get("/api/v1/system/status", Some(&token)).await;
    let d = st.ok();
    assert_eq!(d["services"]["database"], "ok");
    assert_eq!(d["summary"]["configs"], 0);
    s.stop().await;
}

async fn password_change_rotates_secret(b: Backend) {
    let s = TestServer::start(b).await;
    let old = s.setup_admin().await;
    s.post("/api/v1/auth/password", Some(&old), json!({"current_password": "nope-nope", "new_password": "new-secret-1"}))
        .await
        .err(401, "AUTH_FAILED");
    s.post("/api/v1/auth/password", Some(&old), json!({"current_password": ADMIN_PASSWORD, "new_password": ADMIN_PASSWORD}))
        .await
        .err(400, "PASSWORD_UNCHANGED");
    let r = s.post("/api/v1/auth/password", Some(&old), json!({"current_password": ADMIN_PASSWORD, "new_password": "new-secret-1"})).await;
    let new = r.ok()["access_token"].as_str().unwrap().to_string();
    // Local cache is invalidated at once: the old token is dead right away.
    s.get("/api/v1/system/status", Some(&old)).await.err(401, "INVALID_TOKEN");
    s.get("/api/v1/system/status", Some(&new)).await.ok();
    s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": ADMIN_PASSWORD})).await.err(401, "AUTH_FAILED");
    s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "new-secret-1"})).await.ok();
    // The settings route does the same.
    let r = s.post("/api/v1/settings/password", Some(&new), json!({"current_password": "new-secret-1", "new_password": "third-secret"})).await;
    r.ok();
    s.get("/api/v1/system/status", Some(&new)).await.err(401, "INVALID_TOKEN");
    s.stop().await;
}

async fn validation_errors(b: Backend) {
    let s = TestServer::start(b).await;
    let check = |r: wfm_e2e::Resp, msg: &str| {
        let e = r.err(422, "VALIDATION_ERROR").clone();
        assert_eq!(e["message"], msg, "{e}");
        assert!(e["detail"]["errors"].as_array().is_some_and(|a| !a.is_empty()), "{e}");
    };
    check(s.post("/api/v1/auth/setup", None, json!({"password": "abc"})).await, "Password is required");
    check(s.post("/api/v1/auth/setup", None, json!({})).await, "Password is required");
    check(s.post("/api/v1/auth/setup", None, json!({"password": "x".repeat(257)})).await, "Password is too long");
    check(s.post("/api/v1/auth/setup", None, json!({"password": 123456})).await, "Password is invalid");
    check(s.post("/api/v1/auth/setup", None, json!({"password": "goodpass", "locale": "fr-FR"})).await, "Unsupported locale");
    // Not JSON at all.
    let raw = s
        .client
        .post(s.url("/api/v1/auth/setup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let r = TestServer::read(raw).await;
    r.err(422, "VALIDATION_ERROR");
    let token = s.setup_admin().await;
    check(s.post("/api/v1/auth/login", None, json!({"username": "a".repeat(65), "password": "x"})).await, "Username is too long");
    check(s.post("/api/v1/auth/login", None, json!({"password": "x"})).await, "Username is required");
    check(s.put("/api/v1/settings/ui", Some(&token), json!({"theme_mode": "neon"})).await, "Unsupported theme mode");
    // A body must be an object: an array is not read positionally into the fields.
    for body in [json!(["dark"]), json!("dark"), json!(1)] {
        let e = s.put("/api/v1/settings/ui", Some(&token), body.clone()).await.err(422, "VALIDATION_ERROR").clone();
        assert_eq!(e["detail"]["errors"][0]["type"], "model_attributes_type", "{body}: {e}");
    }
    s.post("/api/v1/configs", Some(&token), json!(["c1"])).await.err(422, "VALIDATION_ERROR");
    // Invalid JSON on an S route without a token: 422 comes first (spec 01 §1).
    let raw = s.client.put(s.url("/api/v1/settings/ui")).header("content-type", "application/json").body("[").send().await.unwrap();
    TestServer::read(raw).await.err(422, "VALIDATION_ERROR");
    // Bad fields without a token: auth error first.
    s.put("/api/v1/settings/ui", None, json!({"theme_mode": "neon"})).await.err(401, "AUTH_REQUIRED");
    // Body limit.
    let big = json!({"password": "p".repeat(2 << 20)});
    let r = s.post("/api/v1/auth/login", None, big).await;
    assert_eq!(r.status.as_u16(), 413, "{:?}", r.body);
    assert_eq!(r.code(), "PAYLOAD_TOO_LARGE");
    s.stop().await;
}

async fn envelope_fallbacks_and_settings(b: Backend) {
    let s = TestServer::start(b).await;
    s.get("/api/v1/nope", None).await.err(404, "NOT_FOUND");
    s.get("/api/other", None).await.err(404, "NOT_FOUND");
    s.delete("/api/v1/system/health", None).await.err(405, "METHOD_NOT_ALLOWED");
    // Dev API is not mounted by default.
    s.post("/api/v0/dev/reset-bootstrap", None, json!({})).await.err(404, "NOT_FOUND");
    let h = s.get("/api/v1/system/health", None).await;
    let d = h.ok();
    assert_eq!(d["status"], "ok");
    assert_eq!(d["service"], "WG Free Mesh API");
    assert_eq!(d["timezone"], "UTC");
    assert_eq!(d["dev_test_api_enabled"], false);
    assert_eq!(s.get("/api/v1/system/timezone", None).await.ok()["timezone"], "UTC");
    let token = s.setup_admin().await;
    assert_eq!(s.get("/api/v1/settings/ui", Some(&token)).await.ok(), &json!({"locale": "en-US", "theme_mode": "system"}));
    let put = s.put("/api/v1/settings/ui", Some(&token), json!({"locale": " ", "theme_mode": "dark"})).await;
    assert_eq!(put.ok(), &json!({"locale": "zh-CN", "theme_mode": "dark"}));
    assert_eq!(s.get("/api/v1/settings/ui", Some(&token)).await.ok()["theme_mode"], "dark");
    // MQTT-dependent status reports its real state.
    let st = s.get("/api/v1/system/status", Some(&token)).await;
    // No broker listens at the default URL in tests: the ingress reports it is not connected.
    assert!(["connecting", "error"].contains(&st.ok()["services"]["mqtt"].as_str().unwrap()), "{}", st.body);
    s.stop().await;

    let off = TestServer::start_with(b, &[("WFM_ENABLE_MQTT_SERVICES", "false")]).await;
    let token = off.setup_admin().await;
    assert_eq!(off.get("/api/v1/system/status", Some(&token)).await.ok()["services"]["mqtt"], "disabled");
    assert_eq!(off.get("/api/v1/system/health", None).await.ok()["mqtt_services_enabled"], false);
    off.stop().await;
}

async fn dev_api_reset(b: Backend) {
    let s = TestServer::start_with(b, &[("WFM_ENABLE_DEV_TEST_API", "true")]).await;
    let token = s.setup_admin().await;
    let r = s.post("/api/v0/dev/reset-bootstrap", None, json!({})).await;
    assert_eq!(r.ok()["message"], "Bootstrap state has been reset");
    assert_eq!(r.ok()["auth_state"]["setup_required"], true);
    s.get("/api/v1/system/status", Some(&token)).await.err(428, "AUTH_SETUP_REQUIRED");
    s.setup_admin().await;
    s.stop().await;
}

async fn legacy_pbkdf2_hash_logs_in(b: Backend) {
    let s = TestServer::start(b).await;
    // An upstream database: PBKDF2 hash under the legacy key, no token secret yet.
    let salt = "0123456789abcdef0123456789abcdef";
    let mut out = [0u8; 32];
    pbkdf2_sha256(b"upstream-pw", salt.as_bytes(), 1000, &mut out);
    let stored = format!("pbkdf2_sha256$1000${salt}${}", hex(&out));
    let mut tx = s.state.db.begin().await.unwrap();
    wfm::store::settings::set(&mut tx, "auth_password_hash", &stored).await.unwrap();
    tx.commit().await.unwrap();
    s.state.auth.invalidate();
    let r = s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "upstream-pw"})).await;
    let token = r.ok()["access_token"].as_str().unwrap().to_string();
    s.get("/api/v1/system/status", Some(&token)).await.ok();
    s.stop().await;
}

async fn login_throttling(b: Backend) {
    let s = TestServer::start_with(b, &[("WFM_LOGIN_MAX_FAILURES", "3"), ("WFM_LOGIN_LOCKOUT_SECONDS", "30")]).await;
    s.setup_admin().await;
    for _ in 0..3 {
        s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "bad-guess"})).await.err(401, "AUTH_FAILED");
    }
    let r = s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": "bad-guess"})).await;
    r.err(429, "AUTH_RATE_LIMITED");
    let retry: u64 = r.headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Even the right password is refused while locked: guessing gains nothing.
    s.post("/api/v1/auth/login", None, json!({"username": "admin", "password": ADMIN_PASSWORD})).await.err(429, "AUTH_RATE_LIMITED");
    s.stop().await;
}

async fn source_guard(b: Backend) {
    let s = TestServer::start_with(b, &[
        ("WFM_PUBLIC_ORIGIN", "https://wfm.example.com"),
        ("WFM_EXTRA_ALLOWED_ORIGINS", r#"["http://localhost:5173"]"#),
    ])
    .await;
    let send = |host: &'static str, origin: Option<&'static str>| {
        let mut req = s.client.get(s.url("/api/v1/system/health")).header("host", host);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move { TestServer::read(req.send().await.unwrap()).await }
    };
    send("wfm.example.com", None).await.ok();
    let ok = send("wfm.example.com", Some("https://wfm.example.com")).await;
    ok.ok();
    assert_eq!(ok.headers.get("access-control-allow-origin").unwrap(), "https://wfm.example.com");
    send("wfm.example.com", Some("http://localhost:5173")).await.ok();
    send("wfm.example.com", Some("https://evil.example")).await.err(403, "PUBLIC_ORIGIN_REJECTED");
    send("evil.example", None).await.err(403, "PUBLIC_HOST_REJECTED");
    // Loopback Host is not the public host either: no health-host exemption (O-10).
    let r = TestServer::read(s.client.get(s.url("/api/v1/system/health")).send().await.unwrap()).await;
    r.err(403, "PUBLIC_HOST_REJECTED");
    // Internal paths are exempt from the guard (they have their own key check).
    let r = TestServer::read(
        s.client.post(s.url("/api/internal/emqx/authz")).header("host", "emqx").json(&json!({})).send().await.unwrap(),
    )
    .await;
    assert_ne!(r.code(), "PUBLIC_HOST_REJECTED");
    s.stop().await;
}

async fn sse_first_frames(b: Backend) {
    let s = TestServer::start_with(b, &[("WFM_SSE_HEARTBEAT_SECONDS", "1")]).await;
    s.get("/api/v1/events/stream", None).await.err(428, "AUTH_SETUP_REQUIRED");
    let token = s.setup_admin().await;
    s.get("/api/v1/events/stream", None).await.err(401, "AUTH_REQUIRED");
    let t0 = Instant::now();
    let resp = s.client.get(s.url("/api/v1/events/stream")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert!(h.get("content-type").unwrap().to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(h.get("cache-control").unwrap(), "no-cache");
    assert_eq!(h.get("x-accel-buffering").unwrap(), "no");
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    let mut frames: Vec<(String, Value)> = Vec::new();
    let mut published = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next()).await.expect("frame in time").expect("stream open").unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find("\n\n") {
            let block: String = buf.drain(..i + 2).collect();
            let mut ev = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    ev = v.into();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v.into();
                }
            }
            if !ev.is_empty() {
                let v: Value = serde_json::from_str(&data).unwrap();
                assert_eq!(v["type"], ev);
                frames.push((ev, v));
            }
        }
        if frames.len() >= 2 && !published {
            assert!(t0.elapsed() < Duration::from_secs(1), "first frames took {:?}", t0.elapsed());
            assert_eq!(frames[0].0, "system.status.updated");
            assert_eq!(frames[0].1["payload"]["services"]["database"], "ok");
            assert_eq!(frames[1].0, "system.clock.sync");
            assert_eq!(frames[1].1["payload"]["timezone"], "UTC");
            s.state.events.publish("config.list.updated", json!({"configs": []}));
            published = true;
        }
        let saw_bus = frames.iter().any(|(e, _)| e == "config.list.updated");
        let heartbeats = frames.iter().filter(|(e, _)| e == "system.clock.sync").count();
        if saw_bus && heartbeats >= 2 {
            let ids: Vec<u64> = frames.iter().map(|(_, v)| v["id"].as_str().unwrap().parse().unwrap()).collect();
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
            s.stop().await;
            return;
        }
    }
    panic!("did not see bus event and heartbeat: {frames:?}");
}

async fn spa_fallback(b: Backend) {
    let s = TestServer::start(b).await;
    let web = s.data_dir.parent().unwrap().join("web");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(web.join("index.html"), "<html>console</html>").unwrap();
    std::fs::write(web.join("assets/app.js"), "console.log(1)").unwrap();
    let page = s.client.get(s.url("/configs/abc")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.text().await.unwrap(), "<html>console</html>");
    let js = s.client.get(s.url("/assets/app.js")).send().await.unwrap();
    assert_eq!(js.text().await.unwrap(), "console.log(1)");
    s.get("/api/v1/unknown/route", None).await.err(404, "NOT_FOUND");
    s.stop().await;
}

both_backends!(
    setup_login_session,
    auth_errors,
    password_change_rotates_secret,
    validation_errors,
    envelope_fallbacks_and_settings,
    dev_api_reset,
    legacy_pbkdf2_hash_logs_in,
    login_throttling,
    source_guard,
    sse_first_frames,
    spa_fallback,
);

// Minimal PBKDF2-HMAC-SHA256 for building an upstream-format hash independently of the
// server's implementation.
fn pbkdf2_sha256(pw: &[u8], salt: &[u8], iters: u32, out: &mut [u8; 32]) {
    use hmac::{Hmac, Mac};
    type H = Hmac<sha2::Sha256>;
    let mut mac = H::new_from_slice(pw).unwrap();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u = mac.finalize().into_bytes();
    let mut t = u;
    for _ in 1..iters {
        let mut m = H::new_from_slice(pw).unwrap();
        m.update(&u);
        u = m.finalize().into_bytes();
        for (a, b) in t.iter_mut().zip(u.iter()) {
            *a ^= b;
        }
    }
    out.copy_from_slice(&t);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
