//! Outgoing HTTP under the egress policy, with every request on loopback: names mapped to
//! 127.0.0.1 by the resolver override, special addresses (metadata, private, unique-local)
//! answered by the override and refused before a connector that counts its calls, secrets
//! substituted only toward their bound hosts, redirects answered and not followed, and the
//! audit of each request.

use crate::support;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use activity_runtime::egress::{placeholder, Connect, Egress, EgressSettings, Secret};
use activity_runtime::{ActivityInfo, CallContext, Grants, Runtime};
use serde_json::{json, Value};
use support::{misbehaving, small_pool};
use test_support::HttpSink;

/// A runtime whose egress answers `names` itself.
fn runtime_with(
    names: &[(&str, IpAddr)],
    connector: Option<Arc<dyn Connect>>,
) -> (Runtime, Arc<Egress>) {
    let mut settings = EgressSettings::default();
    for (name, ip) in names {
        settings.resolve.insert(name.to_string(), vec![*ip]);
    }
    let mut egress = Egress::new(settings);
    if let Some(c) = connector {
        egress = egress.with_connector(c);
    }
    let egress = Arc::new(egress);
    let rt = Runtime::new(&small_pool())
        .unwrap()
        .with_egress(egress.clone());
    (rt, egress)
}

fn grants(hosts: &[String]) -> Grants {
    Grants {
        allowed_hosts: hosts.to_vec(),
        ..Default::default()
    }
}

/// A call context of a workflow's activity, as the worker builds it.
fn context() -> CallContext {
    CallContext {
        info: ActivityInfo {
            activity_id: "7".into(),
            activity_type: "Misbehaving".into(),
            workflow_id: Some("wf-egress".into()),
            run_id: Some("run-1".into()),
            namespace: "default".into(),
            task_queue: "q".into(),
            attempt: 1,
            deadline: None,
        },
        ..Default::default()
    }
}

async fn call(
    rt: &Runtime,
    a: &activity_runtime::ActivityComponent,
    args: Value,
) -> Result<Value, activity_runtime::ActivityFailure> {
    rt.invoke(a, args.as_array().unwrap(), context())
        .await
        .map(|i| i.output)
}

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_unless_the_grant_names_the_address() {
    let sink = HttpSink::start(204).await;
    let port = sink.addr.port();
    let (rt, egress) = runtime_with(&[("sink.test", LOOPBACK)], None);
    let url = format!("http://sink.test:{port}/hook");
    for hosts in [
        vec![format!("sink.test:{port}")],
        vec!["*".to_string()],
        vec!["*.test".to_string()],
    ] {
        let a = misbehaving(&rt, "fetch", grants(&hosts)).await;
        let refused = call(&rt, &a, json!([url])).await.unwrap_err();
        assert!(
            refused.message.contains("HttpRequestDenied"),
            "{hosts:?}: {refused}"
        );
    }
    assert!(
        sink.requests().is_empty(),
        "a refused request arrived: {:?}",
        sink.requests()
    );
    let refused = egress.recent("Misbehaving", 0);
    assert_eq!(refused.len(), 3);
    for r in &refused {
        assert_eq!(r.outcome, "refused");
        assert_eq!(
            r.address.as_deref(),
            Some(format!("127.0.0.1:{port}").as_str())
        );
        assert!(r.reason.as_deref().unwrap().contains("loopback"), "{r:?}");
    }

    // Naming the address lets it through, to that port only.
    let a = misbehaving(
        &rt,
        "fetch",
        grants(&[format!("sink.test:{port}"), format!("127.0.0.1:{port}")]),
    )
    .await;
    assert_eq!(call(&rt, &a, json!([url])).await.unwrap(), json!(204));
    let got = sink.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["host"], format!("sink.test:{port}"));
    let sent = egress.recent("Misbehaving", 0).pop().unwrap();
    assert_eq!(sent.outcome, "sent");
    assert_eq!(sent.status, Some(204));
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.host, "sink.test");
    assert_eq!(sent.workflow_id.as_deref(), Some("wf-egress"));
    assert_eq!(sent.run_id.as_deref(), Some("run-1"));
    assert_eq!(sent.activity_id, "7");
    assert!(sent.version.starts_with("sha256:"));
}

/// Counts connections asked for and makes none.
#[derive(Default)]
struct CountingConnector(AtomicUsize);

impl Connect for CountingConnector {
    fn connect(
        &self,
        _addr: SocketAddr,
    ) -> Pin<
        Box<dyn std::future::Future<Output = std::io::Result<tokio::net::TcpStream>> + Send + '_>,
    > {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Err(std::io::Error::other("the test connector connects nowhere")) })
    }
}

#[tokio::test]
async fn metadata_private_and_unique_local_answers_are_refused_before_any_connection() {
    let connector = Arc::new(CountingConnector::default());
    let targets: Vec<(&str, IpAddr)> = [
        ("metadata.test", "169.254.169.254"),
        ("metadata6.test", "fd00:ec2::254"),
        ("private.test", "10.0.0.1"),
        ("home.test", "192.168.1.1"),
        ("ula.test", "fc00::1"),
        ("zero.test", "0.0.0.0"),
        ("mapped.test", "::ffff:169.254.169.254"),
    ]
    .iter()
    .map(|(n, ip)| (*n, ip.parse().unwrap()))
    .collect();
    let (rt, egress) = runtime_with(&targets, Some(connector.clone()));
    for (name, ip) in &targets {
        let a = misbehaving(&rt, "fetch", grants(&["*".into(), format!("{name}:80")])).await;
        let refused = call(&rt, &a, json!([format!("http://{name}/latest/meta-data/")]))
            .await
            .unwrap_err();
        assert!(
            refused.message.contains("HttpRequestDenied"),
            "{name}: {refused}"
        );
        let record = egress.recent("Misbehaving", 0).pop().unwrap();
        assert_eq!(record.outcome, "refused", "{name}");
        assert!(record.address.unwrap().contains(&ip.to_string()), "{name}");
    }
    assert_eq!(
        connector.0.load(Ordering::SeqCst),
        0,
        "the connector was called"
    );

    // A grant naming the metadata address passes the check and reaches the connector
    // (which connects nowhere): the refusal above was the address check.
    let a = misbehaving(
        &rt,
        "fetch",
        grants(&["metadata.test".into(), "169.254.169.254".into()]),
    )
    .await;
    let failed = call(&rt, &a, json!(["http://metadata.test/"]))
        .await
        .unwrap_err();
    assert!(!failed.message.contains("HttpRequestDenied"), "{failed}");
    assert_eq!(connector.0.load(Ordering::SeqCst), 1);
    assert_eq!(
        egress.recent("Misbehaving", 0).pop().unwrap().outcome,
        "failed"
    );
}

#[tokio::test]
async fn a_secret_reaches_only_its_bound_host_and_the_guest_holds_a_placeholder() {
    const VALUE: &str = "s3cr3t-webhook-token-41";
    let bound = HttpSink::start(200).await;
    let other = HttpSink::start(200).await;
    let (rt, egress) = runtime_with(&[("bound.test", LOOPBACK), ("other.test", LOOPBACK)], None);
    let (pb, po) = (bound.addr.port(), other.addr.port());
    // Bound with `http://`: the sinks speak plain HTTP.
    egress.set_secrets(BTreeMap::from([(
        "TOKEN".to_string(),
        Secret {
            value: VALUE.into(),
            hosts: vec![format!("http://bound.test:{pb}")],
        },
    )]));
    let mut g = grants(&[
        format!("bound.test:{pb}"),
        format!("other.test:{po}"),
        format!("127.0.0.1:{pb}"),
        format!("127.0.0.1:{po}"),
    ]);
    g.secrets = vec!["TOKEN".into()];
    let reader = misbehaving(&rt, "config-get", g.clone()).await;
    assert_eq!(
        call(&rt, &reader, json!(["TOKEN"])).await.unwrap(),
        json!(placeholder("TOKEN")),
        "the guest reads the placeholder"
    );
    let poster = misbehaving(&rt, "post-config", g).await;
    for url in [
        format!("http://bound.test:{pb}/hook"),
        format!("http://other.test:{po}/hook"),
    ] {
        assert_eq!(
            call(&rt, &poster, json!([url, "TOKEN"])).await.unwrap(),
            json!(200)
        );
    }
    let at_bound = &bound.requests()[0];
    assert_eq!(at_bound.headers["x-token"], VALUE);
    assert_eq!(at_bound.body, format!("token={VALUE}"));
    let at_other = &other.requests()[0];
    assert_eq!(at_other.headers["x-token"], placeholder("TOKEN"));
    assert_eq!(at_other.body, format!("token={}", placeholder("TOKEN")));

    let records = egress.recent("Misbehaving", 0);
    let to_bound = records.iter().find(|r| r.host == "bound.test").unwrap();
    assert_eq!(to_bound.secrets, vec!["TOKEN".to_string()]);
    assert_eq!(
        to_bound.request_bytes,
        format!("token={VALUE}").len() as u64
    );
    let to_other = records.iter().find(|r| r.host == "other.test").unwrap();
    assert!(to_other.secrets.is_empty());
    let audit = serde_json::to_string(&records).unwrap();
    assert!(!audit.contains(VALUE), "the audit holds the value: {audit}");
}

#[tokio::test]
async fn redirects_are_answered_to_the_guest_and_not_followed() {
    let target = HttpSink::start(200).await;
    let redirecting = HttpSink::start_redirecting(302, Some(target.url("/moved"))).await;
    let (rt, _) = runtime_with(&[], None);
    let a = misbehaving(
        &rt,
        "fetch",
        grants(&[redirecting.addr.to_string(), target.addr.to_string()]),
    )
    .await;
    assert_eq!(
        call(&rt, &a, json!([redirecting.url("/old")]))
            .await
            .unwrap(),
        json!(302)
    );
    assert_eq!(redirecting.requests().len(), 1);
    assert!(target.requests().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn a_secret_goes_over_plain_http_only_when_its_binding_says_http() {
    const VALUE: &str = "plain-text-would-leak-41";
    let sink = HttpSink::start(200).await;
    let port = sink.addr.port();
    let (rt, egress) = runtime_with(&[("bound.test", LOOPBACK)], None);
    let mut g = grants(&[format!("bound.test:{port}"), format!("127.0.0.1:{port}")]);
    g.secrets = vec!["TOKEN".into()];
    let poster = misbehaving(&rt, "post-config", g).await;
    let url = format!("http://bound.test:{port}/hook");
    for binding in [
        format!("bound.test:{port}"),
        format!("https://bound.test:{port}"),
    ] {
        egress.set_secrets(BTreeMap::from([(
            "TOKEN".to_string(),
            Secret {
                value: VALUE.into(),
                hosts: vec![binding.clone()],
            },
        )]));
        let refused = call(&rt, &poster, json!([url, "TOKEN"])).await.unwrap_err();
        assert!(
            refused.message.contains("HttpRequestDenied"),
            "{binding}: {refused}"
        );
        let record = egress.recent("Misbehaving", 0).pop().unwrap();
        assert_eq!(record.outcome, "refused");
        assert!(
            record.reason.as_deref().unwrap_or("").contains("TLS"),
            "{record:?}"
        );
    }
    assert!(sink.requests().is_empty(), "{:?}", sink.requests());
    // A plain request that carries no placeholder is not the secret's business.
    let fetcher = misbehaving(
        &rt,
        "fetch",
        grants(&[format!("bound.test:{port}"), format!("127.0.0.1:{port}")]),
    )
    .await;
    assert_eq!(call(&rt, &fetcher, json!([url])).await.unwrap(), json!(200));
}
