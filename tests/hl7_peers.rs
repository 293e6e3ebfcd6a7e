//! HL7 programs nobody here wrote, against the real binary: python-hl7's
//! `mllp_send` (PyPI `hl7`) sends to medbus's MLLP listener and must get AA
//! with MSA-2 = its MSH-10.

mod support;

use std::process::Command;

use support::Medbus;

/// `python3 -m hl7.client` (the `mllp_send` tool), or None after printing why.
fn python_hl7() -> Option<()> {
    medbus_testkit::peers::tool("python-hl7", "python3", &["-c", "import hl7.client"], "pip install hl7")
}

#[test]
fn python_mllp_send_gets_aa_with_its_control_ids() {
    let Some(()) = python_hl7() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = medbus_testkit::free_port();
    let config = dir.path().join("medbus.toml");
    std::fs::write(&config, format!("[channels.adt]\nlisten = \"127.0.0.1:{port}\"\n")).unwrap();
    let mut m = Medbus::start(dir.path(), &[("MEDBUS_CONFIG", config.display().to_string())]);
    let ids = ["PY0001", "PY0002", "PY0003"];
    let mut file = Vec::new();
    for id in ids {
        file.push(0x0b);
        file.extend(
            format!("MSH|^~\\&|PYREG|HOSP|MEDBUS|HOSP|20240102101500||ADT^A04^ADT_A01|{id}|P|2.5\rEVN|A04|20240102101500\rPID|1||{id}^^^HOSP^MR||ROE^RICHARD||19700101|M\r").as_bytes(),
        );
        file.extend([0x1c, 0x0d]);
    }
    let messages = dir.path().join("messages.hl7");
    std::fs::write(&messages, file).unwrap();
    let out = Command::new("python3")
        .args(["-m", "hl7.client", "--port", &port.to_string(), "--file"])
        .arg(&messages)
        .arg("127.0.0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(
        out.status.success(),
        "mllp_send failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for id in ids {
        assert!(stdout.contains(&format!("MSA|AA|{id}")), "no AA for {id} in:\n{stdout}");
    }
    assert_eq!(m.terminate(std::time::Duration::from_secs(15)), Some(0));
}
