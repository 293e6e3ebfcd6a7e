//! [`map_message`]: one entry point for every mapped HL7 v2 message type,
//! choosing the mapping by MSH-9.

use super::error::MapError;
use super::types::text;
use super::{appointments, charges, map_adt_with, orders, results, CanonicalEvent, Ctx, MapOptions};
use crate::hl7::parser::Message;

/// Maps any mapped message type with the default [`MapOptions`].
pub fn map_message(msg: &Message<'_>) -> Result<Vec<CanonicalEvent>, MapError> {
    map_message_with(msg, &MapOptions::default())
}

/// Maps a message to canonical events, in the order they must be applied:
/// ADT, ORM^O01, OML^O21, ORU^R01, SIU^S12–S15/S26, DFT^P03. Any other MSH-9
/// code is [`MapError::NotMapped`] (a router filters it); an unmapped
/// trigger of a mapped type is an error naming it.
pub fn map_message_with(msg: &Message<'_>, options: &MapOptions) -> Result<Vec<CanonicalEvent>, MapError> {
    let message_type = msg.message_type();
    let code = message_type
        .as_ref()
        .map(|t| t.code.trim().to_string())
        .unwrap_or_default();
    if code == "ADT" {
        return map_adt_with(msg, options);
    }
    let module: fn(&Ctx<'_, '_>) -> Result<Vec<CanonicalEvent>, MapError> = match code.as_str() {
        "ORM" | "OML" => orders::map,
        "ORU" => results::map,
        "SIU" => appointments::map,
        "DFT" => charges::map,
        _ => return Err(MapError::NotMapped { found: code }),
    };
    let trigger = message_type
        .and_then(|t| t.trigger.map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())
        .or_else(|| msg.get("EVN-1").ok().flatten().and_then(text))
        .ok_or(MapError::MissingTrigger)?;
    module(&Ctx::new(msg, options, &code, trigger))
}
