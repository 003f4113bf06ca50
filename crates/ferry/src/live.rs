//! The console: how the CLI renders a workflow's progress. On a terminal, a spinner per
//! running action (with its elapsed time and the last line of its log) and per long
//! operation, with finished steps printed above; otherwise plain, timestamped lines with every
//! log line, as CI logs want them. Always on standard error, so `--format json` stays clean.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferry_engine::action::RunEvent;
use ferry_engine::model::Status;
use ferry_workflows::{ExecutionNote, Progress, Reporter};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::output::{BOLD, DIM, ERROR, OK, WARNING, paint, short_revision};

pub struct Console {
    tty: bool,
    multi: MultiProgress,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A spinner per running action.
    bars: HashMap<(String, String), ProgressBar>,
    started: HashMap<(String, String), Instant>,
    /// The long operations begun and not yet ended, innermost last (a spinner each on a
    /// terminal).
    operations: Vec<Option<ProgressBar>>,
}

fn spinner(prefix: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("  {spinner} {prefix} {elapsed:>5} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(prefix);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

impl Console {
    pub fn new() -> Console {
        let tty = std::io::stderr().is_terminal();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Console {
            tty,
            multi,
            state: Mutex::new(State::default()),
        }
    }

    /// A line above the spinners (on a terminal), or on its own.
    fn say(&self, line: String) {
        if self.tty {
            // Styles stay unless NO_COLOR asks otherwise.
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

    fn run_event(&self, state: &mut State, event: &RunEvent) {
        match event {
            RunEvent::Execution { id, status, reason } => {
                if *status != Status::InProgress {
                    let why = reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    self.say(format!(
                        "{} execution {id} {}{why}",
                        clock(),
                        status.as_str()
                    ));
                }
            }
            RunEvent::Stage { stage, status } => {
                if *status == Status::InProgress {
                    self.say(format!(
                        "{} {} {}",
                        clock(),
                        paint(BOLD, "▸"),
                        paint(BOLD, stage)
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
                let name = if *attempt > 1 {
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
                            let bar = self.multi.add(spinner(name));
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
                        let why = detail
                            .as_ref()
                            .map(|d| format!(" — {d}"))
                            .unwrap_or_default();
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
            // The summary and `ferry releases` say what was released.
            RunEvent::Release { .. } => {}
            RunEvent::Log {
                stage,
                action,
                line,
            } => {
                if let Some(bar) = state.bars.get(&(stage.clone(), action.clone())) {
                    bar.set_message(line.clone());
                } else if !self.tty {
                    anstream::eprintln!("{} {line}", paint(DIM, &format!("{stage}.{action} |")));
                }
            }
        }
    }

    fn note(&self, note: &ExecutionNote) {
        let line = match note {
            ExecutionNote::Started {
                id,
                pipeline,
                revision,
                state_dir,
            } => format!(
                "{} {id} started: {pipeline} at revision {} {}",
                paint(BOLD, "▸"),
                short_revision(revision),
                paint(DIM, &format!("(state in {state_dir})"))
            ),
            ExecutionNote::Resumed { id, revision } => format!(
                "{} resuming {id} (revision {})",
                paint(BOLD, "▸"),
                short_revision(revision)
            ),
            ExecutionNote::Retrying { id, stage } => {
                format!("{} retrying stage {stage} of {id}", paint(BOLD, "▸"))
            }
            ExecutionNote::Continuing { id } => format!(
                "{} no ferry process is driving {id}; continuing it here",
                paint(BOLD, "▸")
            ),
            ExecutionNote::Leased { id, stage, action } => format!(
                "{} running {stage}.{action} of {id}, which another ferry process drives",
                paint(DIM, "·")
            ),
            ExecutionNote::DrivenElsewhere { id, driver } => format!(
                "{} {id} is driven by ferry process {driver}; it continues there",
                paint(DIM, "·")
            ),
        };
        self.say(line);
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Reporter for Console {
    fn report(&self, event: &Progress) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Progress::Begin { title } => {
                let bar = if self.tty {
                    Some(self.multi.add(spinner(title.clone())))
                } else {
                    anstream::eprintln!("{} {}", clock(), paint(BOLD, title));
                    None
                };
                state.operations.push(bar);
            }
            Progress::Step { text } => match state.operations.last() {
                Some(Some(bar)) => {
                    bar.println(format!("  {} {text}", paint(DIM, "·")));
                    bar.set_message(text.clone());
                }
                _ if self.tty => self.say(format!("  {} {text}", paint(DIM, "·"))),
                _ => anstream::eprintln!("{} {text}", clock()),
            },
            Progress::End => {
                if let Some(Some(bar)) = state.operations.pop() {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            Progress::Run(event) => self.run_event(&mut state, event),
            Progress::Execution(note) => self.note(note),
            Progress::StopRequested { forced } => {
                let msg = if *forced {
                    "stopping the running actions"
                } else {
                    "stopping after the running actions finish (Ctrl-C again to stop them too)"
                };
                self.say(format!("{} {msg}", paint(WARNING, "■")));
            }
            Progress::Decided {
                execution,
                stage,
                approve,
                identity,
                digests,
            } => {
                let verb = if *approve { "approved" } else { "rejected" };
                self.say(format!(
                    "{} {verb} stage {stage} of {execution} as {identity}",
                    paint(OK, "✓")
                ));
                for (name, sha) in digests {
                    self.say(format!("  {name} sha256:{}", &sha[..sha.len().min(16)]));
                }
            }
            Progress::Warning { text } => self.say(format!("{} {text}", paint(WARNING, "!"))),
        }
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
