//! medbus-sim: the command line of the simulators.
//!
//! ```text
//! medbus-sim hl7 --addr 127.0.0.1:2575 --connections 8 --count 10000 [--rate 200] [--mix adt|full]
//!                [--malformed 0.02] [--resend 0.01] [--seed 1] [--id-prefix X] [--timeout 5s]
//!                [--duration 60s] [--json] [--acked-file F]
//! medbus-sim hl7 generate --count N --out FILE [--framing mllp|cr] [--mix ..] [--seed ..]
//! medbus-sim fhir --url http://127.0.0.1:8080/fhir --clients 16 --count 20000 [--duration 120s] [--json]
//! medbus-sim dicom send --addr 127.0.0.1:11112 --called-ae MEDBUS --calling-ae MODSIM --associations 4
//!                       --instances 1000 --pixel-bytes 524288 --modality CT --seed 1 [--json]
//! medbus-sim dicom generate --out DIR [same generation options]
//! medbus-sim dicom echo --addr 127.0.0.1:11112 [--called-ae ..] [--calling-ae ..]
//! ```

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use medbus_simulators::dicom;
use medbus_simulators::dicom::generate::{GenerateConfig, Syntax};
use medbus_simulators::dicom::modality::Modality;
use medbus_simulators::dicom::scu::ScuConfig;
use medbus_simulators::hl7::corpus::{self, Framing};
use medbus_simulators::hl7::generate::{GenConfig, Generator, Mix};
use medbus_simulators::hl7::report;
use medbus_simulators::hl7::sender::{self, SenderConfig};
use tokio_util::sync::CancellationToken;

/// Simulated hospital systems for medbus: sends realistic traffic and reports how it was answered.
#[derive(Parser)]
#[command(name = "medbus-sim", version)]
struct Cli {
    #[command(subcommand)]
    protocol: Protocol,
}

#[derive(Subcommand)]
enum Protocol {
    /// HL7 v2 over MLLP: send generated messages to a listener (the default), or write them to a file.
    ///
    /// Sending exits 0 when every message got the answer its kind expects (AA/CA for valid
    /// messages and resends, with MSA-2 = MSH-10; anything but AA/CA for malformed ones), 1
    /// when not, 2 on bad arguments.
    Hl7(Box<Hl7Args>),
    /// FHIR R4 over HTTP: N clients POST distinct Patients and the run is reported
    /// (requests/s, latency percentiles). Exits 1 when any request was not answered 201.
    Fhir(FhirArgs),
    /// DICOM: a modality sending generated instances with C-STORE over N associations, writing
    /// them as .dcm files, or checking an SCP with C-ECHO.
    ///
    /// `send` and `echo` exit 0 when every request succeeded, 1 when not, 2 on bad arguments.
    Dicom {
        #[command(subcommand)]
        action: DicomAction,
    },
}

#[derive(Subcommand)]
enum DicomAction {
    /// Send generated instances to a storage SCP and report instances/s, MB/s and latency.
    Send(DicomSendArgs),
    /// Write the generated instances as Part-10 files `IMG<n>.dcm` into a directory (for
    /// dcmtk storescu, Orthanc…): the same arguments give the same files as `send` sends.
    Generate(DicomGenerateArgs),
    /// One C-ECHO on a new association.
    Echo(DicomEchoArgs),
}

/// What to generate: the same options give the same UIDs and bytes.
#[derive(Args, Clone)]
struct DicomGenArgs {
    /// Distinct patients.
    #[arg(long, default_value_t = 10)]
    patients: u64,
    /// Studies per patient.
    #[arg(long, default_value_t = 1)]
    studies_per_patient: u64,
    /// Series per study.
    #[arg(long, default_value_t = 2)]
    series_per_study: u64,
    /// Instances in all, spread over the series (at least one per series).
    #[arg(long, default_value_t = 100)]
    instances: u64,
    /// CT, MR, CR or US (SOP class, pixel format, realistic tags).
    #[arg(long, value_enum, default_value_t = Modality::Ct)]
    modality: Modality,
    /// Bytes of Pixel Data per instance (rows × columns chosen to match; 524288 = 512 × 512 × 16 bit).
    #[arg(long, default_value_t = 524_288)]
    pixel_bytes: u64,
    /// Names the data set: change it to get new UIDs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Accession Number prefix (default `S<seed>-`).
    #[arg(long)]
    accession_prefix: Option<String>,
    /// Transfer syntax of the files and of the C-STORE data sets.
    #[arg(long, value_enum, default_value_t = Syntax::Explicit)]
    transfer_syntax: Syntax,
}

impl DicomGenArgs {
    fn generator(&self) -> anyhow::Result<dicom::generate::Generator> {
        Ok(dicom::generate::Generator::new(GenerateConfig {
            patients: self.patients,
            studies_per_patient: self.studies_per_patient,
            series_per_study: self.series_per_study,
            instances: self.instances,
            modality: self.modality,
            pixel_bytes: self.pixel_bytes,
            seed: self.seed,
            accession_prefix: self.accession_prefix.clone(),
            syntax: self.transfer_syntax,
        })?)
    }
}

/// Where and as whom to associate.
#[derive(Args, Clone)]
struct DicomPeerArgs {
    /// The SCP (loopback only).
    #[arg(long, default_value = "127.0.0.1:11112")]
    addr: String,
    /// The SCP's AE title.
    #[arg(long, default_value = "ANY-SCP")]
    called_ae: String,
    /// Our AE title.
    #[arg(long, default_value = "MODSIM")]
    calling_ae: String,
    /// Limit on connecting and negotiating an association (an SCP serving one association at
    /// a time keeps the others waiting that long).
    #[arg(long, default_value = "30s")]
    connect_timeout: humantime::Duration,
    /// Limit on each request (sending it and reading its response).
    #[arg(long, default_value = "30s")]
    timeout: humantime::Duration,
}

impl DicomPeerArgs {
    fn scu(&self) -> anyhow::Result<ScuConfig> {
        for (name, ae) in [("--called-ae", &self.called_ae), ("--calling-ae", &self.calling_ae)] {
            if ae.trim().is_empty() || ae.len() > 16 || !ae.is_ascii() || ae.contains('\\') {
                bail!("{name} {ae:?}: an AE title is 1 to 16 ASCII characters without backslash");
            }
        }
        Ok(ScuConfig {
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            connect_timeout: self.connect_timeout.into(),
            response_timeout: self.timeout.into(),
            ..ScuConfig::new(loopback(&self.addr)?)
        })
    }
}

#[derive(Args)]
struct DicomSendArgs {
    #[command(flatten)]
    gen: DicomGenArgs,
    #[command(flatten)]
    peer: DicomPeerArgs,
    /// Associations in parallel; each sends its contiguous share of the instances over one association.
    #[arg(long, default_value_t = 1)]
    associations: usize,
    /// Stop sending after this long whatever is left (reported unsent).
    #[arg(long, default_value = "600s")]
    duration: humantime::Duration,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DicomGenerateArgs {
    #[command(flatten)]
    gen: DicomGenArgs,
    /// The directory to write (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct DicomEchoArgs {
    #[command(flatten)]
    peer: DicomPeerArgs,
}

/// `medbus-sim fhir`.
#[derive(Args)]
struct FhirArgs {
    /// Base URL of the FHIR server (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080/fhir")]
    url: String,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Patients to create.
    #[arg(long, default_value_t = 20_000)]
    count: u64,
    /// Stop after this long even when not all were sent.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    duration: std::time::Duration,
    /// Identifier prefix (change it between runs against one server).
    #[arg(long, default_value = "LOAD-")]
    id_prefix: String,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Hl7Args {
    #[command(subcommand)]
    action: Option<Hl7Action>,
    #[command(flatten)]
    send: SendArgs,
}

#[derive(Subcommand)]
enum Hl7Action {
    /// Send messages over MLLP and report (what `medbus-sim hl7` does without a subcommand).
    Send(SendArgs),
    /// Write generated messages to a file (MLLP-framed, or CR-separated for `mllp_send --loose`).
    Generate(GenerateArgs),
}

/// What to generate.
#[derive(Args, Clone)]
struct GenArgs {
    /// How many messages.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Message types: adt (registration feed) or full (ADT, ORM, ORU, DFT, SIU).
    #[arg(long, value_enum, default_value_t = Mix::Adt)]
    mix: Mix,
    /// Share of malformed messages (no MSH, bad delimiters, truncated, binary junk), 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    malformed: f64,
    /// Share of exact resends of recent messages (same MSH-10), 0 to 1.
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    resend: f64,
    /// PRNG seed: the same options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// MSH-10 prefix (default `SIM<seed>-`); change it so a run is not taken for resends of another.
    #[arg(long)]
    id_prefix: Option<String>,
}

#[derive(Args, Clone)]
struct SendArgs {
    #[command(flatten)]
    gen: GenArgs,
    /// The MLLP listener (loopback only).
    #[arg(long, default_value = "127.0.0.1:2575")]
    addr: String,
    /// Concurrent connections; each patient's messages go over one of them, in order.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Target total rate in messages per second (default: as fast as ACKs come back).
    #[arg(long)]
    rate: Option<f64>,
    /// How long to wait for each ACK before reconnecting and sending again.
    #[arg(long, default_value = "5s")]
    timeout: humantime::Duration,
    /// How long to wait for a TCP connection.
    #[arg(long, default_value = "2s")]
    connect_timeout: humantime::Duration,
    /// Stop after this long whatever is left.
    #[arg(long, default_value = "60s")]
    duration: humantime::Duration,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write the MSH-10 of every message answered AA/CA to this file, one per line.
    #[arg(long)]
    acked_file: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    gen: GenArgs,
    /// The file to write (`-` for standard output).
    #[arg(long)]
    out: PathBuf,
    /// mllp: `<VT>…<FS><CR>` per message; cr: CR-terminated segments, LF between messages.
    #[arg(long, value_enum, default_value_t = Framing::Mllp)]
    framing: Framing,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a share between 0 and 1")),
    }
}

impl GenArgs {
    fn config(&self) -> anyhow::Result<GenConfig> {
        if self.malformed + self.resend > 1.0 {
            bail!("--malformed and --resend add up to more than 1");
        }
        Ok(GenConfig {
            seed: self.seed,
            mix: self.mix,
            malformed: self.malformed,
            resend: self.resend,
            id_prefix: self.id_prefix.clone(),
            ..GenConfig::default()
        })
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let cli = Cli::parse();
    let result = match cli.protocol {
        Protocol::Hl7(args) => match args.action {
            None => send_hl7(args.send),
            Some(Hl7Action::Send(a)) => send_hl7(a),
            Some(Hl7Action::Generate(a)) => generate_hl7(a).map(|()| true),
        },
        Protocol::Fhir(a) => send_fhir(a),
        Protocol::Dicom { action } => match action {
            DicomAction::Send(a) => send_dicom(a),
            DicomAction::Generate(a) => generate_dicom(a).map(|()| true),
            DicomAction::Echo(a) => echo_dicom(a),
        },
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("medbus-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the FHIR load and prints its report.
fn send_fhir(a: FhirArgs) -> anyhow::Result<bool> {
    let host = a
        .url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("--url {:?} must be http://host:port/…", a.url))?;
    loopback(host)?;
    let cfg = medbus_simulators::fhir::load::LoadConfig {
        base: a.url.clone(),
        clients: a.clients,
        count: a.count,
        duration: a.duration,
        id_prefix: a.id_prefix.clone(),
        timeout: a.timeout,
    };
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let report = runtime.block_on(medbus_simulators::fhir::load::run(cfg))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let l = &report.latency;
        println!(
            "fhir POST Patient: {} created, {} failed in {:.2} s = {:.0} req/s with {} clients",
            report.created, report.failed, report.elapsed_s, report.requests_per_s, a.clients
        );
        println!(
            "latency ms: mean {:.2}  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            l.mean_ms, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        );
        for f in &report.failures {
            println!("failure: {f}");
        }
    }
    Ok(report.failed == 0)
}

/// The first loopback address `addr` resolves to.
fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let all: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr:?} (expected host:port)"))?
        .collect();
    match all.iter().find(|a| a.ip().is_loopback()) {
        Some(a) => Ok(*a),
        None => bail!("{addr} is not a loopback address: the simulator only sends to this machine"),
    }
}

fn send_hl7(a: SendArgs) -> anyhow::Result<bool> {
    let gen = a.gen.config()?;
    let config = SenderConfig {
        connections: a.connections,
        count: a.gen.count,
        rate: a.rate,
        ack_timeout: a.timeout.into(),
        connect_timeout: a.connect_timeout.into(),
        max_duration: a.duration.into(),
        ..SenderConfig::new(loopback(&a.addr)?)
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_ctrl_c = cancel.clone();
        // Ctrl-C ends the run early but still prints what was done.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_ctrl_c.cancel();
            }
        });
        sender::run(&config, Generator::new(gen), cancel).await
    })?;
    if a.json {
        println!("{}", result.report.to_json());
    } else {
        print!("{}", result.report);
    }
    if let Some(path) = &a.acked_file {
        report::write_acked(path, &result.acked).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(result.report.complete)
}

fn generate_hl7(a: GenerateArgs) -> anyhow::Result<()> {
    let messages = Generator::new(a.gen.config()?).take(usize::try_from(a.gen.count).unwrap_or(usize::MAX));
    let (bytes, target) = if a.out.as_os_str() == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        (
            corpus::write(&mut out, messages, a.framing)?,
            "standard output".to_string(),
        )
    } else {
        let file = std::fs::File::create(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let n = corpus::write(&mut out, messages, a.framing)
            .with_context(|| format!("cannot write {}", a.out.display()))?;
        out.flush()?;
        (n, a.out.display().to_string())
    };
    eprintln!("wrote {} messages ({bytes} bytes) to {target}", a.gen.count);
    Ok(())
}

fn send_dicom(a: DicomSendArgs) -> anyhow::Result<bool> {
    if a.associations == 0 {
        bail!("--associations must be at least 1");
    }
    let gen = std::sync::Arc::new(a.gen.generator()?);
    let config = dicom::send::SendConfig {
        scu: a.peer.scu()?,
        associations: a.associations,
        max_duration: a.duration.into(),
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    let report = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let on_ctrl_c = cancel.clone();
        // Ctrl-C ends the run early but still prints what was done.
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                on_ctrl_c.cancel();
            }
        });
        dicom::send::run(&config, gen, cancel).await
    });
    if a.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(report.complete())
}

fn generate_dicom(a: DicomGenerateArgs) -> anyhow::Result<()> {
    let gen = a.gen.generator()?;
    let w = dicom::part10::write_dir(&gen, &a.out)?;
    eprintln!(
        "wrote {} instances ({} bytes, {}×{} pixels) to {}",
        w.files,
        w.bytes,
        gen.layout().rows,
        gen.layout().columns,
        a.out.display()
    );
    Ok(())
}

fn echo_dicom(a: DicomEchoArgs) -> anyhow::Result<bool> {
    let scu = a.peer.scu()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the tokio runtime")?;
    match runtime.block_on(dicom::scu::echo(&scu)) {
        Ok((status, rtt)) => {
            println!(
                "C-ECHO {} ({} → {}): status {} in {:.2} ms",
                scu.addr,
                scu.calling_ae,
                scu.called_ae,
                dicom::scu::describe(status),
                rtt.as_secs_f64() * 1e3
            );
            Ok(status == 0)
        }
        Err(e) => {
            println!("C-ECHO {}: {e}", scu.addr);
            Ok(false)
        }
    }
}
