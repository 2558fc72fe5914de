//! `connect admin code letters`: a new code and a letter for every person of the register who
//! waits for one, and for every letter asked for after a lost phone (the realm's queue of
//! `letter_requests`, marked printed once written); each letter in a file of its own, and all
//! of them, in postal-code order, in one PDF for the mailroom.
//!
//! Codes are issued a batch at a time, in one transaction per batch, while the letters are
//! rendered and written on blocking threads, as many at a time as there are cores. At most that
//! many letters are in flight, so memory stays flat however long the register is; the mailroom PDF grows by
//! a few kilobytes a page in a thread of its own.

use std::{
    collections::{BTreeMap, VecDeque},
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{anyhow, Context};
use chrono::NaiveDate;
use indicatif::ProgressBar;
use tokio::{sync::mpsc, task::JoinSet};

use super::progress;
use crate::{
    activation::IssuedCode,
    app::AppState,
    letter::{postal_key, swiss_date, swiss_format, ActivationLetter, Fonts, LetterBatch},
    realm::Realm,
    storage::{
        activation_codes,
        letter_requests::{self, WaitingLetter},
        persons::Person,
        Conflict, StoreError,
    },
};

/// Whom a letter of the run is for.
enum Waiting {
    /// A person of the register without an account or a usable code.
    Enrolment(Person),
    /// A person who lost their phone and asked for a letter.
    Request(WaitingLetter),
}

impl Waiting {
    fn person(&self) -> &Person {
        match self {
            Waiting::Enrolment(p) => p,
            Waiting::Request(r) => &r.person,
        }
    }
}

/// What every letter of the run shares.
struct Run {
    realm: Arc<Realm>,
    link: String,
    date: NaiveDate,
    out: PathBuf,
}

/// One letter whose code is issued: `seq` is its place in the mailroom's order.
struct Job {
    seq: usize,
    issued: IssuedCode,
    run: Arc<Run>,
}

impl Job {
    fn letter(&self) -> ActivationLetter<'_> {
        ActivationLetter::for_issued(&self.run.realm, &self.issued, &self.run.link, self.run.date)
    }

    fn path(&self) -> PathBuf {
        self.run.out.join(file_name(&self.issued))
    }

    /// Renders and writes the person's own file. A panic in the PDF library becomes an error
    /// here, so that the code of this letter is revoked like after any other failure.
    fn write(&self, fonts: &Fonts) -> anyhow::Result<()> {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let pdf = self.letter().pdf_with(fonts)?;
            // Made durable all at once at the end of the run (`sync_filesystem`).
            write_whole_unsynced(&self.path(), &pdf)
        }))
        .unwrap_or_else(|_| Err(anyhow!("the PDF library failed")))
    }
}

/// `DIR/<AHV digits>.pdf`.
pub(super) fn file_name(issued: &IssuedCode) -> String {
    format!("{}.pdf", issued.person.ahv.as_str().replace('.', ""))
}

pub(super) use crate::letter::validity_days;

/// The mailroom's file for today beside the letters, never one of an earlier run:
/// `batch-YYYY-MM-DD.pdf`, then `batch-YYYY-MM-DD-2.pdf`, ...
fn batch_path(out: &Path, date: NaiveDate) -> PathBuf {
    let day = date.format("%Y-%m-%d");
    (1..)
        .map(|n| match n {
            1 => out.join(format!("batch-{day}.pdf")),
            n => out.join(format!("batch-{day}-{n}.pdf")),
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| out.join(format!("batch-{day}.pdf")))
}

/// What the mailroom's file holds once written.
struct Batch {
    path: PathBuf,
    letters: usize,
    pages: usize,
}

/// Adds the letters in the order they arrive (the mailroom's), then writes the file.
fn write_batch(
    mut letters: mpsc::Receiver<Arc<Job>>,
    fonts: Fonts,
    run: Arc<Run>,
) -> anyhow::Result<Option<Batch>> {
    let title = format!(
        "{} – activation letters – {}",
        run.realm.id,
        swiss_format(run.date)
    );
    let mut batch = LetterBatch::new(fonts, title, run.realm.display_name.to_string());
    while let Some(job) = letters.blocking_recv() {
        std::panic::catch_unwind(AssertUnwindSafe(|| batch.add(&job.letter())))
            .unwrap_or_else(|_| Err(crate::letter::LetterError::Pdf("panic".into())))
            .with_context(|| format!("adding the letter for {}", job.issued.person.ahv))?;
    }
    if batch.letters() == 0 {
        return Ok(None);
    }
    let (letters, pages) = (batch.letters(), batch.pages());
    let path = batch_path(&run.out, run.date);
    let pdf = std::panic::catch_unwind(AssertUnwindSafe(|| batch.pdf()))
        .unwrap_or_else(|_| Err(crate::letter::LetterError::Pdf("panic".into())))?;
    write_whole(&path, &pdf)?;
    Ok(Some(Batch {
        path,
        letters,
        pages,
    }))
}

/// Letters written, and passed on to the mailroom's file in their order once every letter
/// before them is done.
struct Progress {
    bar: ProgressBar,
    /// Finished letters waiting for one before them: `None` for a letter that failed.
    done: BTreeMap<usize, Option<Arc<Job>>>,
    next: usize,
    to_batch: mpsc::Sender<Arc<Job>>,
    written: usize,
    failure: Option<anyhow::Error>,
}

impl Progress {
    async fn settle(
        &mut self,
        state: &AppState,
        finished: Result<(Arc<Job>, anyhow::Result<()>), tokio::task::JoinError>,
    ) {
        let (job, result) = match finished {
            Ok(done) => done,
            // Never aborted, and panics are caught in `Job::write`.
            Err(e) => {
                self.fail(anyhow!("a letter task ended: {e}"));
                return;
            }
        };
        // A requested letter leaves the queue once it is written.
        let result = match (result, &job.issued.request) {
            (Ok(()), Some(request)) => {
                let (realm, now) = (&job.run.realm.id, state.clock.unix());
                letter_requests::mark_printed(&state.db, realm, request, now)
                    .await
                    .map_err(|e| anyhow::Error::new(e).context("marking the request printed"))
            }
            (result, _) => result,
        };
        match result {
            Ok(()) => {
                self.written += 1;
                self.bar.inc(1);
                self.done.insert(job.seq, Some(job));
            }
            Err(e) => {
                // A code nobody can read must not keep the person out of the next batch.
                let ahv = &job.issued.person.ahv;
                let revoked = state.activation.revoke(&job.run.realm, ahv).await;
                let mut e = e.context(format!(
                    "the letter for {ahv} was not written to {}; its code is revoked",
                    job.path().display()
                ));
                if let Err(r) = revoked {
                    e = e.context(format!("and revoking its code failed too: {r}"));
                }
                self.fail(e);
                self.done.insert(job.seq, None);
            }
        }
        while let Some(job) = self.done.remove(&self.next) {
            self.next += 1;
            if let Some(job) = job {
                if self.to_batch.send(job).await.is_err() {
                    // The mailroom's file failed; its error is read when it is joined.
                    self.fail(anyhow!("the mailroom's file could not be written"));
                }
            }
        }
    }

    fn fail(&mut self, e: anyhow::Error) {
        self.failure.get_or_insert(e);
    }
}

/// Persons whose codes are issued in one transaction: a run of letters spent most of its time
/// on one code at a time (four statements each) while the renderers waited. A run stopped by a
/// crash leaves at most this many codes issued without a letter; they expire unused.
const ISSUE_BATCH: usize = 64;

/// The codes of the next persons on the list, in the list's order, and how many of them were
/// skipped (said on stderr: nothing to do for them any more).
async fn issue_batch(
    state: &AppState,
    realm: &Realm,
    batch: Vec<Waiting>,
    bar: &ProgressBar,
) -> anyhow::Result<(Vec<IssuedCode>, usize)> {
    let skip = |ahv: &dyn std::fmt::Display, why: &str| {
        bar.suspend(|| eprintln!("{ahv}: skipped: {why}"));
        bar.inc(1);
    };
    let mut issued = Vec::new();
    let mut skipped = 0;
    let mut enrolments = Vec::new();
    for (place, waiting) in batch.into_iter().enumerate() {
        let request = match waiting {
            Waiting::Enrolment(person) => {
                enrolments.push((place, person));
                continue;
            }
            Waiting::Request(request) => request,
        };
        let ahv = request.person.ahv.clone();
        match state.activation.issue_for_request(realm, request).await {
            Ok(code) => issued.push((place, code)),
            // Printed by another run since the list was read.
            Err(StoreError::Conflict(Conflict::CodeSpent)) => {
                skip(&ahv, "the request was printed meanwhile");
                skipped += 1;
            }
            Err(e) => {
                revoke_unwritten(state, realm, issued.into_iter().map(|(_, c)| c)).await;
                return Err(anyhow::Error::new(e).context(format!("issuing for {ahv}")));
            }
        }
    }
    let (places, persons): (Vec<usize>, Vec<Person>) = enrolments.into_iter().unzip();
    let ahvs: Vec<_> = persons.iter().map(|p| p.ahv.clone()).collect();
    let codes = match state.activation.issue_many(realm, persons).await {
        Ok(codes) => codes,
        Err(e) => {
            revoke_unwritten(state, realm, issued.into_iter().map(|(_, c)| c)).await;
            return Err(anyhow::Error::new(e).context("issuing codes"));
        }
    };
    // Issued in the order asked, without those no longer waiting.
    let mut codes = codes.into_iter().peekable();
    for (place, ahv) in places.into_iter().zip(ahvs) {
        match codes.next_if(|c| c.person.ahv == ahv) {
            Some(code) => issued.push((place, code)),
            None => {
                skip(&ahv, "enrolled or removed from the register meanwhile");
                skipped += 1;
            }
        }
    }
    issued.sort_by_key(|(place, _)| *place);
    Ok((issued.into_iter().map(|(_, c)| c).collect(), skipped))
}

/// Revokes codes issued for letters that will not be written (the run stopped): a code
/// nobody can read must not keep the person out of the next run.
async fn revoke_unwritten(
    state: &AppState,
    realm: &Realm,
    codes: impl IntoIterator<Item = IssuedCode>,
) {
    for code in codes {
        if let Err(e) = state.activation.revoke(realm, &code.person.ahv).await {
            eprintln!(
                "{}: its code was issued but no letter written, and revoking it failed: {e}",
                code.person.ahv
            );
        }
    }
}

/// Issues a code and writes a letter for every person waiting for one; see the module doc.
pub(super) async fn write_letters(
    state: &AppState,
    realm: Arc<Realm>,
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let persons =
        activation_codes::persons_waiting_for_a_code(&state.db, &realm.id, state.clock.unix())
            .await?;
    let requests = letter_requests::waiting(&state.db, &realm.id).await?;
    let mut waiting: Vec<Waiting> = persons
        .into_iter()
        .map(Waiting::Enrolment)
        .chain(requests.into_iter().map(Waiting::Request))
        .collect();
    waiting.sort_by_cached_key(|w| postal_key(w.person()));
    let fonts = Fonts::new()?;
    let run = Arc::new(Run {
        link: format!("{}/register", state.config.issuer(&realm.id)),
        date: swiss_date(state.clock.now()),
        out: out.to_owned(),
        realm,
    });

    let (to_batch, from_letters) = mpsc::channel(64);
    let batch = tokio::task::spawn_blocking({
        let (fonts, run) = (fonts.clone(), run.clone());
        move || write_batch(from_letters, fonts, run)
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut progress = Progress {
        bar: progress::bar(waiting.len() as u64, "letters"),
        done: BTreeMap::new(),
        next: 0,
        to_batch,
        written: 0,
        failure: None,
    };
    let mut rendering = JoinSet::new();
    let (mut seq, mut skipped, mut requested) = (0, 0, 0);
    let mut waiting = waiting.into_iter();
    let mut issued = VecDeque::new();
    while progress.failure.is_none() {
        if issued.is_empty() {
            let next: Vec<Waiting> = waiting.by_ref().take(ISSUE_BATCH).collect();
            if next.is_empty() {
                break;
            }
            match issue_batch(state, &run.realm, next, &progress.bar).await {
                Ok((codes, s)) => {
                    issued.extend(codes);
                    skipped += s;
                }
                Err(e) => progress.fail(e),
            }
            continue;
        }
        while rendering.len() >= workers {
            if let Some(finished) = rendering.join_next().await {
                progress.settle(state, finished).await;
            }
        }
        if progress.failure.is_some() {
            break;
        }
        let Some(issued) = issued.pop_front() else {
            continue;
        };
        if issued.request.is_some() {
            requested += 1;
        }
        let job = Arc::new(Job {
            seq,
            issued,
            run: run.clone(),
        });
        seq += 1;
        let fonts = fonts.clone();
        rendering.spawn_blocking(move || {
            let result = job.write(&fonts);
            (job, result)
        });
    }
    revoke_unwritten(state, &run.realm, issued).await;
    while let Some(finished) = rendering.join_next().await {
        progress.settle(state, finished).await;
    }
    let Progress {
        bar,
        to_batch,
        written,
        failure,
        ..
    } = progress;
    drop(to_batch);
    let batch = batch
        .await
        .map_err(|e| anyhow!("the mailroom's file: {e}"))
        .and_then(|b| b.context("the mailroom's file was not written"));
    bar.finish_and_clear();
    // The letters were written without waiting for the disk; nothing is reported done before
    // they are on it.
    sync_filesystem(out)?;

    println!(
        "{written} letter(s) written to {}, {skipped} person(s) skipped",
        out.display()
    );
    if requested > 0 {
        println!("{requested} of them asked for after a lost phone: a new mobile number");
    }
    match &batch {
        Ok(Some(b)) => println!(
            "{} letter(s) on {} page(s) in postal-code order in {}",
            b.letters,
            b.pages,
            b.path.display()
        ),
        Ok(None) => {}
        Err(e) if failure.is_some() => eprintln!("{e:#}"),
        Err(_) => eprintln!("every letter is in its own file; print those"),
    }
    if let Some(e) = failure {
        return Err(e.context(format!("stopped after {written} letter(s)")));
    }
    batch.map(|_| ())
}

/// Writes a temporary file and renames it into place, so that no half letter is ever read. A
/// letter holds a code in clear, so on Unix only its owner may read it (as with the master key
/// file).
pub(super) fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, true)
}

/// [`write_whole`] without waiting for the disk: a run of many letters syncs once at its end
/// (`sync_filesystem`), since one fsync per file cost more than rendering the letter.
fn write_whole_unsynced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file(path, bytes, false)
}

fn write_file(path: &Path, bytes: &[u8], sync: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

/// Puts everything written in `dir` on the disk: one `syncfs` for the whole run on Linux, a
/// sync of every file elsewhere.
fn sync_filesystem(dir: &Path) -> anyhow::Result<()> {
    let failed = || format!("writing the letters in {} to disk", dir.display());
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let handle = std::fs::File::open(dir).with_context(failed)?;
        // SAFETY: syncfs only reads the descriptor, which `handle` keeps open for the call.
        if unsafe { libc::syncfs(handle.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(failed);
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for entry in std::fs::read_dir(dir).with_context(failed)? {
            let path = entry.with_context(failed)?.path();
            if path.is_file() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .with_context(failed)?;
            }
        }
        Ok(())
    }
}
