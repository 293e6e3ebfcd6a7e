//! Typed reads of the MSH fields the listener, the ACK generator and the router
//! need. Each returns `None` when the field is absent or empty, since an empty
//! MSH field means "not sent".

use std::borrow::Cow;

use super::error::{Location, ParseError};
use super::message::Message;
use super::views::{Component, Field};

/// MSH-9: message code, trigger event and message structure (`ADT^A01^ADT_A01`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageType<'a> {
    /// MSH-9.1, e.g. `ADT`.
    pub code: Cow<'a, str>,
    /// MSH-9.2, e.g. `A01` (absent in an ACK from some senders).
    pub trigger: Option<Cow<'a, str>>,
    /// MSH-9.3, e.g. `ADT_A01` (2.3.1+).
    pub structure: Option<Cow<'a, str>>,
}

/// MSH-15 / MSH-16 values (HL7 table 0155): when the sender wants an accept
/// or application acknowledgment. Both absent means original mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckType {
    /// `AL`: always.
    Always,
    /// `NE`: never.
    Never,
    /// `ER`: only on error.
    Error,
    /// `SU`: only on success.
    Successful,
}

impl AckType {
    /// The table 0155 code, or `None` for anything else.
    pub fn from_code(code: &[u8]) -> Option<Self> {
        match code {
            b"AL" => Some(AckType::Always),
            b"NE" => Some(AckType::Never),
            b"ER" => Some(AckType::Error),
            b"SU" => Some(AckType::Successful),
            _ => None,
        }
    }

    /// The code as written in MSH-15/16.
    pub fn code(self) -> &'static str {
        match self {
            AckType::Always => "AL",
            AckType::Never => "NE",
            AckType::Error => "ER",
            AckType::Successful => "SU",
        }
    }
}

fn non_empty<T>(value: Option<T>, is_empty: impl Fn(&T) -> bool) -> Option<T> {
    value.filter(|v| !is_empty(v))
}

impl<'a> Message<'a> {
    fn msh_field(&self, n: usize) -> Option<Field<'a>> {
        non_empty(self.msh().field(n), Field::is_empty)
    }

    fn msh_component(&self, n: usize, c: usize) -> Option<Component<'a>> {
        non_empty(self.msh().field(n)?.component(c), Component::is_empty)
    }

    /// MSH-3, sending application (HD: namespace^universal id^type).
    pub fn sending_application(&self) -> Option<Field<'a>> {
        self.msh_field(3)
    }
    /// MSH-4, sending facility.
    pub fn sending_facility(&self) -> Option<Field<'a>> {
        self.msh_field(4)
    }
    /// MSH-5, receiving application.
    pub fn receiving_application(&self) -> Option<Field<'a>> {
        self.msh_field(5)
    }
    /// MSH-6, receiving facility.
    pub fn receiving_facility(&self) -> Option<Field<'a>> {
        self.msh_field(6)
    }
    /// MSH-7, date/time of message.
    pub fn timestamp(&self) -> Option<Field<'a>> {
        self.msh_field(7)
    }

    /// MSH-9: message code, trigger event, structure; `None` without a code.
    pub fn message_type(&self) -> Option<MessageType<'a>> {
        let field = self.msh().field(9)?;
        let text = |c: Option<Component<'a>>| non_empty(c, Component::is_empty).map(|c| c.text());
        Some(MessageType {
            code: text(field.component(1))?,
            trigger: text(field.component(2)),
            structure: text(field.component(3)),
        })
    }

    /// MSH-10, message control id: what MSA-2 echoes and the dedupe key.
    /// Raw bytes, so that two ids in a non-UTF-8 charset never collide.
    pub fn control_id(&self) -> Option<Field<'a>> {
        self.msh_field(10)
    }

    /// MSH-11.1, processing id (`P` production, `T` training, `D` debugging).
    pub fn processing_id(&self) -> Option<Cow<'a, str>> {
        self.msh_component(11, 1).map(|c| c.text())
    }

    /// MSH-12.1, version id (`2.3` … `2.8`).
    pub fn version(&self) -> Option<Cow<'a, str>> {
        self.msh_component(12, 1).map(|c| c.text())
    }

    /// MSH-15, accept acknowledgment type (`None` when absent or not a table 0155 code).
    pub fn accept_ack_type(&self) -> Option<AckType> {
        AckType::from_code(self.msh_field(15)?.raw())
    }

    /// MSH-16, application acknowledgment type.
    pub fn application_ack_type(&self) -> Option<AckType> {
        AckType::from_code(self.msh_field(16)?.raw())
    }

    /// True when the sender asks for enhanced-mode acknowledgments (MSH-15 or
    /// MSH-16 present), false for original mode.
    pub fn is_enhanced_mode(&self) -> bool {
        self.msh_field(15).is_some() || self.msh_field(16).is_some()
    }

    /// MSH-18, first character set (e.g. `UNICODE UTF-8`, `8859/1`); absent means ASCII.
    pub fn charset(&self) -> Option<Cow<'a, str>> {
        non_empty(self.msh_field(18).map(|f| f.first()), |r| r.is_empty()).map(|r| r.text())
    }

    /// Checks the header fields medbus needs to accept a message: MSH-9.1
    /// (routing), MSH-10 (ACK and dedupe) and MSH-12 (version). MSH-11 is
    /// required by the standard but not needed here, so it is not enforced.
    pub fn check_header(&self) -> Result<(), ParseError> {
        let msh = self.msh();
        for (n, present) in [
            (9, self.message_type().is_some()),
            (10, self.control_id().is_some()),
            (12, self.version().is_some()),
        ] {
            if !present {
                let offset = msh
                    .field(n)
                    .and_then(|f| self.offset_of(f.raw()))
                    .unwrap_or(msh.offset() + msh.raw().len());
                return Err(ParseError::MissingField {
                    location: Location::new(msh.raw(), 1, Some(n), offset),
                });
            }
        }
        Ok(())
    }
}
