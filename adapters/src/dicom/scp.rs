//! The accept loop of one storage SCP: each association in its own task, at
//! most `max_associations` at once, all of them finished (or aborted at
//! shutdown) before [`run`] returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason, AssociationRJSource,
};
use dicom_ul::Pdu;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::association::{self, ScpContext};
use super::instance::InstanceSink;
use super::options::ScpOptions;

/// How long a connection over the limit is given to send its A-ASSOCIATE-RQ before the reject.
const BUSY_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves associations on `listener` until `shutdown` is cancelled, then aborts
/// the open ones (a C-STORE in hand is answered first) and returns.
pub async fn run(listener: TcpListener, options: ScpOptions, sink: Arc<dyn InstanceSink>, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(options.max_associations.max(1)));
    let ctx = Arc::new(ScpContext::new(options, sink, shutdown.clone()));
    let tasks = TaskTracker::new();
    tracing::info!(ae = %ctx.ae(), addr = ?listener.local_addr().ok(), "dicom scp accepting");
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "dicom accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Without it every C-STORE response waits on Nagle and the peer's delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let _permit = permit;
                    association::serve(ctx, stream, peer).await;
                });
            }
            Err(_) => {
                tracing::warn!(%peer, reason = "too many associations", "dicom association rejected");
                metrics::counter!("medbus_dicom_associations_total", "ae" => ctx.ae(), "outcome" => "rejected", "reason" => "busy")
                    .increment(1);
                tasks.spawn(reject_busy(stream, peer));
            }
        }
    }
    tasks.close();
    tasks.wait().await;
    tracing::info!(ae = %ctx.ae(), "dicom scp stopped");
}

/// Answers a connection over the limit with A-ASSOCIATE-RJ (transient, local limit
/// exceeded), after reading its request so the close does not reset the reject away.
async fn reject_busy(mut stream: TcpStream, peer: SocketAddr) {
    let _ = tokio::time::timeout(BUSY_READ_TIMEOUT, read_one_pdu(&mut stream)).await;
    let rj = Pdu::AssociationRJ(AssociationRJ {
        result: AssociationRJResult::Transient,
        source: AssociationRJSource::ServiceProviderPresentation(
            AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
        ),
    });
    let mut bytes = Vec::new();
    if dicom_ul::write_pdu(&mut bytes, &rj).is_ok() {
        let _ = tokio::time::timeout(BUSY_READ_TIMEOUT, stream.write_all(&bytes)).await;
    }
    let _ = tokio::time::timeout(BUSY_READ_TIMEOUT, stream.shutdown()).await;
    tracing::debug!(%peer, "busy reject sent");
}

/// Reads and discards one PDU (header, then up to 64 KiB of body).
async fn read_one_pdu(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut header = [0u8; 6];
    stream.read_exact(&mut header).await?;
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as u64;
    let mut body = stream.take(len.min(64 * 1024));
    tokio::io::copy(&mut body, &mut tokio::io::sink()).await?;
    Ok(())
}
