//! The actix System, on a thread of its own.
//!
//! actix 0.13 spawns actor work with `spawn_local`, so actors need a System
//! (a `LocalSet`); `Addr` is `Send`, so tokio tasks anywhere can talk to them.
//! Keeping the System on its own thread leaves the main tokio runtime as it is.

use actix::{Actor, Addr, Context, Supervised, Supervisor};

/// A running actix System.
pub struct ActorSystem {
    system: actix::System,
    arbiter: actix::ArbiterHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The System could not start.
#[derive(Debug, thiserror::Error)]
#[error("the actor system did not start: {0}")]
pub struct StartError(String);

impl ActorSystem {
    /// Starts the System thread.
    pub fn start() -> Result<Self, StartError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("medbus-actors".into())
            .spawn(move || {
                let sys = actix::System::new();
                let _ = tx.send((actix::System::current(), actix::Arbiter::current()));
                if let Err(e) = sys.run() {
                    tracing::error!(error = %e, "actor system stopped with an error");
                }
            })
            .map_err(|e| StartError(e.to_string()))?;
        let (system, arbiter) = rx.recv().map_err(|e| StartError(e.to_string()))?;
        Ok(ActorSystem {
            system,
            arbiter,
            thread: Some(thread),
        })
    }

    /// Starts `make()` under a supervisor on the System and returns its address.
    pub async fn supervise<A>(&self, make: impl FnOnce() -> A + Send + 'static) -> Result<Addr<A>, StartError>
    where
        A: Actor<Context = Context<A>> + Supervised,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.arbiter.spawn_fn(move || {
            let actor = make();
            let _ = tx.send(Supervisor::start(|_| actor));
        });
        if !sent {
            return Err(StartError("the actor system is not running".into()));
        }
        rx.await.map_err(|e| StartError(e.to_string()))
    }

    /// Stops the System and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.system.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ActorSystem {
    fn drop(&mut self) {
        self.shutdown();
    }
}
