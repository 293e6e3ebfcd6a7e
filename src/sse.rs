//! `GET /api/v1/events?subject=medbus.events.patient.>`: canonical events as
//! Server-Sent Events, for consumers that cannot run a NATS client.
//!
//! Each event is `id:` its backbone sequence, `event:` its kind and `data:`
//! the same JSON a webhook subscriber receives. A client that reconnects with
//! `Last-Event-ID` (or `?after=<id>`) resumes right after that event; without
//! a position the stream starts with the next event, and `?after=0` replays
//! every event the backbone still holds. A comment every 15 s keeps proxies
//! from closing an idle stream. Streams end at shutdown; clients reconnect.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::{Stream, StreamExt};
use medbus_bus::backbone::{StoredMessage, Tail};
use medbus_bus::config::subscriptions::check_pattern;
use medbus_bus::envelope::header;
use serde_json::json;

use crate::http::AppState;

/// The query of `/api/v1/events`.
#[derive(Debug, serde::Deserialize)]
pub struct EventsQuery {
    /// Subject pattern under `medbus.events.>`; default every event.
    subject: Option<String>,
    /// Resume after this event id (as `Last-Event-ID`, which wins when both are given).
    after: Option<String>,
}

/// Events fetched from the backbone at once.
const BATCH: usize = 64;

/// Opens the stream, or answers 400 (bad subject or position) or 503 (backbone unavailable).
pub async fn events(State(s): State<AppState>, Query(q): Query<EventsQuery>, headers: HeaderMap) -> Response {
    let subject = q.subject.unwrap_or_else(|| "medbus.events.>".into());
    if let Err(e) = check_pattern(&subject) {
        return bad_request(format!("subject: {e}"));
    }
    let given = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("?").to_string())
        .or(q.after);
    let after = match given.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return bad_request(format!(
                    "Last-Event-ID / after must be an event id (a number), got {text:?}"
                ))
            }
        },
    };
    let tail = match s.backbone.open_tail(&subject, after).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot open an event stream");
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": e.to_string() }))).into_response();
        }
    };
    tracing::debug!(subject = %subject, ?after, "event stream opened");
    // Ends at shutdown: the server waits for open connections, and this one never finishes by itself.
    let events = stream(tail).take_until(s.shutdown.cancelled_owned());
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
        .into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// The events of `tail`, one SSE event each; ends when the backbone fails (the client reconnects with its last id).
fn stream(tail: Box<dyn Tail>) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((tail, VecDeque::new()), |(mut tail, mut ready)| async move {
        loop {
            if let Some(m) = ready.pop_front() {
                if let Some(ev) = to_event(&m) {
                    return Some((Ok(ev), (tail, ready)));
                }
                continue;
            }
            match tail.next(BATCH, Duration::from_secs(30)).await {
                Ok(batch) => ready.extend(batch),
                Err(e) => {
                    tracing::warn!(error = %e, "event stream ended: backbone read failed");
                    return None;
                }
            }
        }
    })
}

/// The SSE event of one stored event; None (skipped, logged) for anything that is not one.
fn to_event(m: &StoredMessage) -> Option<Event> {
    match medbus_adapters::webhook::body::event_json(&m.subject, &m.headers, &m.payload) {
        Ok((json, _)) => {
            let kind = m.headers.get(header::KIND).map_or("event", String::as_str);
            Some(
                Event::default()
                    .id(m.sequence.to_string())
                    .event(kind)
                    .data(String::from_utf8_lossy(&json)),
            )
        }
        Err(why) => {
            tracing::debug!(sequence = m.sequence, subject = %m.subject, reason = %why, "not sent on the event stream");
            None
        }
    }
}
