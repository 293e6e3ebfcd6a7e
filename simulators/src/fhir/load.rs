//! `medbus-sim fhir`: N clients, each with its own keep-alive connection,
//! POST distinct Patients (identifier `<prefix><n>`) to `<base>/Patient` as
//! fast as answers come, until `count` are sent or `duration` has passed.
//! Every latency is kept (runs are bounded), so percentiles are exact.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hl7::latency::{Latencies, LatencySummary};

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL of the FHIR server, e.g. `http://127.0.0.1:8080/fhir`.
    pub base: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Patients to create in all.
    pub count: u64,
    /// Stop sending after this long even when `count` is not reached.
    pub duration: Duration,
    /// Identifier values are `<prefix><n>`; change it between runs against one server.
    pub id_prefix: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoadReport {
    /// Requests answered 201.
    pub created: u64,
    /// Requests answered anything else, or not at all.
    pub failed: u64,
    /// First few failures, as `status: body` or the transport error.
    pub failures: Vec<String>,
    /// From the first request to the last answer.
    pub elapsed_s: f64,
    /// Answered requests per second (created + failed).
    pub requests_per_s: f64,
    /// Latency of created requests.
    pub latency: LatencySummary,
}

/// A generated Patient, distinct per `n`.
pub fn patient(prefix: &str, n: u64) -> String {
    serde_json::json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": format!("{prefix}{n}")}],
        "name": [{"family": format!("Load{n}"), "given": ["Test"]}],
        "gender": if n.is_multiple_of(2) { "female" } else { "male" },
        "birthDate": format!("19{:02}-0{}-1{}", 30 + n % 70, 1 + n % 9, n % 10),
        "address": [{"line": [format!("{n} Example Street")], "city": "Springfield", "postalCode": "12345"}]
    })
    .to_string()
}

/// Runs the load and reports.
pub async fn run(cfg: LoadConfig) -> Result<LoadReport, reqwest::Error> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let url = format!("{}/Patient", cfg.base.trim_end_matches('/'));
    let mut tasks = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients.max(1) {
        // One client each: its own connection, as 16 separate systems would have.
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .pool_max_idle_per_host(1)
            .build()?;
        let (next, url, prefix, count) = (next.clone(), url.clone(), cfg.id_prefix.clone(), cfg.count);
        tasks.push(tokio::spawn(async move {
            let mut lat = Latencies::default();
            let (mut created, mut failed, mut failures) = (0u64, 0u64, Vec::new());
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count || Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/fhir+json")
                    .body(patient(&prefix, n))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let _ = r.bytes().await;
                        lat.record(sent.elapsed());
                        created += 1;
                    }
                    Ok(r) => {
                        failed += 1;
                        let status = r.status().as_u16();
                        if failures.len() < 5 {
                            // Only the start of the answer: an error page can be large.
                            let body = r.bytes().await.unwrap_or_default();
                            let start = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
                            failures.push(format!("{status}: {start}"));
                        }
                    }
                    Err(e) => {
                        failed += 1;
                        if failures.len() < 5 {
                            failures.push(e.to_string());
                        }
                    }
                }
            }
            (lat, created, failed, failures)
        }));
    }
    let mut all = Latencies::default();
    let (mut created, mut failed, mut failures) = (0, 0, Vec::new());
    for t in tasks {
        match t.await {
            Ok((lat, c, f, mut fs)) => {
                all.merge(lat);
                created += c;
                failed += f;
                failures.append(&mut fs);
            }
            // A client that died is a failed run, not a silent one.
            Err(e) => {
                failed += 1;
                failures.push(format!("a client task failed: {e}"));
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    failures.truncate(5);
    Ok(LoadReport {
        created,
        failed,
        failures,
        elapsed_s: elapsed,
        requests_per_s: (created + failed) as f64 / elapsed.max(1e-9),
        latency: all.summary(),
    })
}

#[cfg(test)]
mod tests {
    use super::patient;

    #[test]
    fn generated_patients_differ_and_are_json() {
        let a: serde_json::Value = serde_json::from_str(&patient("P", 1)).unwrap();
        let b: serde_json::Value = serde_json::from_str(&patient("P", 2)).unwrap();
        assert_eq!(a["identifier"][0]["value"], "P1");
        assert_ne!(a["identifier"], b["identifier"]);
        assert_eq!(a["resourceType"], "Patient");
    }
}
