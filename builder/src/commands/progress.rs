//! Showing a push as it happens: progress bars (indicatif) when stderr is a
//! terminal, one quiet line per blob otherwise (CI logs), nothing with
//! `--output json` (stdout carries one JSON document). Everything goes to stderr;
//! it must never write to stdout or show a URL with its query (upload state).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Output;
use crate::env::Env;
use crate::oci::Digest;
use crate::registry::client::BlobAction;
use crate::transfer::push::Progress;

/// How progress is shown.
pub enum Reporter {
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<Digest, ProgressBar>>,
    },
    Lines {
        names: Mutex<HashMap<Digest, (String, u64)>>,
    },
    Silent,
}

impl Reporter {
    /// Bars on a terminal, lines in CI, silence for JSON.
    pub fn for_output(output: Output, env: &Env) -> Reporter {
        if output == Output::Json {
            Reporter::Silent
        } else if std::io::stderr().is_terminal() && !env.is_set("CI") {
            Reporter::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::new(HashMap::new()),
            }
        } else {
            Reporter::Lines {
                names: Mutex::new(HashMap::new()),
            }
        }
    }
}

fn short(d: &Digest) -> String {
    d.hex()[..12].to_owned()
}

/// `1.2 MB`-style sizes.
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

impl Progress for Reporter {
    fn start(&self, digest: &Digest, size: u64, what: &str) {
        match self {
            Reporter::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new(size));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} {bar:30} {bytes:>10}/{total_bytes:<10} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(short(digest));
                let what: String = what.chars().take(48).collect();
                bar.set_message(what);
                bar.enable_steady_tick(Duration::from_millis(200));
                bars.lock().expect("lock").insert(*digest, bar);
            }
            Reporter::Lines { names } => {
                names
                    .lock()
                    .expect("lock")
                    .insert(*digest, (what.to_owned(), size));
            }
            Reporter::Silent => {}
        }
    }

    fn update(&self, digest: &Digest, held: u64) {
        if let Reporter::Bars { bars, .. } = self {
            if let Some(bar) = bars.lock().expect("lock").get(digest) {
                bar.set_position(held);
            }
        }
    }

    fn finish(&self, digest: &Digest, action: BlobAction) {
        let verb = match action {
            BlobAction::Skipped => "exists",
            BlobAction::Mounted => "mounted",
            BlobAction::Uploaded => "uploaded",
        };
        match self {
            Reporter::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().expect("lock").get(digest) {
                    bar.finish_with_message(verb);
                }
            }
            Reporter::Lines { names } => {
                let (what, size) = names
                    .lock()
                    .expect("lock")
                    .remove(digest)
                    .unwrap_or_default();
                eprintln!(
                    "  {} {verb:<8} {:>10}  {what}",
                    short(digest),
                    human_bytes(size)
                );
            }
            Reporter::Silent => {}
        }
    }

    fn note(&self, message: &str) {
        match self {
            Reporter::Bars { multi, .. } => {
                let _ = multi.println(message);
            }
            Reporter::Lines { .. } => eprintln!("{message}"),
            Reporter::Silent => {}
        }
    }
}
