//! The serving bench's report: every phase measured, then each target of issue 15 with its
//! measured ratio and whether it is met (one run; absolute numbers move with the machine).

use crate::load::Summary;

#[derive(Default)]
pub struct Cold {
    pub gateway: Summary,
    /// Each source's own `$everything` for the same person.
    pub sources: Vec<(&'static str, Summary)>,
}

#[derive(Default)]
pub struct Mixed {
    pub concurrency: usize,
    pub seconds: f64,
    pub warmup_seconds: f64,
    pub people: usize,
    /// Browser tasks viewing record pages, refresh-token chains, exports completed.
    pub viewers: usize,
    pub chains: usize,
    pub exports: usize,
    pub all: Summary,
    pub by_window: Vec<(&'static str, Summary)>,
    pub by_route: Vec<(&'static str, Summary)>,
    /// The mixed gateway's own process: VmRSS after the warm-up and at the end, VmHWM at
    /// the end, and VmRSS every half second of the measured run (seconds, kB).
    pub memory_start_kb: u64,
    pub memory_end_kb: u64,
    pub memory_peak_kb: u64,
    pub memory_curve: Vec<(f64, u64)>,
    /// VmRSS every half second of the warm-up (the same mix and lab cycle, once before).
    pub warmup_curve: Vec<(f64, u64)>,
}

/// The steady and cold phases over one population's sources.
#[derive(Default)]
pub struct Population {
    pub title: String,
    /// Prefixed to its targets' names ("" for the demo's).
    pub label: &'static str,
    /// People in the gateway's index.
    pub people: usize,
    pub everything_bytes: usize,
    /// (phase key, route, concurrency, summary)
    pub steady: Vec<(String, &'static str, usize, Summary)>,
    pub cold: Cold,
    /// The cold phase again, every source answering after this latency.
    pub cold_with_latency: (std::time::Duration, Cold),
}

#[derive(Default)]
pub struct Report {
    pub machine: String,
    pub rss_start_kb: u64,
    pub rss_end_kb: u64,
    /// VmRSS after each group of phases (where the growth happens).
    pub rss_by_phase: Vec<(&'static str, u64)>,
    /// The demo's, then a generated population's.
    pub populations: Vec<Population>,
    pub mixed: Mixed,
}

impl Population {
    /// The cold runs with their titles: those that ran (BENCH_SERVE_PHASES may leave them out).
    fn colds(&self) -> Vec<(String, &Cold)> {
        let (latency, with) = &self.cold_with_latency;
        [
            ("sources answering at once".to_string(), &self.cold),
            (format!("sources answering after {} ms", latency.as_millis()), with),
        ]
        .into_iter()
        .filter(|(_, cold)| cold.gateway.requests > 0)
        .collect()
    }
}

fn header() -> String {
    format!(
        "{:<34} {:>5} {:>8} {:>9} {:>9} {:>9} {:>8} {:>6} {:>7}\n",
        "route", "conc", "requests", "req/s", "p50 ms", "p99 ms", "MB/s", "errors", "with OO"
    )
}

fn row(route: &str, concurrency: &str, s: &Summary) -> String {
    format!(
        "{:<34} {:>5} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>8.2} {:>6} {:>7}\n",
        route, concurrency, s.requests, s.rps, s.p50_ms, s.p99_ms, s.mb_s, s.errors, s.partial
    )
}

fn target(name: &str, measured: &str, ratio: f64, goal: &str, met: bool) -> String {
    format!("{:<58} {:<34} {:>8.3} {:>8} {:>4}\n", name, measured, ratio, goal, if met { "yes" } else { "NO" })
}

impl Population {
    fn steady_of(&self, key: &str, concurrency: usize) -> Option<&Summary> {
        self.steady.iter().find(|(k, _, c, _)| k == key && *c == concurrency).map(|(_, _, _, s)| s)
    }

    fn render(&self) -> String {
        let mut out = format!(
            "Population: {} ({} people indexed); $everything of the bench's patient: {} bytes per answer\n\
             Steady phases (fixed time per concurrency)\n",
            self.title, self.people, self.everything_bytes
        );
        out.push_str(&header());
        for (_, route, c, s) in &self.steady {
            out.push_str(&row(route, &c.to_string(), s));
        }
        for (title, cold) in self.colds() {
            out.push_str(&format!(
                "\nCold $everything, {title}, one request at a time, interleaved with each source's own $everything\n"
            ));
            out.push_str(&header());
            out.push_str(&row("gateway $everything (cold)", "1", &cold.gateway));
            for (route, s) in &cold.sources {
                out.push_str(&row(route, "1", s));
            }
        }
        out.push('\n');
        out
    }

    fn targets(&self) -> String {
        let mut out = String::new();
        let name = |text: String| format!("{}{text}", self.label);
        let mut levels: Vec<usize> = self.steady.iter().map(|(_, _, c, _)| *c).collect();
        levels.dedup();
        for (key, what) in [("read", "read rps / metadata rps"), ("read-any", "read of any person (staff) rps / metadata rps")] {
            for c in &levels {
                if let (Some(read), Some(meta)) = (self.steady_of(key, *c), self.steady_of("metadata", *c)) {
                    let ratio = read.rps / meta.rps.max(1e-9);
                    let measured = format!("{:.0} / {:.0} req/s", read.rps, meta.rps);
                    out.push_str(&target(&name(format!("{what} (c={c})")), &measured, ratio, ">= 0.5", ratio >= 0.5));
                }
            }
        }
        for c in &levels {
            if let (Some(warm), Some(stat)) = (self.steady_of("warm", *c), self.steady_of("static", *c)) {
                let ratio = warm.mb_s / stat.mb_s.max(1e-9);
                let measured = format!("{:.1} / {:.1} MB/s", warm.mb_s, stat.mb_s);
                out.push_str(&target(
                    &name(format!("warm $everything MB/s / static MB/s (c={c})")),
                    &measured,
                    ratio,
                    ">= 0.5",
                    ratio >= 0.5,
                ));
            }
        }
        for (title, cold) in self.colds() {
            let Some((route, slowest)) = cold.sources.iter().max_by(|a, b| a.1.p50_ms.total_cmp(&b.1.p50_ms)) else {
                continue;
            };
            let ratio = cold.gateway.p50_ms / slowest.p50_ms.max(1e-9);
            let source = route.split(' ').next().unwrap_or("?");
            let measured = format!("{:.2} / {:.2} ms ({source})", cold.gateway.p50_ms, slowest.p50_ms);
            out.push_str(&target(
                &name(format!("cold $everything p50 / slowest source p50, {title}")),
                &measured,
                ratio,
                "<= 1.2",
                ratio <= 1.2,
            ));
        }
        out
    }
}

impl Report {
    pub fn new(machine: String) -> Report {
        Report { machine, ..Default::default() }
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "Portico serving benchmark, {} UTC, {}, portico {}\n\
             Steady and cold phases: gateways, simulators (4 systems), static handler and load client in one \
             process; mixed phase: the gateway in its own process (release build, SQLite, audit on).\n\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M"),
            self.machine,
            env!("CARGO_PKG_VERSION"),
        );
        for population in &self.populations {
            out.push_str(&population.render());
        }
        let m = &self.mixed;
        let mb = |kb: u64| kb as f64 / 1024.0;
        if m.all.requests == 0 {
            out.push_str("\nMixed traffic: not run (BENCH_SERVE_PHASES)\n");
        } else {
            out.push_str(&format!(
                "\nMixed traffic against a gateway in its own process (release `portico serve`), {:.0} s after a {:.0} s \
                 warm-up of the same mix and lab cycle: {} people, concurrency {} (reads, searches, $everything; staff token), \
                 {} browser(s) viewing the patient's record pages, {} app refresh-token chain(s), a partner's \
                 Bulk $export run again and again ({} completed); the lab slow, then down, then back, a quarter each\n",
                m.seconds, m.warmup_seconds, m.people, m.concurrency, m.viewers, m.chains, m.exports
            ));
            out.push_str(&header());
            for (window, s) in &m.by_window {
                out.push_str(&row(&format!("window: {window}"), &m.concurrency.to_string(), s));
            }
            for (route, s) in &m.by_route {
                out.push_str(&row(route, "", s));
            }
            out.push_str(&row("all", &m.concurrency.to_string(), &m.all));
            let curve = |c: &[(f64, u64)]| -> String {
                c.iter().step_by(4).map(|(t, kb)| format!("{t:.0}s {:.0}", mb(*kb))).collect::<Vec<_>>().join(", ")
            };
            out.push_str(&format!(
                "\nMixed gateway memory (its own process): VmRSS {:.1} MB after the warm-up, {:.1} MB at the end \
                 (peak VmHWM {:.1} MB); during the warm-up, the same lab cycle (MB): {}; during the run (MB): {}\n",
                mb(m.memory_start_kb),
                mb(m.memory_end_kb),
                mb(m.memory_peak_kb),
                curve(&m.warmup_curve),
                curve(&m.memory_curve)
            ));
        }
        let after: String =
            self.rss_by_phase.iter().map(|(p, kb)| format!(", {:.1} MB after the {p}", mb(*kb))).collect();
        out.push_str(&format!(
            "Bench process memory (VmRSS: in-process gateways of the steady and cold phases, simulators, load \
             client): {:.1} MB after start-up{after}, {:.1} MB at the end\n\n",
            mb(self.rss_start_kb),
            mb(self.rss_end_kb)
        ));
        out.push_str(&self.targets());
        out
    }

    fn targets(&self) -> String {
        let mut out = format!("{:<58} {:<34} {:>8} {:>8} {:>4}\n", "target", "measured", "ratio", "goal", "met");
        for population in &self.populations {
            out.push_str(&population.targets());
        }
        let m = &self.mixed;
        if m.all.requests == 0 {
            out.push_str("mixed load targets: not run (BENCH_SERVE_PHASES)\n");
            return out;
        }
        let measured = format!("{} errors, {} with OO of {}", m.all.errors, m.all.partial, m.all.requests);
        out.push_str(&target(
            "mixed load: errors (not partial warnings)",
            &measured,
            m.all.errors as f64,
            "0",
            m.all.errors == 0,
        ));
        let steady = m.by_window.first().map(|w| w.1.p99_ms).unwrap_or(0.0);
        let recovered = m.by_window.last().map(|w| w.1.p99_ms).unwrap_or(0.0);
        let ratio = recovered / steady.max(1e-9);
        let measured = format!("{recovered:.1} / {steady:.1} ms");
        out.push_str(&target("mixed: p99 after recovery / steady p99", &measured, ratio, "<= 2", ratio <= 2.0));
        let ratio = m.memory_end_kb as f64 / m.memory_start_kb.max(1) as f64;
        let measured = format!("{:.1} / {:.1} MB", m.memory_end_kb as f64 / 1024.0, m.memory_start_kb as f64 / 1024.0);
        out.push_str(&target("mixed gateway memory end / after warm-up", &measured, ratio, "<= 1.1", ratio <= 1.1));
        out
    }
}
