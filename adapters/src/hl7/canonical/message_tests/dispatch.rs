//! The dispatcher: MSH-9 chooses the mapping; types nobody maps are refused
//! as such (a router filters them), unmapped triggers of mapped types named.

use super::samples::*;
use super::{events, kinds, refused};
use crate::hl7::canonical::MapError;

#[test]
fn msh_9_chooses_the_mapping() {
    let adt = msg(&[&msh("ADT^A28^ADT_A05"), "EVN|A28", PID]);
    assert_eq!(kinds(&events(&adt)), ["patient.registered"]);
    assert_eq!(kinds(&events(&orm("NW", ""))), ["order.placed"]);
    assert_eq!(kinds(&events(&oml())), ["order.placed"]);
    assert_eq!(kinds(&events(&oru_final())), ["result.reported"]);
    assert_eq!(kinds(&events(&siu("S12", ""))), ["appointment.booked"]);
    assert_eq!(kinds(&events(&dft()))[0], "billing.charge-posted");
    // ADT errors are ADT's own.
    let e = refused(&msg(&[&msh("ADT^A17^ADT_A17"), PID]));
    assert_eq!(e, MapError::UnsupportedTrigger { trigger: "A17".into() });
}

#[test]
fn other_types_are_not_mapped() {
    for code in ["ACK", "MDM", "VXU", "QBP", "RDE"] {
        let e = refused(&msg(&[&msh(&format!("{code}^X01")), PID]));
        assert_eq!(e, MapError::NotMapped { found: code.into() });
        assert_eq!(e.hl7_error_code(), 200);
        assert!(e.to_string().contains("ORU^R01"), "{e}");
    }
    let e = refused(b"MSH|^~\\&|A|B|C|D|20240101||||1|P|2.5\rPID|1||1^^^H^MR\r");
    assert_eq!(e, MapError::NotMapped { found: String::new() });
}

#[test]
fn unmapped_triggers_of_mapped_types() {
    for (message_type, expected) in [
        ("ORM^O02", "ORM^O02"),
        ("OML^O22", "OML^O22"),
        ("ORU^R30", "ORU^R30"),
        ("ORM^O21", "ORM^O21"),
        ("DFT^P11", "DFT^P11"),
    ] {
        let e = refused(&msg(&[&msh(message_type), PID, &orc("NW", ""), OBR_ORDER]));
        assert_eq!(
            e,
            MapError::UnsupportedEvent {
                message_type: expected.into()
            }
        );
        assert_eq!(e.hl7_error_code(), 201);
        let ack = e.to_ack_error();
        assert_eq!((ack.code, ack.location), (201, None));
    }
    // A type without a trigger and no EVN-1.
    let e = refused(&msg(&[&msh("ORU"), PID]));
    assert_eq!(e, MapError::MissingTrigger);
    // A DFT from a 2.3 sender names its trigger in EVN-1.
    let raw = String::from_utf8(dft()).unwrap().replace("DFT^P03^DFT_P03", "DFT");
    assert_eq!(kinds(&events(raw.as_bytes())).len(), 3);
}
