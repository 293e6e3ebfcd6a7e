//! Imaging events built from the modality simulator's DICOM instances, the
//! way medbus builds them: each generated data set is read by the SCP's
//! metadata reader and mapped by the DICOM router's mapping
//! (`medbus_adapters::dicom::canonical`), and the instances of each study are
//! folded into the `imaging.study-completed` body the imaging service raises
//! (every series and instance, with the counts).

use std::collections::BTreeMap;

use medbus_adapters::dicom::canonical::{instance_stored, MapOptions};
use medbus_adapters::dicom::dataset::read_metadata;
use medbus_bus::canonical::{CanonicalEvent, DateTime, ImagingEvent, ImagingStudyStatus, StoredInstance};
use medbus_simulators::dicom::generate::{GenerateConfig, Generator};
use medbus_simulators::dicom::modality::Modality;

/// `instance-stored` for every generated instance (CT, MR, CR and US, with
/// and without a patient ID authority, one without Patient ID), then one
/// `study-completed` per study.
pub fn imaging_events() -> Vec<CanonicalEvent> {
    let mut stored = Vec::new();
    for (n, modality) in [Modality::Ct, Modality::Mr, Modality::Cr, Modality::Us]
        .into_iter()
        .enumerate()
    {
        let generator = Generator::new(GenerateConfig {
            patients: 2,
            studies_per_patient: 1,
            series_per_study: 2,
            instances: 8,
            modality,
            pixel_bytes: 512,
            seed: 40 + n as u64,
            accession_prefix: (n % 2 == 0).then(|| format!("RAD{n}-")),
            ..GenerateConfig::default()
        })
        .expect("a possible data set");
        let mut bytes = Vec::new();
        for i in 0..generator.len() {
            generator.encode_dataset_into(i, &mut bytes).expect("encodes");
            let mut m = read_metadata(&bytes, generator.config().syntax.uid()).expect("the SCP reads it");
            // The simulator names no zone; some modalities do, and then the study time is kept.
            if i % 2 == 1 {
                m.timezone_offset = Some("+0100".into());
            }
            if n == 3 && i == 0 {
                m.patient_id = None;
            }
            let file = StoredInstance {
                channel: "modalities".into(),
                file: format!(
                    "{}/{}/{}.dcm",
                    m.study_instance_uid, m.series_instance_uid, m.sop_instance_uid
                ),
                file_bytes: bytes.len() as u64 + 132,
                transfer_syntax: m.transfer_syntax_uid.clone(),
                calling_ae: Some("SIM".into()),
                number_of_frames: m.number_of_frames,
            };
            let options = MapOptions {
                patient_id_authority: (n % 2 == 1).then_some("HOSP"),
                received: DateTime::parse("2026-12-02T04:00:00.250Z").ok(),
            };
            stored.push(instance_stored(&m, file, &options).expect("maps"));
        }
    }
    let mut out: Vec<CanonicalEvent> = stored
        .iter()
        .cloned()
        .map(CanonicalEvent::ImagingInstanceStored)
        .collect();
    out.extend(
        completed(&stored)
            .into_iter()
            .map(CanonicalEvent::ImagingStudyCompleted),
    );
    out
}

/// Each study's instances folded into one body, as the imaging service does:
/// series by UID, instances by SOP Instance UID, the counts, `available`.
fn completed(stored: &[ImagingEvent]) -> Vec<ImagingEvent> {
    let mut studies: BTreeMap<String, ImagingEvent> = BTreeMap::new();
    for e in stored.iter().filter(|e| e.patient.key().is_some()) {
        let key = e.imaging_study.key().expect("a study UID");
        let whole = studies.entry(key).or_insert_with(|| {
            let mut w = e.clone();
            w.imaging_study.series.clear();
            w.imaging_study.modality.clear();
            w.instance = None;
            w.source_message_type = None;
            w.imaging_study.status = ImagingStudyStatus::Available;
            w
        });
        for series in &e.imaging_study.series {
            let s = &mut whole.imaging_study;
            match s.series.iter_mut().find(|x| x.uid == series.uid) {
                Some(x) => x.instance.extend(series.instance.iter().cloned()),
                None => s.series.push(series.clone()),
            }
            if !s.modality.contains(&series.modality) {
                s.modality.push(series.modality.clone());
            }
        }
    }
    let mut out: Vec<ImagingEvent> = studies.into_values().collect();
    for e in &mut out {
        let s = &mut e.imaging_study;
        let mut total = 0;
        for series in &mut s.series {
            series.number_of_instances = Some(series.instance.len() as u32);
            total += series.instance.len() as u32;
        }
        s.number_of_series = Some(s.series.len() as u32);
        s.number_of_instances = Some(total);
        e.occurred = DateTime::parse("2026-12-02T04:01:00Z").ok();
    }
    assert!(
        out.iter().any(|e| e.imaging_study.series.len() > 1),
        "a study with several series"
    );
    out
}
