//! Just enough ACK parsing for a load generator: the field separator from MSH-1, then MSA-1
//! (the code) and MSA-2 (the control id acknowledged). Deliberately independent of the
//! adapters' parser, so the simulator checks the listener with code of its own.

/// MSA-1, HL7 table 0008.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Application accept.
    AA,
    /// Application error.
    AE,
    /// Application reject.
    AR,
    /// Commit accept (enhanced mode).
    CA,
    /// Commit error (enhanced mode).
    CE,
    /// Commit reject (enhanced mode).
    CR,
    /// Anything else (kept as sent, for the report).
    Other(String),
}

impl AckCode {
    fn parse(s: &str) -> Self {
        match s {
            "AA" => AckCode::AA,
            "AE" => AckCode::AE,
            "AR" => AckCode::AR,
            "CA" => AckCode::CA,
            "CE" => AckCode::CE,
            "CR" => AckCode::CR,
            other => AckCode::Other(other.to_string()),
        }
    }

    /// True for AA and CA: the receiver has the message.
    pub fn is_accept(&self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }
}

/// The parts of an ACK the simulator checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the MSH-10 of the message acknowledged.
    pub control_id: String,
    /// MSA-3 or, when empty, the first ERR segment: why a message was not accepted.
    pub text: Option<String>,
}

/// Why an answer could not be read as an ACK.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// The answer does not start with an MSH segment, so it has no field separator.
    #[error("answer does not start with MSH")]
    NoMsh,
    /// There is no MSA segment.
    #[error("answer has no MSA segment")]
    NoMsa,
}

/// Longest error text kept from an answer, so one odd ACK cannot bloat a report.
const MAX_TEXT: usize = 200;

/// Reads MSA-1 and MSA-2 from an ACK frame's payload.
pub fn parse(frame: &[u8]) -> Result<Ack, AckError> {
    let start = frame
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(frame.len());
    let frame = &frame[start..];
    let sep = match frame {
        [b'M', b'S', b'H', sep, ..] => *sep,
        _ => return Err(AckError::NoMsh),
    };
    let mut segments = frame.split(|b| *b == b'\r' || *b == b'\n');
    let is = |seg: &[u8], name: &[u8]| seg.len() >= 3 && &seg[..3] == name && seg.get(3).is_none_or(|b| *b == sep);
    let msa = segments.clone().find(|s| is(s, b"MSA")).ok_or(AckError::NoMsa)?;
    let field = |n: usize| {
        let f = msa.split(|b| *b == sep).nth(n).unwrap_or_default();
        String::from_utf8_lossy(f).trim().to_string()
    };
    let text = Some(field(3)).filter(|t| !t.is_empty()).or_else(|| {
        segments
            .find(|s| is(s, b"ERR"))
            .map(|s| String::from_utf8_lossy(s).chars().take(MAX_TEXT).collect())
    });
    Ok(Ack {
        code: AckCode::parse(&field(1)),
        control_id: field(2),
        text: text.map(|t| t.chars().take(MAX_TEXT).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_code_and_control_id_with_any_separator() {
        let a = parse(b"MSH|^~\\&|MEDBUS|GH|REG|GH|20240101||ACK^A01^ACK|1|P|2.5\rMSA|AA|SIM1-00000007\r").unwrap();
        assert_eq!(
            (a.code, a.control_id.as_str(), a.text),
            (AckCode::AA, "SIM1-00000007", None)
        );
        let b = parse(b"\nMSH#^~\\&#X\nMSA#AE#ID9#bad PID\n").unwrap();
        assert_eq!((b.code, b.control_id.as_str()), (AckCode::AE, "ID9"));
        assert_eq!(b.text.as_deref(), Some("bad PID"));
    }

    #[test]
    fn err_segment_is_the_text_when_msa3_is_empty() {
        let a = parse(b"MSH|^~\\&|A\rMSA|AR|\rERR|^^^207&Application internal error\r").unwrap();
        assert_eq!(a.code, AckCode::AR);
        assert_eq!(a.control_id, "");
        assert!(a.text.unwrap().starts_with("ERR|"));
    }

    #[test]
    fn odd_answers_are_errors_or_other_codes() {
        assert_eq!(parse(b"HELLO"), Err(AckError::NoMsh));
        assert_eq!(parse(b"MSH|^~\\&|A\rPID|1\r"), Err(AckError::NoMsa));
        assert_eq!(parse(b"MSH|^~\\&\rMSA|ZZ|1").unwrap().code, AckCode::Other("ZZ".into()));
        assert_eq!(parse(b""), Err(AckError::NoMsh));
    }
}
