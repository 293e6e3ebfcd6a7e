//! The inbound FHIR R4 server through the real binary on NATS JetStream +
//! PostgreSQL: create, read, search by identifier, conditional create and
//! update, a transaction Bundle with internal references processed whole,
//! the canonical events reaching the registration service, and malformed
//! requests answered 4xx with an OperationOutcome with nothing stored.

mod support;

use std::time::Duration;

use medbus_bus::store::{self, SharedStore};
use serde_json::{json, Value};
use support::{eventually, Medbus};

/// A malformed-input case: what it is, path, body, expected status, element the outcome must name.
type Malformed<'a> = (&'a str, &'a str, Vec<u8>, u16, Option<&'a str>);

const MRN: &str = "urn:oid:2.16.840.1.113883.19.5";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// Sends `body` (raw bytes) with `headers`; (status, JSON body or Null).
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            req = req.header("Content-Type", "application/fhir+json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            reqwest::Method::POST,
            path,
            Some(body.to_string().into_bytes()),
            headers,
        )
        .await
    }

    async fn put(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(body.to_string().into_bytes()), headers)
            .await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None, &[]).await
    }
}

fn patient(mrn: &str, family: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": mrn}],
        "name": [{"family": family, "given": ["Ada"]}],
        "gender": "female",
        "birthDate": "1980-02-29"
    })
}

async fn counts(store: &SharedStore) -> Vec<u64> {
    let mut out = Vec::new();
    for t in [
        "Patient",
        "Encounter",
        "Observation",
        "ServiceRequest",
        "DiagnosticReport",
        "ChargeItem",
        "ImagingStudy",
    ] {
        out.push(store.fhir().fhir_count(t).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_create_read_search_conditional_transaction_and_malformed_input() {
    let Some(servers) = support::Production::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = servers.env();
    let start_dir = dir.path().to_path_buf();
    let m = tokio::task::spawn_blocking(move || Medbus::start(&start_dir, &env))
        .await
        .unwrap();
    let store = store::connect(&servers.store_config(), &dir.path().join("data"))
        .await
        .unwrap();
    let c = Client {
        http: reqwest::Client::new(),
        base: m.http.clone(),
    };

    // The CapabilityStatement names the seven types and what is done with them.
    let (status, cap) = c.get("/fhir/metadata").await;
    assert_eq!(status, 200);
    assert_eq!(cap["resourceType"], "CapabilityStatement");
    assert_eq!(cap["fhirVersion"], "4.0.1");
    assert_eq!(cap["rest"][0]["resource"].as_array().map(Vec::len), Some(7));

    // Create, read, search.
    let (status, created) = c.post("/fhir/Patient", &patient("MRN-1", "Lovelace"), &[]).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["meta"]["versionId"], "1");
    let (status, read) = c.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(read["identifier"][0]["value"], "MRN-1");
    assert_eq!(read["name"][0]["family"], "Lovelace");
    let search = format!("/fhir/Patient?identifier={}%7CMRN-1", MRN);
    let (status, found) = c.get(&search).await;
    assert_eq!(status, 200);
    assert_eq!(found["type"], "searchset");
    assert_eq!(found["total"], 1, "{found}");
    assert_eq!(found["entry"][0]["resource"]["id"], id.as_str());
    let (status, _) = c.get("/fhir/Patient/no-such-id").await;
    assert_eq!(status, 404);

    // The same again with If-None-Exist: the existing one, no second patient.
    let condition = format!("identifier={MRN}|MRN-1");
    let (status, again) = c
        .post(
            "/fhir/Patient",
            &patient("MRN-1", "Lovelace"),
            &[("If-None-Exist", &condition)],
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    let (_, found) = c.get(&search).await;
    assert_eq!(found["total"], 1);
    assert_eq!(store.fhir().fhir_count("Patient").await.unwrap(), 1);

    // A plain POST of an MRN another Patient holds: 409, and the request,
    // kept before the store refused it, yields no events (recorded rejected).
    let (status, refused) = c.post("/fhir/Patient", &patient("MRN-1", "Refused"), &[]).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(store.fhir().fhir_count("Patient").await.unwrap(), 1);
    let filter = medbus_bus::store::MessageFilter {
        channel: Some("fhir".into()),
        status: Some(medbus_bus::store::MessageStatus::Rejected),
        patient_id: Some("MRN-1".into()),
        ..Default::default()
    };
    let rejected = eventually("the refused request recorded rejected by the router", || {
        let (store, filter) = (store.clone(), filter.clone());
        async move { store.list_messages(&filter).await.unwrap().into_iter().next() }
    })
    .await;
    let error = rejected.error.unwrap_or_default();
    assert!(error.contains("not stored"), "{error}");
    // The created one is recorded processed, with its router stage, once.
    let processed = medbus_bus::store::MessageFilter {
        status: Some(medbus_bus::store::MessageStatus::Processed),
        ..filter.clone()
    };
    let created_record = eventually("the created request recorded processed by the router", || {
        let (store, processed) = (store.clone(), processed.clone());
        async move { store.list_messages(&processed).await.unwrap().into_iter().next() }
    })
    .await;
    let kept = store.get_message(created_record.id).await.unwrap().unwrap();
    let stages: Vec<_> = kept
        .stages
        .iter()
        .map(|s| (s.stage.as_str(), s.status, s.attempts))
        .collect();
    assert_eq!(
        stages,
        [("router", medbus_bus::store::MessageStatus::Processed, 1)],
        "{kept:?}"
    );
    assert_eq!(kept.message.message_type.as_deref(), Some("create Patient"), "{kept:?}");
    assert!(!kept.message.raw.is_empty());

    // Update by id, a stale If-Match, and a conditional update by identifier.
    let mut changed = read.clone();
    changed["name"][0]["family"] = json!("King");
    let (status, v2) = c.put(&format!("/fhir/Patient/{id}"), &changed, &[]).await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["meta"]["versionId"], "2");
    let (status, stale) = c
        .put(&format!("/fhir/Patient/{id}"), &changed, &[("If-Match", "W/\"1\"")])
        .await;
    assert_eq!(status, 412, "{stale}");
    let (status, v3) = c
        .put(
            &format!("/fhir/Patient?identifier={MRN}%7CMRN-1"),
            &patient("MRN-1", "Byron"),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(v3["id"], id.as_str());
    assert_eq!(v3["meta"]["versionId"], "3");
    let (status, new) = c
        .put(
            &format!("/fhir/Patient?identifier={MRN}%7CMRN-2"),
            &patient("MRN-2", "Babbage"),
            &[],
        )
        .await;
    assert_eq!(status, 201, "{new}");

    // A transaction entry's ifMatch is checked like If-Match: stale → 412 for the whole transaction.
    let mut stale_body = v3.clone();
    stale_body["name"][0]["family"] = json!("Stale");
    let (status, outcome) = c
        .post(
            "/fhir",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": patient("TX-IFM", "Other"), "request": {"method": "POST", "url": "Patient"}},
                {"resource": stale_body, "request": {"method": "PUT", "url": format!("Patient/{id}"), "ifMatch": "W/\"1\""}}]}),
            &[],
        )
        .await;
    assert_eq!(status, 412, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let said = outcome["issue"][0]["diagnostics"].as_str().unwrap_or_default();
    assert!(
        said.contains("the current version is 3") && !said.contains("Some("),
        "{said}"
    );
    // A conditional update matching nothing may not take over the resource its body's id names: 409.
    let mut hijack = patient("MRN-NOPE", "Hijack");
    hijack["id"] = json!(id);
    let (status, outcome) = c
        .put(&format!("/fhir/Patient?identifier={MRN}%7CMRN-NOPE"), &hijack, &[])
        .await;
    assert_eq!(status, 409, "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "conflict", "{outcome}");
    let (status, outcome) = c
        .post(
            "/fhir",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": [
                {"resource": hijack, "request": {"method": "PUT", "url": format!("Patient?identifier={MRN}|MRN-NOPE")}}]}),
            &[],
        )
        .await;
    assert_eq!(status, 409, "{outcome}");
    let (_, still) = c.get(&format!("/fhir/Patient/{id}")).await;
    assert_eq!(still["meta"]["versionId"], "3", "{still}");
    assert_eq!(still["name"][0]["family"], "Byron", "{still}");
    let (_, found) = c.get(&format!("/fhir/Patient?identifier={MRN}%7CTX-IFM")).await;
    assert_eq!(found["total"], 0, "a refused transaction stored its first entry");

    // total counts matches, not entries shown: left out when more match than _count shows.
    for system in ["urn:medbus:twin-a", "urn:medbus:twin-b"] {
        let mut twin = patient("TWIN", "Twin");
        twin["identifier"] = json!([{"system": system, "value": "TWIN"}]);
        let (status, made) = c.post("/fhir/Patient", &twin, &[]).await;
        assert_eq!(status, 201, "{made}");
    }
    let (_, both) = c.get("/fhir/Patient?identifier=TWIN").await;
    assert_eq!(both["total"], 2, "{both}");
    let (_, one) = c.get("/fhir/Patient?identifier=TWIN&_count=1").await;
    assert_eq!(one["entry"].as_array().map(Vec::len), Some(1), "{one}");
    assert!(one.get("total").is_none(), "total of a partial page: {one}");

    // A method a path does not take: 405 with an OperationOutcome and Allow.
    let resp = c
        .http
        .delete(format!("{}/fhir/Patient/{id}", c.base))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 405);
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(allow.contains("GET") && allow.contains("PUT"), "Allow: {allow:?}");
    let outcome: Value = serde_json::from_str(&resp.text().await.unwrap_or_default()).unwrap_or(Value::Null);
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    assert_eq!(outcome["issue"][0]["code"], "not-supported", "{outcome}");

    // A transaction: Patient + Encounter + Observation referring to each other by urn:uuid.
    let tx = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": patient("MRN-3", "Hopper"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={MRN}|MRN-3")}},
            {"fullUrl": "urn:uuid:a7d2c7b4-38a4-4d4f-9a3e-1f2b4c5d6e7f", "resource": {
                "resourceType": "Encounter", "status": "in-progress",
                "identifier": [{"system": "urn:medbus:visit", "value": "V-3"}],
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                "period": {"start": "2026-11-30T08:00:00Z"}},
             "request": {"method": "POST", "url": "Encounter"}},
            {"fullUrl": "urn:uuid:0b7f1c9e-8f4c-4c51-9d0a-6c8f3e2a1b4d", "resource": {
                "resourceType": "Observation", "status": "final",
                "identifier": [{"system": "urn:medbus:obs", "value": "O-3"}],
                "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3", "display": "Potassium"}]},
                "subject": {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                "encounter": {"reference": "urn:uuid:a7d2c7b4-38a4-4d4f-9a3e-1f2b4c5d6e7f"},
                "effectiveDateTime": "2026-11-30T09:00:00Z",
                "valueQuantity": {"value": 4.1, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}},
             "request": {"method": "POST", "url": "Observation"}}
        ]
    });
    let (status, resp) = c.post("/fhir", &tx, &[]).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp["type"], "transaction-response");
    let statuses: Vec<&str> = resp["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["201 Created", "201 Created", "201 Created"]);
    let location = resp["entry"][2]["response"]["location"].as_str().unwrap();
    let obs_path = location
        .split("/fhir")
        .nth(1)
        .unwrap()
        .split("/_history")
        .next()
        .unwrap()
        .to_string();
    let (status, obs) = c.get(&format!("/fhir{obs_path}")).await;
    assert_eq!(status, 200);
    let patient_ref = obs["subject"]["reference"].as_str().unwrap();
    assert!(patient_ref.starts_with("Patient/"), "{patient_ref}");
    let (status, p3) = c.get(&format!("/fhir/{patient_ref}")).await;
    assert_eq!(status, 200);
    assert_eq!(p3["identifier"][0]["value"], "MRN-3");
    // The conditional entry sent again matches what the first one created (POST entries without a
    // condition would create again: only conditional ones are idempotent).
    let (status, resp2) = c
        .post(
            "/fhir",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": [tx["entry"][0].clone()]}),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{resp2}");
    assert_eq!(resp2["entry"][0]["response"]["status"], "200 OK");

    // The canonical events reach the registration service: patients and the encounter.
    let reg = store.clone();
    let p = eventually("MRN-3 registered by the registration service", || {
        let reg = reg.clone();
        async move { reg.registration().find_patient(Some(MRN), "MRN-3").await.unwrap() }
    })
    .await;
    let reg = store.clone();
    let key = p.key.clone();
    eventually("the FHIR encounter applied", || {
        let reg = reg.clone();
        let key = key.clone();
        async move { reg.registration().encounters_of(&key).await.unwrap().into_iter().next() }
    })
    .await;
    let reg = store.clone();
    let byron = eventually("the conditional update applied as patient.updated", || {
        let reg = reg.clone();
        async move {
            reg.registration()
                .find_patient(Some(MRN), "MRN-1")
                .await
                .unwrap()
                .filter(|p| p.resource["name"][0]["family"] == "Byron")
        }
    })
    .await;
    assert_eq!(byron.resource["identifier"][0]["value"], "MRN-1");

    // A report and the two observations it lists, in one transaction: one
    // result event (the report carries them), so the results service keeps
    // one DiagnosticReport, not one per observation besides.
    let clinical_count = |t: &'static str| {
        let store = store.clone();
        async move { store.clinical().count_resources(t).await.unwrap() }
    };
    // The transaction above carried an Observation: the results service
    // applies it (and the report it comes in) in one transaction, possibly
    // after this point, so wait for it before counting, or the counts below
    // would take it for the panel's.
    eventually("the earlier observation applied", || {
        let count = clinical_count("Observation");
        async move { (count.await >= 1).then_some(()) }
    })
    .await;
    let (obs_before, reports_before) = (
        clinical_count("Observation").await,
        clinical_count("DiagnosticReport").await,
    );
    let value = |uuid: &str, code: &str, v: f64| {
        json!({"fullUrl": format!("urn:uuid:{uuid}"), "resource": {
            "resourceType": "Observation", "status": "final",
            "identifier": [{"system": "urn:medbus:obs", "value": format!("O-{code}")}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": patient_ref},
            "valueQuantity": {"value": v, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}},
         "request": {"method": "POST", "url": "Observation"}})
    };
    let panel = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        value("5d0b0a4e-8f58-4d6e-a0d4-2a1f0f6a9c01", "2951-2", 140.0),
        value("5d0b0a4e-8f58-4d6e-a0d4-2a1f0f6a9c02", "2823-3", 4.0),
        {"fullUrl": "urn:uuid:5d0b0a4e-8f58-4d6e-a0d4-2a1f0f6a9c03", "resource": {
            "resourceType": "DiagnosticReport", "status": "final",
            "identifier": [{"system": "urn:medbus:report", "value": "R-PANEL"}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "24326-1"}]},
            "subject": {"reference": patient_ref},
            "result": [{"reference": "urn:uuid:5d0b0a4e-8f58-4d6e-a0d4-2a1f0f6a9c01"},
                       {"reference": "urn:uuid:5d0b0a4e-8f58-4d6e-a0d4-2a1f0f6a9c02"}]},
         "request": {"method": "POST", "url": "DiagnosticReport"}}
    ]});
    let (status, resp) = c.post("/fhir", &panel, &[]).await;
    assert_eq!(status, 200, "{resp}");
    eventually("the panel's observations applied", || {
        let count = clinical_count("Observation");
        async move { (count.await >= obs_before + 2).then_some(()) }
    })
    .await;
    // Anything further for this request would be applied by now (one service, in order).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        clinical_count("DiagnosticReport").await,
        reports_before + 1,
        "one report for the panel"
    );

    // Malformed input: 4xx with an OperationOutcome, nothing stored.
    let before = counts(&store).await;
    let obs = |subject: &str| {
        json!({"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
               "subject": {"reference": subject}})
    };
    let with = |mut v: Value, key: &str, value: Value| {
        v[key] = value;
        v
    };
    let without = |mut v: Value, key: &str| {
        if let Some(o) = v.as_object_mut() {
            o.remove(key);
        }
        v
    };
    let good_obs = obs(&format!("Patient/{id}"));
    let raw = |s: &str| s.as_bytes().to_vec();
    let cases: Vec<Malformed> = vec![
        ("invalid JSON", "/fhir/Patient", raw("{\"resourceType\": \"Patient\","), 400, None),
        ("empty body", "/fhir/Patient", Vec::new(), 400, None),
        ("a JSON array", "/fhir/Patient", raw("[]"), 400, None),
        ("no resourceType", "/fhir/Patient", without(patient("X1", "X"), "resourceType").to_string().into_bytes(), 400, None),
        ("an unknown resource type in the body", "/fhir/Patient", raw("{\"resourceType\": \"Foo\"}"), 400, None),
        ("an unsupported type in the URL", "/fhir/Medication", raw("{\"resourceType\": \"Medication\"}"), 404, None),
        ("body type differs from URL", "/fhir/Patient", good_obs.to_string().into_bytes(), 400, None),
        ("an unknown element", "/fhir/Patient", with(patient("X2", "X"), "favouriteColour", json!("blue")).to_string().into_bytes(), 400, Some("favouriteColour")),
        ("an unknown nested element", "/fhir/Patient", with(patient("X3", "X"), "name", json!([{"family": "X", "nickname": "x"}])).to_string().into_bytes(), 400, Some("name")),
        ("birthDate a number", "/fhir/Patient", with(patient("X4", "X"), "birthDate", json!(1980)).to_string().into_bytes(), 400, Some("birthDate")),
        ("an impossible date", "/fhir/Patient", with(patient("X5", "X"), "birthDate", json!("1980-13-45")).to_string().into_bytes(), 400, Some("birthDate")),
        ("a gender outside the value set", "/fhir/Patient", with(patient("X6", "X"), "gender", json!("robot")).to_string().into_bytes(), 400, Some("gender")),
        ("active a string", "/fhir/Patient", with(patient("X7", "X"), "active", json!("yes")).to_string().into_bytes(), 400, Some("active")),
        ("identifier an object", "/fhir/Patient", with(patient("X8", "X"), "identifier", json!({"value": "X8"})).to_string().into_bytes(), 400, Some("identifier")),
        ("a patient without identifier", "/fhir/Patient", without(patient("X9", "X"), "identifier").to_string().into_bytes(), 400, Some("identifier")),
        ("a modifierExtension", "/fhir/Patient", with(patient("X10", "X"), "modifierExtension", json!([{"url": "http://x", "valueBoolean": true}])).to_string().into_bytes(), 400, Some("modifierExtension")),
        ("Observation without status", "/fhir/Observation", without(good_obs.clone(), "status").to_string().into_bytes(), 400, Some("status")),
        ("Observation without code", "/fhir/Observation", without(good_obs.clone(), "code").to_string().into_bytes(), 400, Some("code")),
        ("a reference that is not one", "/fhir/Observation", obs("not a reference").to_string().into_bytes(), 400, Some("subject")),
        ("subject pointing at an Observation", "/fhir/Observation", obs("Observation/abc").to_string().into_bytes(), 400, Some("subject")),
        ("subject pointing at nothing", "/fhir/Observation", obs("Patient/does-not-exist").to_string().into_bytes(), 422, Some("subject")),
        ("ServiceRequest without intent", "/fhir/ServiceRequest", json!({"resourceType": "ServiceRequest", "status": "active", "subject": {"reference": format!("Patient/{id}")}}).to_string().into_bytes(), 400, Some("intent")),
        ("Encounter without class", "/fhir/Encounter", json!({"resourceType": "Encounter", "status": "planned", "subject": {"reference": format!("Patient/{id}")}}).to_string().into_bytes(), 400, Some("class")),
        ("a Bundle of type collection", "/fhir", json!({"resourceType": "Bundle", "type": "collection", "entry": []}).to_string().into_bytes(), 400, Some("type")),
        ("a transaction whose second entry is broken", "/fhir", json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": patient("HALF-1", "Half"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": without(good_obs.clone(), "status"), "request": {"method": "POST", "url": "Observation"}}]}).to_string().into_bytes(), 400, Some("Bundle.entry[1]")),
        ("a transaction referring to an entry it does not have", "/fhir", json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": patient("HALF-2", "Half"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": obs("urn:uuid:7d0c5a5e-1111-4222-8333-944455556666"), "request": {"method": "POST", "url": "Observation"}}]}).to_string().into_bytes(), 422, Some("Bundle.entry[1]")),
    ];
    let mut checked = 0;
    for (what, path, body, want, expression) in &cases {
        let (status, outcome) = c.send(reqwest::Method::POST, path, Some(body.clone()), &[]).await;
        assert_eq!(status, *want, "{what}: {outcome}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{what}: {outcome}");
        assert_eq!(outcome["issue"][0]["severity"], "error", "{what}: {outcome}");
        if let Some(e) = expression {
            let named = outcome["issue"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["expression"].to_string().contains(e) || i["diagnostics"].to_string().contains(e));
            assert!(named, "{what}: {e} not named in {outcome}");
        }
        checked += 1;
    }
    // Other methods and media types.
    let (status, outcome) = c
        .send(
            reqwest::Method::POST,
            "/fhir/Patient",
            Some(raw("<Patient/>")),
            &[("Content-Type", "application/fhir+xml")],
        )
        .await;
    assert_eq!(status, 415, "{outcome}");
    let mut wrong_id = read.clone();
    wrong_id["id"] = json!("another-id");
    let (status, outcome) = c.put(&format!("/fhir/Patient/{id}"), &wrong_id, &[]).await;
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    checked += 2;
    println!("{checked} malformed requests refused with an OperationOutcome");
    assert!(checked >= 20);
    assert_eq!(counts(&store).await, before, "a refused request stored something");
    for mrn in ["HALF-1", "HALF-2"] {
        let (_, found) = c.get(&format!("/fhir/Patient?identifier={MRN}%7C{mrn}")).await;
        assert_eq!(found["total"], 0, "{mrn} was half-stored");
    }
}
