//! What `medbus route test` shows, without sending anything: for each message
//! in a file, the routes that take it, the message after each route's
//! transforms, and the canonical events it would produce.

use medbus_adapters::hl7::canonical::{map_message, MapError};
use medbus_adapters::hl7::parser::{Batch, Message};

use super::route::{Route, Routes};
use super::transform::TransformError;

/// MLLP start and end bytes.
const VT: u8 = 0x0b;
const FS: u8 = 0x1c;

/// The messages of a file: MLLP frames, or CR/LF-separated messages and
/// FHS/BHS batches. An `Err` is a part that could not be split into messages.
pub fn split_messages(input: &[u8]) -> Vec<Result<&[u8], String>> {
    let mut out = Vec::new();
    if input.contains(&VT) {
        for frame in input.split(|&b| b == VT).skip(1) {
            let end = frame.iter().position(|&b| b == FS).unwrap_or(frame.len());
            split_batch(frame.get(..end).unwrap_or_default(), &mut out);
        }
    } else {
        split_batch(input, &mut out);
    }
    out
}

fn split_batch<'a>(input: &'a [u8], out: &mut Vec<Result<&'a [u8], String>>) {
    match Batch::split(input) {
        Ok(batch) => out.extend(batch.messages().map(Ok)),
        Err(e) => out.push(Err(e.to_string())),
    }
}

/// One canonical event as the router would publish it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPreview {
    /// The subject, e.g. `medbus.events.patient.registered`.
    pub subject: String,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// The events a message would produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Events {
    /// Mapped: these events.
    Mapped(Vec<EventPreview>),
    /// Not mapped, and why (no mapping for the type yet, or the mapping's complaint).
    None(String),
}

impl Events {
    /// As JSON: `{"events": [{"subject", "body"}…]}` or `{"no_events": "why"}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Events::Mapped(list) => serde_json::json!({
                "events": list.iter().map(|e| serde_json::json!({"subject": e.subject, "body": e.body})).collect::<Vec<_>>()
            }),
            Events::None(why) => serde_json::json!({ "no_events": why }),
        }
    }
}

/// What one route did with a message.
#[derive(Debug)]
pub struct RouteRun<'r> {
    /// The route.
    pub route: &'r Route,
    /// One line per change its steps made.
    pub notes: Vec<String>,
    /// The message after its transforms, and the events from it; or why it could not transform.
    pub result: Result<(Vec<u8>, Events), TransformError>,
}

/// Runs `raw` through the routes: those of `channel` (every route when `None`).
/// `Err` when the message does not parse.
pub fn run_message<'r>(routes: &'r Routes, raw: &[u8], channel: Option<&str>) -> Result<Vec<RouteRun<'r>>, String> {
    let msg = Message::parse(raw).map_err(|e| e.to_string())?;
    let taken = match channel {
        Some(c) => routes.select(&msg, c),
        None => routes.select_any_channel(&msg),
    };
    Ok(taken
        .into_iter()
        .map(|route| {
            let (result, notes) = route.apply_explained(&msg);
            let result = result.map(|bytes| {
                let events = events(&bytes);
                (bytes, events)
            });
            RouteRun { route, notes, result }
        })
        .collect())
}

/// The canonical events of a (transformed) message.
pub fn events(raw: &[u8]) -> Events {
    let msg = match Message::parse(raw) {
        Ok(m) => m,
        Err(e) => return Events::None(format!("does not parse: {e}")),
    };
    match map_message(&msg) {
        Ok(list) => {
            let mut out = Vec::with_capacity(list.len());
            for e in list {
                match e.to_json() {
                    Ok(body) => out.push(EventPreview {
                        subject: e.subject().to_string(),
                        body,
                    }),
                    Err(err) => return Events::None(format!("cannot serialise {}: {err}", e.subject())),
                }
            }
            Events::Mapped(out)
        }
        Err(e @ (MapError::NotMapped { .. } | MapError::NotAdt { .. })) => Events::None(format!("{e}")),
        Err(e) => Events::None(format!("cannot map: {e}")),
    }
}

/// A message for reading: one segment per line.
pub fn segments_on_lines(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_split_into_messages() {
        let two = b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5\rPID|1\rMSH|^~\\&|A||||||ADT^A08|2|P|2.5\nPID|1\n";
        assert_eq!(split_messages(two).len(), 2);
        let mut framed = vec![VT];
        framed.extend_from_slice(b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5\rPID|1\r");
        framed.extend_from_slice(&[FS, b'\r', b'\n', VT]);
        framed.extend_from_slice(b"MSH|^~\\&|A||||||ADT^A01|2|P|2.5\r");
        framed.extend_from_slice(&[FS, b'\r']);
        let parts = split_messages(&framed);
        assert_eq!(parts.len(), 2);
        assert!(parts[1].as_ref().unwrap().starts_with(b"MSH"));
        assert!(split_messages(b"PID|1\r")[0].is_err());
    }
}
