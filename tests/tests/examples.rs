//! The examples are part of the product: the API scripting example runs against a real server
//! (SQLite and PostgreSQL) and its output is checked, including with `wg-quick strip`.

use std::path::PathBuf;
use std::process::Command;

use wfm_e2e::{ADMIN_PASSWORD, Backend, TestServer, both_backends};

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/api-scripting/mesh_quickstart.py")
}

async fn run(s: &TestServer, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("python3");
    cmd.arg(script()).args(["--server", &s.base, "--password", ADMIN_PASSWORD]).args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("python3")).await.unwrap()
}

async fn api_scripting_quickstart(backend: Backend) {
    let s = TestServer::start(backend).await;
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().display().to_string();
    // A fresh server: the script sets the password up, then builds the mesh.
    let r = run(&s, &["--nodes", "4", "--out", &out_path]).await;
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("node node_")).count(), 4, "{stdout}");
    assert!(stdout.contains("\"generated_groups\": 6"), "{stdout}");
    // node-1 has three peers, each with a preshared key.
    assert_eq!(stdout.matches("[Peer]").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("PresharedKey = ").count(), 3, "{stdout}");
    for i in 1..=4 {
        let f = out_dir.path().join(format!("node-{i}.conf"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600);
        let strip = Command::new("wg-quick").arg("strip").arg(&f).output().expect("wg-quick");
        assert!(strip.status.success(), "{}", String::from_utf8_lossy(&strip.stderr));
    }
    // Second run: logs in, and the duplicate name comes back as its stable error code.
    let r = run(&s, &[]).await;
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("409 CONFIG_NAME_EXISTS"), "{}", String::from_utf8_lossy(&r.stderr));
    s.stop().await;
}

both_backends!(api_scripting_quickstart);
