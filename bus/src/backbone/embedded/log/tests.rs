//! Round trips, torn tails and corruption of the log format.

use super::*;
use bytes::Bytes;

fn sample() -> Outgoing {
    Outgoing {
        subject: "medbus.ingress.hl7v2.adt".into(),
        dedupe_id: "adt:42".into(),
        headers: [
            ("A".to_string(), "1".to_string()),
            ("Ünï".to_string(), "v|2".to_string()),
        ]
        .into_iter()
        .collect(),
        payload: Bytes::from_static(b"MSH|^~\\&|\r\x00\xff"),
    }
}

/// Two batches: [publish 1, consumer, commit] [ack, floor, last seq, publish 2, commit].
fn two_batches() -> (Vec<u8>, usize) {
    let mut buf = Vec::new();
    encode_publish(&mut buf, 1, 1000, &sample());
    let c = ConsumerRec {
        id: 3,
        name: "router".into(),
        filter: "medbus.ingress.>".into(),
        ack_wait_ms: 30_000,
        max_deliver: 5,
        max_ack_pending: 1024,
    };
    encode(&mut buf, &Record::Consumer(c));
    encode(&mut buf, &Record::Commit { records: 2 });
    let first = buf.len();
    encode(&mut buf, &Record::Ack { consumer: 3, seq: 1 });
    encode(&mut buf, &Record::Floor { consumer: 3, floor: 1 });
    encode(&mut buf, &Record::LastSeq(1));
    encode_publish(&mut buf, 2, 1001, &sample());
    encode(&mut buf, &Record::Commit { records: 4 });
    (buf, first)
}

fn read_all(data: &[u8], last: bool) -> Result<(Vec<String>, Scan), BackboneError> {
    let mut seen = Vec::new();
    let scan = scan(Path::new("seg-test.log"), data, last, |_, _, r| {
        seen.push(format!("{r:?}"));
        Ok(())
    })?;
    Ok((seen, scan))
}

#[test]
fn round_trip_every_kind() {
    let msg = sample();
    let mut buf = Vec::new();
    let (off, len) = encode_publish(&mut buf, 7, 1234, &msg);
    assert_eq!((off, len as usize), (0, buf.len()));
    let Frame::Ok { body, next } = parse_frame(&buf, 0) else {
        panic!("frame not read back")
    };
    assert_eq!(next, buf.len());
    let Record::Publish(p) = decode(body).unwrap() else {
        panic!("not a publish")
    };
    assert_eq!(
        (p.seq, p.ts_ms, p.subject, p.dedupe_id),
        (7, 1234, msg.subject.as_str(), "adt:42")
    );
    assert_eq!(p.payload, &msg.payload[..]);
    let headers: Vec<_> = msg.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(p.headers, headers);
    // encode(Record::Publish) writes exactly what encode_publish wrote.
    let mut again = Vec::new();
    encode(&mut again, &Record::Publish(p));
    assert_eq!(again, buf);

    let (data, _) = two_batches();
    let (seen, scan) = read_all(&data, true).unwrap();
    assert_eq!(scan.valid_end, data.len());
    assert!(scan.torn.is_none());
    assert_eq!(seen.len(), 6, "{seen:#?}");
    assert!(seen[1].contains("name: \"router\"") && seen[1].contains("max_ack_pending: 1024"));
    assert_eq!(seen[2], "Ack { consumer: 3, seq: 1 }");
    assert_eq!(seen[3], "Floor { consumer: 3, floor: 1 }");
    assert_eq!(seen[4], "LastSeq(1)");
}

#[test]
fn torn_tail_is_cut_at_the_last_commit() {
    let (data, first) = two_batches();
    // Every cut inside the second batch leaves exactly the first batch.
    for cut in first + 1..data.len() {
        let (seen, scan) = read_all(&data[..cut], true).unwrap();
        assert_eq!(scan.valid_end, first, "cut at {cut}");
        assert!(scan.torn.is_some_and(|t| t.0 >= first), "cut at {cut}");
        assert_eq!(seen.len(), 2, "cut at {cut}: only the first batch is applied");
    }
    // A tail of zeros (a preallocated or half-written page) is torn too.
    let mut zeros = data.clone();
    zeros.extend_from_slice(&[0; 300]);
    let (seen, scan) = read_all(&zeros, true).unwrap();
    assert_eq!((seen.len(), scan.valid_end), (6, data.len()));
    // Not in an older segment: there it is an error naming the place.
    let err = read_all(&data[..data.len() - 3], false).unwrap_err().to_string();
    let commit_at = data.len() - FRAME_HEADER - COMMIT_BODY;
    assert!(
        err.contains("seg-test.log") && err.contains(&format!("offset {commit_at}")),
        "{err}"
    );
}

#[test]
fn corrupt_committed_record_is_an_error() {
    let (mut data, first) = two_batches();
    // Flip a payload byte of the first publish: its CRC fails, and a COMMIT follows.
    data[40] ^= 0x55;
    let err = read_all(&data, true).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BackboneError::Storage(_)));
    assert!(text.contains("offset 0") && text.contains("checksum"), "{text}");
    // Corruption inside the newest batch (perhaps never synced) is a torn tail,
    // even when that batch's COMMIT reached the disk.
    let mut data = two_batches().0;
    let n = data.len();
    data[n - 20] ^= 0x55;
    let (seen, scan) = read_all(&data, true).unwrap();
    assert_eq!((seen.len(), scan.valid_end), (2, first));
    assert_eq!(scan.torn.map(|t| t.1), Some("checksum mismatch"));
}

#[test]
fn decode_rejects_garbage_without_panicking() {
    assert!(decode(&[]).is_err());
    assert!(decode(&[99]).unwrap_err().contains("unknown record kind"));
    assert!(decode(&[PUBLISH, 1, 2]).unwrap_err().contains("ends early"));
    // A huge header count must not allocate or panic.
    let mut b = vec![PUBLISH];
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode(&b).is_err());
    let mut b = Vec::new();
    encode(&mut b, &Record::LastSeq(5));
    b.push(0);
    assert!(decode(&b[FRAME_HEADER..]).unwrap_err().contains("trailing"));
    assert_eq!(parse_frame(&[1, 0, 0, 0], 0), Frame::Bad("incomplete frame header"));
    assert_eq!(parse_frame(&[0; 12], 0), Frame::Bad("impossible frame length"));
}
