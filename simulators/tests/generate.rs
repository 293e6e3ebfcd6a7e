//! The generator: determinism, well-formed headers, unique control ids, the mix of message
//! types and events, per-patient order, and the shares of malformed messages and resends.

use std::collections::{HashMap, HashSet};

use bytes::BytesMut;
use medbus_adapters::hl7::mllp_codec::{MllpCodec, MllpItem};
use medbus_simulators::hl7::corpus::{self, Framing};
use medbus_simulators::hl7::generate::{GenConfig, GeneratedMessage, Generator, Kind, Malformation, Mix};
use tokio_util::codec::Decoder;

fn config(mix: Mix, malformed: f64, resend: f64) -> GenConfig {
    GenConfig {
        seed: 7,
        mix,
        malformed,
        resend,
        ..GenConfig::default()
    }
}

fn take(c: &GenConfig, n: usize) -> Vec<GeneratedMessage> {
    Generator::new(c.clone()).take(n).collect()
}

fn text(m: &GeneratedMessage) -> &str {
    std::str::from_utf8(&m.payload).unwrap()
}

/// MSH fields by their HL7 number (MSH-1 is the separator, so split index n is MSH-(n+1)).
fn msh(m: &GeneratedMessage, n: usize) -> &str {
    text(m).split('\r').next().unwrap().split('|').nth(n - 1).unwrap_or("")
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let c = config(Mix::Full, 0.05, 0.05);
    let a: Vec<_> = take(&c, 3000).into_iter().map(|m| m.payload).collect();
    let b: Vec<_> = take(&c, 3000).into_iter().map(|m| m.payload).collect();
    assert_eq!(a, b);
    let other = GenConfig { seed: 8, ..c };
    let d: Vec<_> = take(&other, 3000).into_iter().map(|m| m.payload).collect();
    assert_ne!(a, d);
}

#[test]
fn valid_messages_have_msh_unique_control_ids_and_their_type() {
    let c = GenConfig {
        id_prefix: Some("RUNX-".into()),
        ..config(Mix::Full, 0.03, 0.03)
    };
    let msgs = take(&c, 5000);
    let mut ids = HashSet::new();
    for m in msgs.iter().filter(|m| m.kind == Kind::Valid) {
        let t = text(m);
        assert!(t.starts_with("MSH|^~\\&|") && t.ends_with('\r'), "{t}");
        assert!(t.is_ascii() && !t.contains('\n'));
        let id = m.control_id.as_deref().unwrap();
        assert!(id.starts_with("RUNX-") && id.len() <= 20, "{id}");
        assert_eq!(msh(m, 10), id);
        assert_eq!(Some(msh(m, 9)), m.message_type);
        assert_eq!((msh(m, 11), msh(m, 12)), ("P", "2.5"));
        assert!(ids.insert(id.to_string()), "duplicate MSH-10 {id}");
        // Every segment has a three-character name followed by the field separator.
        for seg in t.trim_end_matches('\r').split('\r') {
            assert!(seg.len() > 3 && seg.as_bytes()[3] == b'|', "{seg:?} in {t}");
        }
    }
    // Resends repeat an earlier valid message byte for byte.
    let by_id: HashMap<_, _> = msgs
        .iter()
        .filter(|m| m.kind == Kind::Valid)
        .map(|m| (m.control_id.clone().unwrap(), m))
        .collect();
    for r in msgs.iter().filter(|m| m.kind == Kind::Resend) {
        let original = by_id[r.control_id.as_ref().unwrap()];
        assert!(original.index < r.index);
        assert_eq!((&original.payload, original.key), (&r.payload, r.key));
    }
}

#[test]
fn adt_mix_is_all_adt_and_covers_every_event() {
    let msgs = take(&config(Mix::Adt, 0.0, 0.0), 3000);
    let types: HashSet<_> = msgs.iter().filter_map(|m| m.message_type).collect();
    assert!(types.iter().all(|t| t.starts_with("ADT^")), "{types:?}");
    for ev in ["A01", "A04", "A08", "A03", "A11", "A13", "A28", "A31", "A40"] {
        assert!(types.iter().any(|t| t[4..7] == *ev), "no {ev} in {types:?}");
    }
}

#[test]
fn full_mix_covers_orders_results_charges_and_appointments() {
    let msgs = take(&config(Mix::Full, 0.0, 0.0), 6000);
    let all: String = msgs.iter().map(text).collect();
    for t in [
        "ORM^O01", "ORU^R01", "DFT^P03", "SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15", "ADT^A40",
    ] {
        assert!(all.contains(t), "no {t}");
    }
    for control in ["ORC|NW|", "ORC|CA|", "ORC|SC|", "ORC|XO|", "ORC|DC|"] {
        assert!(all.contains(control), "no {control}");
    }
    // Results: LOINC-coded OBX with UCUM units, critical flags, and P/F/C statuses.
    for needle in [
        "^LN||", "^UCUM|", "|HH|||", "|LL|||", "|N|||F|", "|P|||", "|C|||", "^C4",
    ] {
        assert!(all.contains(needle), "no {needle}");
    }
}

#[test]
fn each_patients_messages_follow_their_episode() {
    let msgs = take(&config(Mix::Full, 0.0, 0.0), 6000);
    let mut by_key: HashMap<u64, Vec<&str>> = HashMap::new();
    for m in &msgs {
        by_key.entry(m.key).or_default().push(m.message_type.unwrap());
    }
    for (key, types) in by_key {
        let first = &types[0][..7];
        assert!(
            ["ADT^A01", "ADT^A04", "ADT^A28", "SIU^S12"].contains(&first),
            "patient {key} starts with {first}: {types:?}"
        );
        // Nothing about a visit after it was discharged, except a cancel-discharge.
        if let Some(d) = types.iter().position(|t| t.starts_with("ADT^A03")) {
            assert!(
                types[d + 1..]
                    .iter()
                    .all(|t| t.starts_with("ADT^A13") || t.starts_with("ADT^A03")),
                "{types:?}"
            );
        }
        // A result follows its order.
        if let Some(r) = types.iter().position(|t| t.starts_with("ORU")) {
            assert!(types[..r].iter().any(|t| t.starts_with("ORM")), "{types:?}");
        }
    }
}

#[test]
fn malformed_and_resend_shares_are_roughly_as_configured() {
    let msgs = take(&config(Mix::Adt, 0.05, 0.02), 20_000);
    let malformed: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m.kind {
            Kind::Malformed(how) => Some(how),
            _ => None,
        })
        .collect();
    let resends = msgs.iter().filter(|m| m.kind == Kind::Resend).count();
    // Binomial: 1,000 ± 31 and 400 ± 20 (one sigma); five sigma either way.
    assert!((845..=1155).contains(&malformed.len()), "{}", malformed.len());
    assert!((300..=500).contains(&resends), "{resends}");
    for how in Malformation::ALL {
        assert!(malformed.contains(&how), "no {how:?}");
    }
    for m in msgs.iter().filter(|m| matches!(m.kind, Kind::Malformed(_))) {
        assert!(m.control_id.is_none() && m.message_type.is_none());
        assert!(!m.payload.starts_with(b"MSH|^~\\&|") || m.payload.iter().filter(|b| **b == b'|').count() < 11);
    }
    let none = take(&config(Mix::Adt, 0.0, 0.0), 2000);
    assert!(none.iter().all(|m| m.kind == Kind::Valid));
}

#[test]
fn corpus_files_frame_every_message() {
    let msgs = take(&config(Mix::Full, 0.02, 0.0), 500);
    let mut file = Vec::new();
    let n = corpus::write(&mut file, msgs.clone(), Framing::Mllp).unwrap();
    assert_eq!(n as usize, file.len());
    let mut buf = BytesMut::from(&file[..]);
    let mut codec = MllpCodec::new();
    let mut frames = Vec::new();
    while let Some(item) = codec.decode(&mut buf).unwrap() {
        match item {
            MllpItem::Frame(f) => frames.push(f),
            MllpItem::Junk { len } => panic!("{len} junk bytes"),
        }
    }
    assert_eq!(frames, msgs.iter().map(|m| m.payload.clone()).collect::<Vec<_>>());

    let mut cr = Vec::new();
    corpus::write(&mut cr, take(&config(Mix::Adt, 0.0, 0.0), 10), Framing::Cr).unwrap();
    let text = String::from_utf8(cr).unwrap();
    assert_eq!(text.matches("MSH|^~\\&|").count(), 10);
    assert!(!text.contains('\u{b}'));
}
