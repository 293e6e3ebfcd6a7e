//! HL7 v2 acknowledgements: original mode (AA/AE/AR) and enhanced-mode
//! commit ACKs (CA/CE/CR), with an ERR segment naming the problem.
//!
//! The ACK mirrors the message it answers: same delimiters, sending and
//! receiving application/facility swapped, MSH-9 `ACK^<trigger>^ACK`, the same
//! processing id and version, MSA-2 = the original MSH-10. A message too broken
//! to read still gets an answer, with the standard delimiters and an empty MSA-2.

use chrono::Utc;

use super::parser::{Delimiters, Message, MessageWriter, ParseError};

/// MSA-1 acknowledgment codes (HL7 table 0008).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Application accept: kept.
    AA,
    /// Application error: the content is wrong; do not resend unchanged.
    AE,
    /// Application reject: not accepted (header unusable, or medbus cannot keep it now); resend later.
    AR,
    /// Commit accept (enhanced mode): kept.
    CA,
    /// Commit error (enhanced mode).
    CE,
    /// Commit reject (enhanced mode).
    CR,
}

impl AckCode {
    /// As written in MSA-1.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// The enhanced-mode (commit) counterpart of an original-mode code.
    pub fn commit(self) -> Self {
        match self {
            AckCode::AA | AckCode::CA => AckCode::CA,
            AckCode::AE | AckCode::CE => AckCode::CE,
            AckCode::AR | AckCode::CR => AckCode::CR,
        }
    }

    /// True for the accept codes.
    pub fn is_accept(self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }
}

/// What goes into the ERR segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckError {
    /// HL7 table 0357 code: 100 segment sequence, 101 required field missing,
    /// 102 data type, 200 unsupported message type, 207 application internal error.
    pub code: u16,
    /// Segment id, its 1-based sequence and the field, when known.
    pub location: Option<(String, usize, Option<usize>)>,
    /// Human text for the sender's interface team.
    pub text: String,
}

impl AckError {
    /// From a parse error: its HL7 code, location and message.
    pub fn from_parse(e: &ParseError) -> Self {
        AckError {
            code: e.hl7_error_code(),
            location: e.location().map(|l| (l.segment.clone(), l.sequence, l.field)),
            text: e.to_string(),
        }
    }

    /// medbus could not keep the message (backbone down or slow).
    pub fn not_kept(why: &str) -> Self {
        AckError {
            code: 207,
            location: None,
            text: format!("medbus could not keep the message, resend later: {why}"),
        }
    }
}

fn table_0357_text(code: u16) -> &'static str {
    match code {
        100 => "Segment sequence error",
        101 => "Required field missing",
        102 => "Data type error",
        103 => "Table value not found",
        200 => "Unsupported message type",
        201 => "Unsupported event code",
        202 => "Unsupported processing id",
        203 => "Unsupported version id",
        _ => "Application internal error",
    }
}

/// Builds the ACK for `original` (None when it could not be parsed at all).
pub fn build(original: Option<&Message<'_>>, code: AckCode, error: Option<&AckError>, ack_id: &str) -> Vec<u8> {
    let delims = original.map(|m| m.delimiters()).unwrap_or(Delimiters::STANDARD);
    let mut w = MessageWriter::new(delims);
    let field_raw = |n: usize| original.and_then(|m| m.msh().field(n)).map(|f| f.raw().to_vec());
    let trigger = original
        .and_then(|m| m.message_type())
        .and_then(|t| t.trigger.map(|t| t.into_owned()))
        .unwrap_or_default();
    let version = original.and_then(|m| m.version()).map(|v| v.into_owned());
    w.segment("MSH");
    // Swap sender and receiver so the ACK goes back where the message came from.
    for (to, from) in [(3, 5), (4, 6), (5, 3), (6, 4)] {
        if let Some(raw) = field_raw(from) {
            w.raw_field(to, &raw);
        }
    }
    w.field(7, Utc::now().format("%Y%m%d%H%M%S").to_string());
    w.components(9, &["ACK", trigger.as_str(), "ACK"]);
    w.field(10, ack_id);
    match field_raw(11) {
        Some(raw) => w.raw_field(11, &raw),
        None => w.field(11, "P"),
    };
    w.field(12, version.as_deref().unwrap_or("2.5"));
    w.segment("MSA").field(1, code.as_str());
    if let Some(id) = original.and_then(|m| m.control_id()) {
        w.raw_field(2, id.raw());
    }
    if let Some(e) = error {
        // MSA-3 (text) is what 2.3/2.4 receivers display; ERR carries the detail.
        w.field(3, &e.text);
        w.segment("ERR");
        let (seg, seq, field) = e.location.clone().unwrap_or_default();
        let field = field.map(|f| f.to_string()).unwrap_or_default();
        let code = e.code.to_string();
        let seq = if seq == 0 { String::new() } else { seq.to_string() };
        // ERR-1 (2.3/2.4 style, ELD): segment^sequence^field^code&text.
        w.field_with(1, |f| {
            f.text(&seg).component().text(&seq).component().text(&field).component();
            f.text(&code).subcomponent().text(table_0357_text(e.code));
        });
        // ERR-2 (2.5+, ERL): segment^sequence^field.
        w.components(2, &[seg.as_str(), seq.as_str(), field.as_str()]);
        // ERR-3: code^text^HL70357; ERR-4: severity; ERR-8: user message.
        w.components(3, &[code.as_str(), table_0357_text(e.code), "HL70357"]);
        w.field(4, "E");
        w.field(8, &e.text);
    }
    // The writer only fails on a segment id it was never given here; fall back to a bare ACK.
    w.finish()
        .unwrap_or_else(|_| format!("MSH|^~\\&|||||||ACK|{ack_id}|P|2.5\rMSA|{}\r", code.as_str()).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_mirrors_the_original() {
        let raw = b"MSH|^~\\&|ADT1|GOOD HEALTH|MEDBUS|HOSP|20240102||ADT^A01^ADT_A01|MSG00001|P|2.5\rPID|1||123\r";
        let msg = Message::parse(raw).unwrap();
        let ack = build(Some(&msg), AckCode::AA, None, "A1");
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSH-3").unwrap().unwrap().text(), "MEDBUS");
        assert_eq!(parsed.get("MSH-4").unwrap().unwrap().text(), "HOSP");
        assert_eq!(parsed.get("MSH-5").unwrap().unwrap().text(), "ADT1");
        assert_eq!(parsed.get("MSH-6").unwrap().unwrap().text(), "GOOD HEALTH");
        assert_eq!(parsed.get("MSH-9").unwrap().unwrap().raw(), b"ACK^A01^ACK");
        assert_eq!(parsed.get("MSH-10").unwrap().unwrap().text(), "A1");
        assert_eq!(parsed.get("MSH-12").unwrap().unwrap().text(), "2.5");
        assert_eq!(parsed.get("MSA-1").unwrap().unwrap().text(), "AA");
        assert_eq!(parsed.get("MSA-2").unwrap().unwrap().text(), "MSG00001");
        assert!(parsed.segment("ERR", 1).is_none());
    }

    #[test]
    fn error_ack_keeps_odd_delimiters_and_names_the_problem() {
        let raw = b"MSH#$*@!#SND#F#RCV#F#2024##ORU$R01#C9#P#2.3\rOBX#1\r";
        let msg = Message::parse(raw).unwrap();
        let err = AckError {
            code: 101,
            location: Some(("OBX".into(), 2, Some(3))),
            text: "OBX-3 & friends missing".into(),
        };
        let ack = build(Some(&msg), AckCode::AE, Some(&err), "A2");
        assert!(ack.starts_with(b"MSH#$*@!#"), "{}", String::from_utf8_lossy(&ack));
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSA-1").unwrap().unwrap().text(), "AE");
        assert_eq!(parsed.get("MSA-2").unwrap().unwrap().text(), "C9");
        assert_eq!(parsed.get("MSA-3").unwrap().unwrap().text(), "OBX-3 & friends missing");
        assert_eq!(parsed.get("ERR-2").unwrap().unwrap().raw(), b"OBX$2$3");
        assert_eq!(parsed.get("ERR-3.1").unwrap().unwrap().text(), "101");
        assert_eq!(
            parsed.get("ERR-1.4.2").unwrap().unwrap().text(),
            "Required field missing"
        );
        assert_eq!(parsed.get("ERR-4").unwrap().unwrap().text(), "E");
    }

    #[test]
    fn unreadable_message_still_gets_an_answer() {
        let err = AckError::from_parse(&Message::parse(b"garbage\r").unwrap_err());
        let ack = build(None, AckCode::AR, Some(&err), "A3");
        let parsed = Message::parse(&ack).unwrap();
        assert_eq!(parsed.get("MSA-1").unwrap().unwrap().text(), "AR");
        let msa2 = parsed.get("MSA-2").unwrap().map(|v| v.text().into_owned());
        assert!(msa2.unwrap_or_default().is_empty(), "no control id to echo");
        assert_eq!(parsed.get("ERR-3.1").unwrap().unwrap().text(), "100");
    }

    #[test]
    fn commit_codes() {
        assert_eq!(AckCode::AA.commit(), AckCode::CA);
        assert_eq!(AckCode::AE.commit(), AckCode::CE);
        assert_eq!(AckCode::AR.commit(), AckCode::CR);
        assert!(AckCode::CA.is_accept() && !AckCode::CR.is_accept());
    }
}
