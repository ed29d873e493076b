//! A scenario as a session source: the driver makes its steps' socket calls
//! (and the faults it asks for) while the capture runs.

use super::driver::{self, DriverConfig, DriverReport};
use super::faults::{Faults, Tampered};
use crate::error::AppError;
use crate::session::{Source, WireActivity};
use hc_core::model::{Nanos, Side};
use hc_core::scenario::Scenario;
use std::path::Path;
use std::time::Duration;
use tokio::sync::watch;

pub struct ScenarioSource<'a> {
    pub scenario: &'a Scenario,
    pub driver: DriverConfig,
    pub port: u16,
    pub ipv6: bool,
}

/// What the driver observed, and what hc-trace did to the wire.
pub struct Driven {
    pub report: DriverReport,
    pub held: Vec<Tampered>,
    pub drops: Vec<(Side, Nanos)>,
    /// The signal that stopped the run early, if one did.
    pub interrupted_by: Option<&'static str>,
}

impl Source for ScenarioSource<'_> {
    type Output = Driven;

    fn run(&mut self, wire: &dyn WireActivity) -> Result<Driven, AppError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AppError::io("cannot start the runtime".into(), e))?;
        Ok(rt.block_on(async {
            let (tx, rx) = watch::channel(None);
            tokio::spawn(forward_signals(tx));
            let mut faults = Faults::new(self.port, self.ipv6);
            let report =
                driver::run(self.scenario, &self.driver, wire, &mut faults, rx.clone()).await;
            // Rules off and held segments delivered before the capture stops.
            let (held, drops) = faults.finish();
            let interrupted_by = if report.interrupted {
                *rx.borrow()
            } else {
                None
            };
            Driven {
                report,
                held,
                drops,
                interrupted_by,
            }
        }))
    }

    /// The sides' threads are this process's: they still exist (the
    /// driver's descriptors are held open until the report is dropped).
    fn ours(&self, _out: &Driven, tid: i32) -> bool {
        Path::new("/proc/self/task").join(tid.to_string()).exists()
    }
}

/// Passes a caught SIGINT/SIGTERM on to the driver, so the run stops
/// between steps and still renders and saves what it captured.
async fn forward_signals(tx: watch::Sender<Option<&'static str>>) {
    loop {
        if let Some(sig) = hc_sys::signals::caught() {
            let _ = tx.send(Some(sig));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
