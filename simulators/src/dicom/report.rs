//! What a send run measured: counts, throughput (instances/s and MB/s of data set bytes,
//! MB = 10⁶ bytes) and request latency, as a table or JSON.

use std::fmt;

use serde::Serialize;

use crate::hl7::latency::LatencySummary;

/// The result of one `medbus-sim dicom send`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SendReport {
    /// host:port of the SCP.
    pub target: String,
    /// Called AE title.
    pub called_ae: String,
    /// Calling AE title.
    pub calling_ae: String,
    /// Associations in parallel.
    pub associations: usize,
    /// Modality code (CT, MR…).
    pub modality: String,
    /// Transfer syntax UID of the data sets.
    pub transfer_syntax: String,
    /// Bytes of Pixel Data per instance.
    pub pixel_bytes: u64,
    /// Instances the run was asked to send.
    pub planned: u64,
    /// C-STORE requests sent (answered or not).
    pub sent: u64,
    /// Answered with success or a warning status: stored.
    pub succeeded: u64,
    /// Of those, answered with a warning (0xB000, 0xB006, 0xB007, 0x0107, 0x0116).
    pub warnings: u64,
    /// Answered with a failure status, or never answered (timeout, connection lost).
    pub failed: u64,
    /// Never sent: their association could not be opened or died, or the run hit its time limit.
    pub unsent: u64,
    /// Associations that could not be established.
    pub associations_failed: u64,
    /// The first few failures, each with the instance or association it concerns.
    pub failures: Vec<String>,
    /// Data set bytes of the stored instances (what MB/s counts; command sets and PDU
    /// headers excluded).
    pub payload_bytes: u64,
    /// From the first connection attempt to the last release.
    pub elapsed_s: f64,
    /// Stored instances per second of `elapsed_s`.
    pub instances_per_s: f64,
    /// Stored data set megabytes (10⁶ bytes) per second of `elapsed_s`.
    pub mb_per_s: f64,
    /// The SCP's maximum PDU length (the data set fragment size), from the first association.
    pub peer_max_pdu: Option<u32>,
    /// Thread time spent generating and encoding instances (overlaps sending; when it nears
    /// `elapsed_s × associations` the generator, not the SCP, is the bottleneck).
    pub generate_s: f64,
    /// C-STORE latency, from the first byte of the request to the whole response, of every
    /// answered request.
    pub latency: LatencySummary,
}

/// How many failure descriptions a report keeps.
pub const MAX_FAILURES: usize = 8;

impl SendReport {
    /// True when every planned instance was stored.
    pub fn complete(&self) -> bool {
        self.succeeded == self.planned && self.failed == 0 && self.unsent == 0
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dicom C-STORE {} → {} ({} → {}), {} association(s), {} {} KiB pixel data, {}",
            self.modality,
            self.target,
            self.calling_ae,
            self.called_ae,
            self.associations,
            self.planned,
            self.pixel_bytes / 1024,
            self.transfer_syntax
        )?;
        writeln!(
            f,
            "instances: {} sent, {} stored ({} with warnings), {} failed, {} unsent",
            self.sent, self.succeeded, self.warnings, self.failed, self.unsent
        )?;
        writeln!(
            f,
            "throughput: {:.1} instances/s, {:.1} MB/s ({:.1} MB of data sets in {:.3} s; peer max PDU {})",
            self.instances_per_s,
            self.mb_per_s,
            self.payload_bytes as f64 / 1e6,
            self.elapsed_s,
            self.peer_max_pdu.map_or("-".to_string(), |p| p.to_string())
        )?;
        let l = &self.latency;
        writeln!(
            f,
            "latency ms: mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  ({} samples)",
            l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.count
        )?;
        writeln!(f, "generation: {:.2} s of thread time", self.generate_s)?;
        if self.associations_failed > 0 {
            writeln!(f, "associations failed: {}", self.associations_failed)?;
        }
        for failure in &self.failures {
            writeln!(f, "failure: {failure}")?;
        }
        Ok(())
    }
}
