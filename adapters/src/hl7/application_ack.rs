//! Enhanced-mode application acknowledgments.
//!
//! In enhanced mode (MSH-15 or MSH-16 valued) the listener answers with a
//! commit ACK (CA/CE/CR) once the message is kept; the application ACK
//! (AA/AE/AR) comes later, from the processing outcome, as a message of its
//! own sent to the sender's system. MSH-16 says when one is wanted: `AL`
//! always, `ER` only for an error, `SU` only for success, `NE` never; empty
//! in enhanced mode counts as `AL`, as it does for the commit ACK.

use super::ack::{self, AckCode, AckError};
use super::parser::{AckType, Message};

/// The processing outcome an application ACK reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Processed (events published, or kept with no route): AA.
    Accepted,
    /// The content cannot be processed: AE with the reason in ERR.
    Error(AckError),
}

impl Processed {
    /// MSA-1 for this outcome.
    pub fn code(&self) -> AckCode {
        match self {
            Processed::Accepted => AckCode::AA,
            Processed::Error(_) => AckCode::AE,
        }
    }
}

/// True when `msg` asks for an application ACK for this outcome.
pub fn wanted(msg: &Message<'_>, outcome: &Processed) -> bool {
    if !msg.is_enhanced_mode() {
        // Original mode: the ACK the listener sent was the only one.
        return false;
    }
    match msg.application_ack_type() {
        Some(AckType::Never) => false,
        Some(AckType::Error) => !outcome.code().is_accept(),
        Some(AckType::Successful) => outcome.code().is_accept(),
        Some(AckType::Always) | None => true,
    }
}

/// The application ACK for `msg`, or `None` when MSH-15/MSH-16 do not ask for one.
/// `ack_id` becomes its MSH-10.
pub fn build(msg: &Message<'_>, outcome: &Processed, ack_id: &str) -> Option<Vec<u8>> {
    if !wanted(msg, outcome) {
        return None;
    }
    let error = match outcome {
        Processed::Accepted => None,
        Processed::Error(e) => Some(e),
    };
    Some(ack::build(Some(msg), outcome.code(), error, ack_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(msh15: &str, msh16: &str) -> Vec<u8> {
        format!("MSH|^~\\&|REG|H|MEDBUS|H|20240102||ADT^A01^ADT_A01|C1|P|2.5|||{msh15}|{msh16}\rPID|1||123\r")
            .into_bytes()
    }

    #[test]
    fn follows_msh16() {
        let err = Processed::Error(AckError {
            code: 101,
            location: Some(("PID".into(), 2, Some(3))),
            text: "PID-3 is empty".into(),
        });
        let cases = [
            ("AL", "AL", true, true),
            ("AL", "NE", false, false),
            ("AL", "ER", false, true),
            ("NE", "SU", true, false),
            ("AL", "", true, true),
            ("", "", false, false),
        ];
        for (m15, m16, on_success, on_error) in cases {
            let raw = msg(m15, m16);
            let m = Message::parse(&raw).unwrap();
            assert_eq!(
                build(&m, &Processed::Accepted, "X").is_some(),
                on_success,
                "{m15}/{m16}"
            );
            assert_eq!(build(&m, &err, "X").is_some(), on_error, "{m15}/{m16}");
        }
    }

    #[test]
    fn error_ack_names_the_field() {
        let raw = msg("AL", "AL");
        let m = Message::parse(&raw).unwrap();
        let err = Processed::Error(AckError {
            code: 101,
            location: Some(("PID".into(), 2, Some(3))),
            text: "PID-3 is empty".into(),
        });
        let ack = build(&m, &err, "APP1").unwrap();
        let a = Message::parse(&ack).unwrap();
        assert_eq!(a.get("MSA-1").unwrap().unwrap().text(), "AE");
        assert_eq!(a.get("MSA-2").unwrap().unwrap().text(), "C1");
        assert_eq!(a.get("MSH-10").unwrap().unwrap().text(), "APP1");
        assert_eq!(a.get("ERR-3.1").unwrap().unwrap().text(), "101");
        assert_eq!(a.get("MSH-5").unwrap().unwrap().text(), "REG");
    }
}
