//! The whole OpenAPI document against the running host, by a third-party fuzzer
//! (schemathesis, from PyPI): every operation, with generated and boundary inputs, with and
//! without the admin token; every answer must be a status the document lists for that
//! operation, with the documented content type and a body that fits the documented schema.

use crate::support;

use std::process::Command;

use support::Session;

const TOKEN: &str = "0123456789abcdef-fuzz";

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_conforms_to_the_openapi_document() {
    let session = Session::start_with(|c| c.api.admin_token = Some(TOKEN.into())).await;
    let url = format!("{}/api/v1/openapi.json", session.base);
    let st = support::validator("st");
    let report = tempfile::tempdir().unwrap();
    for auth in [None, Some(format!("Authorization: Bearer {TOKEN}"))] {
        let mut cmd = Command::new(&st);
        cmd.args(["run", &url])
            .args([
                "--checks",
                "status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                "--max-examples",
                "25",
                "--generation-deterministic",
                "--no-color",
            ])
            .current_dir(report.path());
        if let Some(header) = &auth {
            cmd.args(["--header", header]);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis found mismatches ({}):\n{text}\n{}",
            if auth.is_some() { "admin" } else { "anonymous" },
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
