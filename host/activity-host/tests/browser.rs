//! `/docs` in a real browser: Debian's Chromium, headless, with every host name unresolvable,
//! renders the API's operations from files the host serves itself (nothing from a CDN).

use crate::support;

fn chromium() -> std::path::PathBuf {
    std::env::var_os("CHROMIUM_BIN")
        .map(Into::into)
        .or_else(|| which::which("chromium").ok())
        .expect("chromium is missing: install Debian's chromium package (make test does)")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_page_renders_the_operations_offline_in_chromium() {
    let (host, http) = support::api_only(|_| {}).await;
    let base = host.base.clone();

    // The page names only relative URLs; its files come from the host.
    let page = support::get_text(&http, format!("{base}/docs")).await;
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    for (file, content_type) in [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ] {
        let res = http
            .get(format!("{base}/docs/{file}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{file}");
        let got = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(got.starts_with(content_type), "{file}: {got}");
        assert!(res.bytes().await.unwrap().len() > 300, "{file} is empty");
    }
    let missing = http
        .get(format!("{base}/docs/../Cargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let profile = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        // No name resolves: a page that needed a CDN would render nothing.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=20000",
        "--dump-dom",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .arg(format!("{base}/docs"));
    let out = support::run_ok(cmd).await;
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("opblock"), "no operations rendered:\n{dom}");
    for path in [
        "/api/v1/workflows/user",
        "/api/v1/activities/{name}",
        "/api/v1/activities/{name}/invoke",
    ] {
        // Swagger UI puts each operation's path in a data-path attribute of its summary.
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "{path} not rendered:\n{dom}"
        );
    }
    assert!(dom.contains("activity-host"), "no title:\n{dom}");
}
