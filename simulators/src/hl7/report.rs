//! What a run did: counts of answers and failures, throughput and ACK latency, printed as a
//! table or JSON, plus the list of control ids that were accepted (for crash tests that must
//! find each of them in the store exactly once).

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::latency::LatencySummary;

/// Counters kept by each connection and added up at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Distinct messages sent at least once.
    pub sent: u64,
    /// Well-formed messages sent (first sends, not resends).
    pub valid_sent: u64,
    /// Exact resends (same MSH-10) generated on purpose.
    pub resends_sent: u64,
    /// Malformed messages sent.
    pub malformed_sent: u64,
    /// Sends of a message again after a timeout or a lost connection.
    pub retries: u64,
    /// Answers by MSA-1.
    pub aa: u64,
    /// MSA-1 AE.
    pub ae: u64,
    /// MSA-1 AR.
    pub ar: u64,
    /// MSA-1 CA.
    pub ca: u64,
    /// MSA-1 CE.
    pub ce: u64,
    /// MSA-1 CR.
    pub cr: u64,
    /// Any other MSA-1.
    pub other_code: u64,
    /// Answers that were not an ACK (no MSH or no MSA).
    pub unreadable: u64,
    /// ACKs to a valid message or resend whose MSA-2 was not its MSH-10.
    pub msa2_mismatches: u64,
    /// Valid messages and resends answered AA/CA with the right MSA-2: done.
    pub accepted: u64,
    /// Valid messages and resends answered with anything else (AE, AR, unreadable...).
    pub rejected_valid: u64,
    /// Malformed messages answered AE/AR/CE/CR, as they should be.
    pub malformed_rejected: u64,
    /// Malformed messages answered AA/CA: the receiver took bad input.
    pub malformed_accepted: u64,
    /// Malformed messages after which the connection closed or the ACK timed out.
    pub malformed_unanswered: u64,
    /// Waits for an ACK that ran past the ACK timeout.
    pub timeouts: u64,
    /// Connections lost while sending or waiting (closed by the peer, reset, framing error).
    pub connection_errors: u64,
    /// Connection attempts that failed.
    pub connect_failures: u64,
    /// Connections opened after the first one on the same connection slot.
    pub reconnects: u64,
    /// Valid messages and resends sent but never answered when the run ended.
    pub unacked: u64,
}

impl Counts {
    /// Adds `o` to `self`.
    pub fn add(&mut self, o: &Counts) {
        macro_rules! sum {
            ($($f:ident),*) => { $(self.$f += o.$f;)* };
        }
        sum!(
            sent,
            valid_sent,
            resends_sent,
            malformed_sent,
            retries,
            aa,
            ae,
            ar,
            ca,
            ce,
            cr,
            other_code,
            unreadable,
            msa2_mismatches,
            accepted,
            rejected_valid,
            malformed_rejected,
            malformed_accepted,
            malformed_unanswered,
            timeouts,
            connection_errors,
            connect_failures,
            reconnects,
            unacked
        );
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// host:port sent to.
    pub target: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Target rate in msg/s, or none for as fast as possible.
    pub rate: Option<f64>,
    /// Messages the run was asked to send.
    pub planned: u64,
    /// Planned messages never sent (the run hit its time limit or was interrupted).
    pub unsent: u64,
    /// Counters.
    pub counts: Counts,
    /// Wall time of the run in seconds.
    pub elapsed_s: f64,
    /// Messages finished (answered or given up) per second of wall time.
    pub throughput_msg_s: f64,
    /// Send-to-ACK latency of every answered send.
    pub latency: LatencySummary,
    /// Up to five distinct error texts from answers to valid messages (MSA-3 or ERR).
    pub sample_errors: Vec<String>,
    /// True when every planned message got the answer its kind expects.
    pub complete: bool,
}

impl Report {
    /// True when nothing went wrong: every valid message and resend accepted with the right
    /// MSA-2, no malformed one accepted, nothing left unsent or unanswered.
    pub fn all_as_expected(c: &Counts, unsent: u64) -> bool {
        unsent == 0
            && c.unacked == 0
            && c.msa2_mismatches == 0
            && c.rejected_valid == 0
            && c.malformed_accepted == 0
            && c.accepted == c.valid_sent + c.resends_sent
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain numbers and strings cannot fail; fall back to an empty object
        // rather than panic, should it ever.
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_string())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let rate = self.rate.map_or("max".to_string(), |r| format!("{r} msg/s"));
        let l = &self.latency;
        let rows: Vec<(&str, String)> = vec![
            ("target", self.target.clone()),
            ("connections", self.connections.to_string()),
            ("rate", rate),
            ("planned", self.planned.to_string()),
            (
                "sent",
                format!(
                    "{} (valid {}, resends {}, malformed {})",
                    c.sent, c.valid_sent, c.resends_sent, c.malformed_sent
                ),
            ),
            ("unsent", self.unsent.to_string()),
            ("retries", c.retries.to_string()),
            (
                "answers",
                format!(
                    "AA {}  AE {}  AR {}  CA {}  CE {}  CR {}  other {}  unreadable {}",
                    c.aa, c.ae, c.ar, c.ca, c.ce, c.cr, c.other_code, c.unreadable
                ),
            ),
            (
                "accepted",
                format!("{} of {}", c.accepted, c.valid_sent + c.resends_sent),
            ),
            ("rejected valid", c.rejected_valid.to_string()),
            ("MSA-2 mismatches", c.msa2_mismatches.to_string()),
            (
                "malformed",
                format!(
                    "rejected {}  accepted {}  unanswered {}",
                    c.malformed_rejected, c.malformed_accepted, c.malformed_unanswered
                ),
            ),
            ("unacked", c.unacked.to_string()),
            ("timeouts", c.timeouts.to_string()),
            (
                "connections lost",
                format!(
                    "{} (reconnects {}, failed connects {})",
                    c.connection_errors, c.reconnects, c.connect_failures
                ),
            ),
            ("elapsed", format!("{:.3} s", self.elapsed_s)),
            ("throughput", format!("{:.0} msg/s", self.throughput_msg_s)),
            (
                "ACK latency ms",
                format!(
                    "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (mean {:.3}, n {})",
                    l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.mean_ms, l.count
                ),
            ),
            ("complete", if self.complete { "yes" } else { "NO" }.to_string()),
        ];
        for (name, value) in rows {
            writeln!(f, "{name:<18} {value}")?;
        }
        for e in &self.sample_errors {
            writeln!(f, "{:<18} {e}", "error sample")?;
        }
        Ok(())
    }
}

/// Writes one control id per line (the ids answered AA/CA, for crash tests).
pub fn write_acked(path: &Path, ids: &[String]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for id in ids {
        writeln!(out, "{id}")?;
    }
    out.flush()
}
