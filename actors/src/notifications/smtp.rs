//! E-mail delivery over SMTP with lettre (tokio, rustls with ring, as the
//! rest of medbus): one plain-text message per attempt, to a relay.
//!
//! The Message-ID is derived from the notification id, so a mail system that
//! sees a repeat (after a lost answer to DATA) can tell.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use medbus_bus::config::notifications::EmailChannel;

use super::record::{acknowledge_path, NotificationRecord};
use super::Failure;

/// The subject and body of the e-mail for `rec`.
pub fn compose(rec: &NotificationRecord, base: &str) -> (String, String) {
    let tag = if rec.escalation_of.is_some() {
        "[medbus ESCALATION]"
    } else {
        "[medbus]"
    };
    let subject = format!("{tag} {}", rec.summary);
    let mut body = format!(
        "{}\n\nRule: {}\nEvent: {} {}\n",
        rec.summary, rec.rule, rec.trigger, rec.event_id
    );
    if let Some(p) = &rec.patient_key {
        body.push_str(&format!("Patient: {p}\n"));
    }
    body.push_str(&format!(
        "Notification: {}\n\nAcknowledge: {}{}\n",
        rec.id,
        base.trim_end_matches('/'),
        acknowledge_path(rec.id)
    ));
    (subject, body)
}

/// One attempt: sends the e-mail for `rec` to `to` through the channel's relay.
pub async fn send(ch: &EmailChannel, rec: &NotificationRecord, to: &str, base: &str) -> Result<(), Failure> {
    let fatal = |message: String| Failure {
        message,
        retryable: false,
    };
    let from: Mailbox = ch
        .from
        .parse()
        .map_err(|e| fatal(format!("from address {:?}: {e}", ch.from)))?;
    let to: Mailbox = to.parse().map_err(|e| fatal(format!("address {to:?}: {e}")))?;
    let (subject, text) = compose(rec, base);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}@medbus>", rec.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| fatal(format!("cannot build the e-mail: {e}")))?;
    let transport = transport(ch)?;
    match transport.send(message).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure {
            // A permanent (5xx) answer will not change; anything else may.
            retryable: !e.is_permanent(),
            message: format!("SMTP {}: {e}", ch.smtp),
        }),
    }
}

/// A transport to the relay: plain, or STARTTLS required.
fn transport(ch: &EmailChannel) -> Result<AsyncSmtpTransport<Tokio1Executor>, Failure> {
    let fatal = |message: String| Failure {
        message,
        retryable: false,
    };
    let (host, port) = ch
        .smtp
        .rsplit_once(':')
        .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h, p)))
        .ok_or_else(|| fatal(format!("smtp must be host:port, got {:?}", ch.smtp)))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .timeout(Some(ch.timeout.max(Duration::from_millis(100))));
    if ch.starttls {
        let params = TlsParameters::new(host.to_string()).map_err(|e| fatal(format!("TLS for {host}: {e}")))?;
        b = b.tls(Tls::Required(params));
    }
    Ok(b.build())
}
