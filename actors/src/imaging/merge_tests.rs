use medbus_bus::canonical::{
    systems, Coding, Identifier, ImagingStudy, ImagingStudyInstance, ImagingStudySeries, ImagingStudyStatus, Reference,
};

use super::StudyFold;

/// What one `imaging.instance-stored` carries: the study with one series and one instance.
fn received(series: &str, modality: &str, sop: &str) -> ImagingStudy {
    ImagingStudy {
        resource_type: Default::default(),
        id: None,
        identifier: vec![
            ImagingStudy::study_uid_identifier("1.2.3"),
            ImagingStudy::accession_identifier("ACC1", None),
        ],
        status: ImagingStudyStatus::Registered,
        modality: vec![Coding::new(systems::DICOM_DCM, modality, None)],
        subject: Reference {
            type_: Some("Patient".into()),
            identifier: Some(Identifier {
                system: Some("urn:medbus:authority:HOSP".into()),
                value: Some("M1".into()),
                ..Identifier::default()
            }),
            ..Reference::default()
        },
        started: None,
        based_on: Vec::new(),
        number_of_series: Some(1),
        number_of_instances: Some(1),
        description: None,
        series: vec![ImagingStudySeries {
            uid: series.into(),
            number: None,
            modality: Coding::new(systems::DICOM_DCM, modality, None),
            body_site: None,
            number_of_instances: Some(1),
            instance: vec![ImagingStudyInstance {
                uid: sop.into(),
                sop_class: Coding::new(systems::URI, "urn:oid:1.2.840.10008.5.1.4.1.1.2", None),
                number: None,
            }],
        }],
    }
}

fn fold_all(events: &[ImagingStudy]) -> StudyFold {
    let mut fold = StudyFold::empty_like(&events[0]);
    for e in events {
        fold.merge(e);
    }
    fold
}

#[test]
fn instances_of_two_series_are_counted_exactly() {
    let events: Vec<_> = (0..7)
        .map(|n| {
            let series = if n % 2 == 0 { "1.2.3.1" } else { "1.2.3.2" };
            received(series, if n % 2 == 0 { "CT" } else { "SR" }, &format!("1.2.3.9.{n}"))
        })
        .collect();
    let fold = fold_all(&events);
    let s = fold.study();
    assert_eq!(s.number_of_series, Some(2));
    assert_eq!(s.number_of_instances, Some(7));
    assert_eq!(s.series[0].uid, "1.2.3.1", "first seen first");
    assert_eq!(s.series[0].number_of_instances, Some(4));
    assert_eq!(s.series[1].number_of_instances, Some(3));
    let uids: Vec<_> = s.series[0].instance.iter().map(|i| i.uid.as_str()).collect();
    assert_eq!(
        uids,
        ["1.2.3.9.0", "1.2.3.9.2", "1.2.3.9.4", "1.2.3.9.6"],
        "arrival order"
    );
    let modalities: Vec<_> = s.modality.iter().filter_map(|m| m.code.as_deref()).collect();
    assert_eq!(modalities, ["CT", "SR"]);
}

#[test]
fn a_resent_instance_changes_nothing() {
    let mut fold = fold_all(&[
        received("1.2.3.1", "CT", "1.2.3.9.1"),
        received("1.2.3.1", "CT", "1.2.3.9.2"),
    ]);
    let before = fold.study().clone();
    assert!(!fold.merge(&received("1.2.3.1", "CT", "1.2.3.9.1")));
    // Even when it claims another series: a SOP Instance UID is held once.
    assert!(!fold.merge(&received("1.2.3.7", "CT", "1.2.3.9.2")));
    assert_eq!(fold.study(), &before);
}

#[test]
fn a_new_instance_changes_the_study() {
    let mut fold = fold_all(&[received("1.2.3.1", "CT", "1.2.3.9.1")]);
    assert!(fold.merge(&received("1.2.3.1", "CT", "1.2.3.9.2")));
    assert_eq!(fold.study().number_of_instances, Some(2));
}

#[test]
fn missing_elements_are_filled_once_and_never_overwritten() {
    let mut first = received("1.2.3.1", "CT", "1.2.3.9.1");
    first.identifier.truncate(1);
    let mut fold = fold_all(&[first]);
    assert_eq!(fold.study().accession(), None);
    let mut later = received("1.2.3.1", "CT", "1.2.3.9.1");
    later.description = Some("CT CHEST".into());
    later.series[0].number = Some(3);
    assert!(
        fold.merge(&later),
        "the accession number, description and series number are new"
    );
    assert_eq!(fold.study().accession(), Some("ACC1"));
    assert_eq!(fold.study().description.as_deref(), Some("CT CHEST"));
    assert_eq!(fold.study().series[0].number, Some(3));
    let mut other = received("1.2.3.1", "CT", "1.2.3.9.1");
    other.identifier[1] = ImagingStudy::accession_identifier("ACC2", None);
    other.description = Some("something else".into());
    other.series[0].number = Some(4);
    assert!(!fold.merge(&other), "what is held is kept");
    assert_eq!(fold.study().accession(), Some("ACC1"));
    assert_eq!(fold.study().series[0].number, Some(3));
}

#[test]
fn counts_from_a_stored_study_are_made_exact() {
    let mut stored = received("1.2.3.1", "CT", "1.2.3.9.1");
    stored.number_of_instances = Some(40);
    stored.series[0].number_of_instances = Some(40);
    let fold = StudyFold::new(stored);
    assert_eq!(fold.study().number_of_instances, Some(1));
    assert_eq!(fold.study().series[0].number_of_instances, Some(1));
}

#[test]
fn folding_is_idempotent_whatever_the_order_of_redeliveries() {
    let events: Vec<_> = (0..5)
        .map(|n| received("1.2.3.1", "CT", &format!("1.2.3.9.{n}")))
        .collect();
    let once = fold_all(&events);
    let mut twice = once.clone();
    for e in events.iter().rev() {
        assert!(!twice.merge(e));
    }
    assert_eq!(once.study(), twice.study());
}
