//! Declarative deploys: the watched directory and deployment manifests (`apply`), with real
//! workflows on the dev server.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{cli, get_json, get_text, start, wait_closed, Session};
use test_support::eventually;

fn seed_user(id: &str) -> Value {
    json!({"user_id": id, "email": "test@example.com", "name": "Test User", "action": "create"})
}

/// `activity_deploys_total` of ValidateUser with outcome `refused`, from the host's metrics.
async fn refused_deploys(http: &reqwest::Client, base: &str) -> f64 {
    get_text(http, format!("{base}/metrics"))
        .await
        .lines()
        .filter(|l| l.starts_with("activity_deploys_total{"))
        .filter(|l| {
            l.contains(r#"activity_type="ValidateUser""#) && l.contains(r#"outcome="refused""#)
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watched_directory_deploys_swaps_and_refuses() {
    let watched = tempfile::tempdir().unwrap();
    let dir = watched.path().to_path_buf();
    let session = Session::start_with(|c| c.activities.watch_dir = Some(dir)).await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let shown = |http: reqwest::Client, base: String| async move {
        let res = http
            .get(format!("{base}/api/v1/activities/ValidateUser"))
            .send()
            .await
            .ok()?;
        res.json::<Value>().await.ok()
    };
    let v1 = shown(http.clone(), base.clone()).await.unwrap()["active_digest"]
        .as_str()
        .unwrap()
        .to_string();

    // v2 through the directory: the strict validator, with its export and grant in NAME.json.
    std::fs::write(
        watched.path().join("ValidateUser.json"),
        json!({"export": "strict-validate-user", "grants": {"allowed_hosts": ["hosts.invalid"]}})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        watched.path().join("ValidateUser.wasm"),
        test_components::read(test_components::MISBEHAVING),
    )
    .unwrap();
    let v2 = eventually(Duration::from_secs(60), || async {
        let d = shown(http.clone(), base.clone()).await?;
        let digest = d["active_digest"].as_str()?.to_string();
        (digest != v1).then_some(digest)
    })
    .await
    .expect("the watched component is deployed");
    let (id, run) = start(&http, &base, seed_user("watched")).await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run).await["status"],
        "FAILED"
    );

    // A broken file is refused and v2 keeps serving: once the watcher's deploy of it counts
    // as refused, the active version is still v2.
    let refused_before = refused_deploys(&http, &base).await;
    std::fs::write(watched.path().join("ValidateUser.wasm"), b"broken").unwrap();
    eventually(Duration::from_secs(60), || async {
        (refused_deploys(&http, &base).await > refused_before).then_some(())
    })
    .await
    .expect("the watcher tries the broken file and refuses it");
    assert_eq!(
        shown(http.clone(), base.clone()).await.unwrap()["active_digest"],
        v2.as_str()
    );

    // The reference component again: the next workflow completes.
    std::fs::remove_file(watched.path().join("ValidateUser.json")).unwrap();
    std::fs::write(
        watched.path().join("ValidateUser.wasm"),
        test_components::read(test_components::VALIDATE_USER),
    )
    .unwrap();
    eventually(Duration::from_secs(60), || async {
        let d = shown(http.clone(), base.clone()).await?;
        (d["active_digest"] == v1.as_str()).then_some(())
    })
    .await
    .expect("the reference component serves again");
    let (id, run) = start(&http, &base, seed_user("watched-2")).await;
    assert_eq!(
        wait_closed(&http, &base, &id, &run).await["status"],
        "COMPLETED"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_deploys_a_manifest_reapplies_as_no_op_and_prunes() {
    let session = Session::start().await;
    let (http, base) = (session.http.clone(), session.base.clone());
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let apply = |args: Vec<String>| {
        let b = base.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&b, &args)
        })
    };
    let text = support::output_text;
    let manifest = write(
        "activities.toml",
        format!(
            r#"
[activity.Adder]
source = "{misbehaving}"
export = "add"
allowed_hosts = ["hooks.invalid"]
config = {{ greeting = "hello" }}
limits = {{ max_execution_ms = 2000, max_memory_bytes = 33554432 }}

[activity."Validate.v2"]
source = "{validate}"
"#,
            misbehaving = test_components::MISBEHAVING,
            validate = test_components::VALIDATE_USER,
        ),
    );

    let out = apply(vec!["apply".into(), manifest.clone()]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Adder") && text(&out).contains("deployed sha256:"));
    let adder: Value = get_json(&http, format!("{base}/api/v1/activities/Adder")).await;
    let active = adder["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["active"] == true)
        .unwrap();
    assert_eq!(
        active["grants"]["allowed_hosts"],
        json!(["hooks.invalid"]),
        "{adder}"
    );
    assert_eq!(active["grants"]["config"]["greeting"], "hello", "{adder}");
    assert_eq!(active["limits"]["max_execution_ms"], 2000, "{adder}");
    assert_eq!(active["limits"]["max_memory_bytes"], 33554432, "{adder}");

    // The same manifest again changes nothing.
    let out = apply(vec![
        "apply".into(),
        manifest.clone(),
        "--output".into(),
        "json".into(),
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 2, "{report}");
    assert!(
        report
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["changed"] == false),
        "{report}"
    );

    // A YAML manifest with one refused activity: the other still deploys, the command fails
    // naming the refused one, and the refused type is not created.
    let yaml = write(
        "activities.yaml",
        format!(
            "activity:\n  Adder:\n    source: {m}\n    export: add\n    allowed_hosts: [hooks.invalid]\n  NoStore:\n    source: {c}\n",
            m = test_components::MISBEHAVING,
            c = test_components::CREATE_USER,
        ),
    );
    let out = apply(vec!["apply".into(), yaml]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("NoStore") && text(&out).contains("key_value_stores"),
        "{}",
        text(&out)
    );
    let missing = http
        .get(format!("{base}/api/v1/activities/NoStore"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let adder: Value = get_json(&http, format!("{base}/api/v1/activities/Adder")).await;
    assert_eq!(adder["versions"].as_array().unwrap().len(), 2, "{adder}");

    // A manifest with an unknown key is refused whole, naming the key; nothing deployed.
    let bad = write(
        "bad.toml",
        format!(
            "[activity.Fresh]\nsource = \"{}\"\nallow_host = [\"x\"]\n",
            test_components::VALIDATE_USER
        ),
    );
    let out = apply(vec!["apply".into(), bad]).await.unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("allow_host"), "{}", text(&out));
    let fresh = http
        .get(format!("{base}/api/v1/activities/Fresh"))
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 404);

    // --prune leaves exactly the manifest's activities.
    let out = apply(vec!["apply".into(), manifest, "--prune".into()])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let listed: Value = get_json(&http, format!("{base}/api/v1/activities")).await;
    let mut names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Adder", "Validate.v2"]);
}
