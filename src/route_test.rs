//! `medbus route test FILE.hl7 [--channel NAME]`: what the routes would do with
//! each message in a file, without sending anything: the routes that take it,
//! the message after each route's transforms, and the canonical events.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use medbus_adapters::hl7::parser::Message;
use medbus_routes::config::dry_run::{run_message, segments_on_lines, split_messages, Events, RouteRun};
use medbus_routes::config::{Route, Routes};

use super::{load_config, ConfigArgs};

/// Arguments of `medbus route test`.
#[derive(Debug, Clone, Args)]
pub struct RouteTestArgs {
    /// HL7 v2 file: MLLP frames, or messages one after another (CR, LF or CRLF; FHS/BHS batches allowed).
    pub file: PathBuf,
    /// The channel the messages arrive on; without it every route is tried, whatever its channels.
    #[arg(long)]
    pub channel: Option<String>,
}

/// Prints the dry run; exit 0, 1 when a message cannot be parsed, 2 when the configuration is invalid.
pub fn run(config: &ConfigArgs, args: &RouteTestArgs) -> ExitCode {
    let (c, file) = match load_config(config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let config_dir = medbus_routes::config::config_dir(file.as_deref());
    let routes = match medbus_routes::config::load(&c, &config_dir) {
        Ok(r) => r,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(2);
        }
    };
    if let Some(ch) = &args.channel {
        if !c.channels.contains_key(ch) {
            let names: Vec<&str> = c.channels.keys().map(String::as_str).collect();
            eprintln!(
                "no channel {ch:?} in the configuration (channels: {})",
                names.join(", ")
            );
            return ExitCode::from(2);
        }
    }
    let input = match std::fs::read(&args.file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("cannot read {}: {e}", args.file.display());
            return ExitCode::from(1);
        }
    };
    let dir = medbus_routes::config::routes_dir(&c, &config_dir);
    let (text, unparseable) = report(&routes, &input, args, &dir.display().to_string());
    print!("{text}");
    if unparseable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The whole report, and how many messages did not parse.
fn report(routes: &Routes, input: &[u8], args: &RouteTestArgs, routes_dir: &str) -> (String, usize) {
    let mut out = String::new();
    let parts = split_messages(input);
    let channel = match &args.channel {
        Some(c) => format!("channel {c}"),
        None => "any channel (the routes' channel lists are not applied; use --channel NAME)".into(),
    };
    let _ = writeln!(
        out,
        "{} message(s) from {}, {channel}; {} route(s) from {routes_dir}",
        parts.len(),
        args.file.display(),
        routes.len()
    );
    let (mut routed, mut filtered, mut unparseable) = (0, 0, 0);
    for (i, part) in parts.iter().enumerate() {
        let n = i + 1;
        let _ = writeln!(out);
        let raw = match part {
            Ok(raw) => *raw,
            Err(why) => {
                unparseable += 1;
                let _ = writeln!(out, "== message {n}: cannot split the file here: {why}");
                continue;
            }
        };
        let runs = match run_message(routes, raw, args.channel.as_deref()) {
            Ok(runs) => runs,
            Err(why) => {
                unparseable += 1;
                let _ = writeln!(out, "== message {n}: cannot parse: {why}");
                continue;
            }
        };
        let _ = writeln!(out, "== message {n}: {}", label(raw));
        let names: Vec<&str> = runs.iter().map(|r| r.route.name()).collect();
        if runs.is_empty() {
            filtered += 1;
            let _ = writeln!(out, "   filtered: no route takes this message");
        } else {
            routed += 1;
            let _ = writeln!(out, "   taken by {} route(s): {}", runs.len(), names.join(", "));
        }
        for route in routes.iter().filter(|r| !names.contains(&r.name())) {
            let _ = writeln!(
                out,
                "   not taken by {}: {}",
                route.name(),
                why_not(route, args.channel.as_deref())
            );
        }
        for run in &runs {
            route_section(&mut out, run);
        }
    }
    let _ = writeln!(
        out,
        "\n{} message(s): {routed} routed, {filtered} filtered, {unparseable} unparseable",
        parts.len()
    );
    (out, unparseable)
}

/// Why a route did not take a message that parsed.
fn why_not(route: &Route, channel: Option<&str>) -> String {
    match channel {
        Some(c) if !route.takes_channel(c) => {
            let takes = route.channels().map(|l| l.join(", ")).unwrap_or_default();
            format!("it takes from channel(s) {takes}, not {c}")
        }
        _ if !route.is_enabled() => "switched off (enabled = false)".into(),
        _ => "its filter (when) does not match".into(),
    }
}

/// `ADT^A01 control id C1 from EPIC/NORTH`.
fn label(raw: &[u8]) -> String {
    let Ok(msg) = Message::parse(raw) else {
        return String::new();
    };
    let field = |n: usize| msg.msh().field(n).map(|f| f.text().into_owned()).unwrap_or_default();
    format!("{} control id {} from {}/{}", field(9), field(10), field(3), field(4))
}

fn route_section(out: &mut String, run: &RouteRun<'_>) {
    let r = run.route;
    let _ = writeln!(out, "\n   -- route {} ({}:{})", r.name(), r.file().display(), r.line());
    if let Some(d) = r.description() {
        let _ = writeln!(out, "      {d}");
    }
    let services: Vec<&str> = r.services().iter().map(|s| s.name()).collect();
    let none = |v: &[&str]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    let destinations: Vec<&str> = r.destinations().iter().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "      to: services {}; destinations {}",
        none(&services),
        none(&destinations)
    );
    if run.notes.is_empty() {
        let _ = writeln!(out, "      changes: none");
    } else {
        let _ = writeln!(out, "      changes:");
        for note in &run.notes {
            let _ = writeln!(out, "        {note}");
        }
    }
    let (bytes, events) = match &run.result {
        Ok(done) => done,
        Err(e) => {
            let _ = writeln!(out, "      transform FAILED: {e}");
            let _ = writeln!(out, "      (the router would dead-letter this message for this route)");
            return;
        }
    };
    let _ = writeln!(out, "      message after transforms:");
    for line in segments_on_lines(bytes).lines() {
        let _ = writeln!(out, "        {line}");
    }
    match events {
        Events::Mapped(list) => {
            let _ = writeln!(out, "      events ({}):", list.len());
            for e in list {
                let _ = writeln!(out, "        {}", e.subject);
                let body = serde_json::to_string_pretty(&e.body).unwrap_or_default();
                for line in body.lines() {
                    let _ = writeln!(out, "          {line}");
                }
            }
        }
        Events::None(why) => {
            let _ = writeln!(out, "      events: none ({why})");
        }
    }
}
