//! The process's own figures for [`Stats`](mqgate_kit::Stats): resident memory
//! and CPU use, read from /proc (Linux; zeros elsewhere).

/// Reads the process's resident memory and CPU time from /proc (Linux); zeros
/// elsewhere.
#[derive(Default)]
pub(crate) struct ProcessSampler {
    last_cpu_ticks: u64,
    last_at: Option<std::time::Instant>,
    max_rss: u64,
}

impl ProcessSampler {
    /// Resident bytes, their highest value so far, and CPU percent of one core
    /// since the previous sample.
    pub(crate) fn sample(&mut self) -> (u64, u64, f64) {
        let rss = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .nth(1)
                    .and_then(|p| p.parse::<u64>().ok())
            })
            .map(|pages| pages * 4096)
            .unwrap_or(0);
        self.max_rss = self.max_rss.max(rss);
        let ticks = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .unwrap_or(0);
        let now = std::time::Instant::now();
        let cpu = match self.last_at {
            Some(at) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    (ticks.saturating_sub(self.last_cpu_ticks) as f64 / 100.0) / secs * 100.0
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last_cpu_ticks = ticks;
        self.last_at = Some(now);
        (rss, self.max_rss, cpu)
    }
}
