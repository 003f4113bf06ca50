//! The live view of a running execution: on a terminal, one line per running action with a
//! spinner, its elapsed time and the last line of its log; otherwise plain, timestamped lines
//! with every log line, as CI logs want them.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_engine::action::{Observer, RunEvent};
use ferry_engine::model::Status;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{BOLD, DIM, ERROR, OK, WARNING, paint};

pub struct LiveView {
    tty: bool,
    multi: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bars: HashMap<(String, String), ProgressBar>,
    started: HashMap<(String, String), Instant>,
}

impl LiveView {
    pub fn new() -> LiveView {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        LiveView {
            tty,
            multi,
            state: Mutex::new(State::default()),
        }
    }

    fn say(&self, line: String) {
        if self.tty {
            // Printed above the spinners; styles stay unless NO_COLOR asks otherwise.
            let text = if std::env::var_os("NO_COLOR").is_some() {
                anstream::adapter::strip_str(&line).to_string()
            } else {
                line
            };
            let _ = self.multi.println(text);
            return;
        }
        anstream::eprintln!("{line}");
    }
}

impl Default for LiveView {
    fn default() -> Self {
        LiveView::new()
    }
}

fn elapsed(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

fn clock() -> String {
    let secs = ferry_engine::model::now_ms() / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

impl Observer for LiveView {
    fn event(&self, event: RunEvent) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            RunEvent::Execution { id, status, reason } => {
                if status != Status::InProgress {
                    let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                    self.say(format!(
                        "{} execution {id} {}{why}",
                        clock(),
                        status.as_str()
                    ));
                }
            }
            RunEvent::Stage { stage, status } => {
                if status == Status::InProgress {
                    self.say(format!(
                        "{} {} {}",
                        clock(),
                        paint(BOLD, "▸"),
                        paint(BOLD, &stage)
                    ));
                }
            }
            RunEvent::Waiting { stage, why } => self.say(format!(
                "{} {} {stage} waits: {why}",
                clock(),
                paint(WARNING, "⏸")
            )),
            RunEvent::Action {
                stage,
                action,
                attempt,
                status,
                detail,
            } => {
                let key = (stage.clone(), action.clone());
                let name = if attempt > 1 {
                    format!("{stage}.{action} (attempt {attempt})")
                } else {
                    format!("{stage}.{action}")
                };
                match status {
                    Status::InProgress => {
                        state.started.insert(key.clone(), Instant::now());
                        if let Some(d) = detail {
                            self.say(format!("{} {name}: {d}", clock()));
                        }
                        if self.tty {
                            let bar = self.multi.add(ProgressBar::new_spinner());
                            bar.set_style(
                                ProgressStyle::with_template(
                                    "  {spinner} {prefix} {elapsed:>5} {wide_msg}",
                                )
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                            );
                            bar.set_prefix(name);
                            bar.enable_steady_tick(Duration::from_millis(120));
                            state.bars.insert(key, bar);
                        } else {
                            self.say(format!("{} {name} started", clock()));
                        }
                    }
                    Status::AwaitingApproval => {}
                    done => {
                        let took = state
                            .started
                            .get(&key)
                            .map(|s| elapsed(s.elapsed()))
                            .unwrap_or_default();
                        let (mark, style) = match done {
                            Status::Succeeded => ("✓", OK),
                            Status::Stopped => ("■", WARNING),
                            _ => ("✗", ERROR),
                        };
                        let why = detail.map(|d| format!(" — {d}")).unwrap_or_default();
                        let line = format!(
                            "  {} {name} {} {took}{why}",
                            paint(style, mark),
                            done.as_str().to_lowercase()
                        );
                        if let Some(bar) = state.bars.remove(&key) {
                            bar.finish_and_clear();
                            self.multi.remove(&bar);
                        }
                        self.say(if self.tty {
                            line
                        } else {
                            format!("{} {}", clock(), line.trim_start())
                        });
                    }
                }
            }
            RunEvent::Log {
                stage,
                action,
                line,
            } => {
                if let Some(bar) = state.bars.get(&(stage.clone(), action.clone())) {
                    bar.set_message(line);
                } else if !self.tty {
                    anstream::eprintln!("{} {line}", paint(DIM, &format!("{stage}.{action} |")));
                }
            }
        }
    }
}

/// Progress of one long operation (`ferry deploy`, `ferry rollback`): on a terminal, a
/// spinner showing the current step above the steps done; otherwise one timestamped line per
/// step, as CI logs want them. Always on standard error, so `--format json` stays clean.
pub struct Steps {
    bar: Option<ProgressBar>,
}

impl Steps {
    pub fn new(title: &str) -> Steps {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix} {elapsed:>5} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(title.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        if bar.is_none() {
            anstream::eprintln!("{} {}", clock(), paint(BOLD, title));
        }
        Steps { bar }
    }

    pub fn step(&self, text: &str) {
        match &self.bar {
            Some(bar) => {
                bar.println(format!("  {} {text}", paint(DIM, "·")));
                bar.set_message(text.to_owned());
            }
            None => anstream::eprintln!("{} {text}", clock()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
