//! A segment builder that places values by field number, so that sparse segments (PV1-44,
//! FT1-25) read like the standard's field tables instead of runs of empty `|`.

/// One segment under construction, with the standard delimiters `|^~\&`.
#[derive(Debug, Clone)]
pub struct Seg {
    name: &'static str,
    fields: Vec<String>,
}

impl Seg {
    /// An empty segment named `name` (`PID`, `OBX`, ...). Not for MSH: see [`msh`].
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            fields: Vec::new(),
        }
    }

    /// Sets field `n` (1-based, as in `PID-3`) to `value`; fields skipped stay empty.
    pub fn set(mut self, n: usize, value: impl Into<String>) -> Self {
        if self.fields.len() < n {
            self.fields.resize(n, String::new());
        }
        self.fields[n - 1] = value.into();
        self
    }

    /// The segment's text, without a terminator.
    pub fn build(self) -> String {
        let mut s = String::from(self.name);
        let used = self.fields.iter().rposition(|f| !f.is_empty()).map_or(0, |i| i + 1);
        for f in &self.fields[..used] {
            s.push('|');
            s.push_str(f);
        }
        s
    }
}

/// The header fields that change from message to message.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    /// MSH-3 sending application.
    pub sending_app: &'a str,
    /// MSH-7 in HL7 DTM form.
    pub timestamp: &'a str,
    /// MSH-9: message code, trigger event and structure (`ADT^A01^ADT_A01`).
    pub message_type: &'a str,
    /// MSH-10.
    pub control_id: &'a str,
}

/// Sending facility (MSH-4) and the assigning authority of our identifiers.
pub const FACILITY: &str = "GENERAL_HOSP";
/// Receiving application and facility (MSH-5, MSH-6).
pub const RECEIVER: (&str, &str) = ("MEDBUS", "MEDBUS_GH");

/// The MSH segment for HL7 v2.5, production processing, original-mode acknowledgement.
pub fn msh(h: &Header<'_>) -> String {
    // MSH-1 is the field separator itself, so MSH-2 is the first thing after "MSH|".
    format!(
        "MSH|^~\\&|{}|{}|{}|{}|{}||{}|{}|P|2.5",
        h.sending_app, FACILITY, RECEIVER.0, RECEIVER.1, h.timestamp, h.message_type, h.control_id
    )
}

/// An extended composite name with the provider's id (XCN): `id^FAMILY^GIVEN^^^DR^^^NPI`.
pub fn xcn(doc: (&str, &str, &str)) -> String {
    format!("{}^{}^{}^^^DR^^^NPI", doc.0, doc.1, doc.2)
}

/// A price (CP, as in FT1-11/12): its first component is MO, whose quantity
/// and denomination are sub-components: `123.45&USD`. (`123.45^USD` would put
/// the currency in CP.2, the price type.)
pub fn money(cents: u64) -> String {
    format!("{}.{:02}&USD", cents / 100, cents % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_at_their_numbers_and_trailing_empties_are_dropped() {
        let s = Seg::new("PV1").set(2, "I").set(19, "V1").set(25, "").build();
        assert_eq!(s, format!("PV1||I{}|V1", "|".repeat(16)));
        assert_eq!(s.split('|').nth(19), Some("V1"));
    }

    #[test]
    fn a_price_keeps_its_currency_in_the_money_component() {
        assert_eq!(money(7900), "79.00&USD");
        assert_eq!(money(5), "0.05&USD");
    }

    #[test]
    fn msh_has_type_at_9_and_control_id_at_10() {
        let h = Header {
            sending_app: "REG",
            timestamp: "20240301080000",
            message_type: "ADT^A01^ADT_A01",
            control_id: "X1",
        };
        let m = msh(&h);
        // Counting by split: index n is MSH-(n+1) because MSH-1 is the separator itself.
        let f: Vec<&str> = m.split('|').collect();
        assert_eq!((f[8], f[9], f[11]), ("ADT^A01^ADT_A01", "X1", "2.5"));
    }
}
