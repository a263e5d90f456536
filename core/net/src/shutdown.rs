//! Stop signals for the server binaries.

use std::future::Future;

/// Installs the SIGINT and SIGTERM handlers **now** and returns a future that completes on the
/// first of them (Ctrl-C on other platforms). Call it before announcing readiness (printing a
/// card, accepting connections): a signal that arrives between start-up and the first poll is
/// then still a graceful stop, not the default "terminate at once". Needs a tokio runtime.
pub fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => log::info!("SIGTERM received; shutting down"),
                _ = interrupt.recv() => log::info!("SIGINT received; shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            log::info!("Ctrl-C received; shutting down");
        })
    }
}
