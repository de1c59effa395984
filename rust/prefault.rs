// SPDX-License-Identifier: GPL-2.0

//! The restoring task's pages, made present ahead of it on another CPU.
//!
//! At restart every page of private memory is a fault that allocates and zeroes a page, which
//! costs more than reading the image into it (3.0 s against 1.5 s for 1 GiB in the test VM).
//! A worker makes the pages of a PAGES record present chunk by chunk while the task reads the
//! image into the chunks made present before: the two costs overlap instead of adding up.

use kernel::{
    mm::MmWithUser,
    new_condvar, new_mutex, new_work,
    prelude::*,
    sync::{aref::ARef, Arc, CondVar, Mutex},
    workqueue::{impl_has_work, Work, WorkItem},
};

use crate::image::default_queue;
use crate::shim::OwnPages;

/// Pages made present at a time: enough to amortise the mmap lock, few enough that the task
/// starts reading soon.
pub(crate) const CHUNK: usize = 64;

/// What the worker has made present so far.
struct Made {
    /// Every page made present, in order; those handed out are holes.
    pages: OwnPages,
    /// How many of `pages` there are.
    ready: usize,
    /// Why the worker stopped early.
    error: Option<Error>,
    /// The task asks the worker to stop (it failed, or it is done).
    stop: bool,
    /// The worker will not touch `pages` again.
    finished: bool,
}

/// A worker making the chunks `chunks` of `mm` present, in order.
#[pin_data]
pub(crate) struct Prefault {
    #[pin]
    work: Work<Prefault>,
    #[pin]
    made: Mutex<Made>,
    #[pin]
    changed: CondVar,
    mm: ARef<MmWithUser>,
    /// Address and page count of each chunk.
    chunks: KVec<(u64, usize)>,
}

impl_has_work! {
    impl HasWork<Self> for Prefault { self.work }
}

impl Prefault {
    /// Starts making `chunks` of `mm` present on another CPU. The task takes them, in order,
    /// with [`Ahead::next`].
    pub(crate) fn start(mm: &MmWithUser, chunks: &[(u64, usize)]) -> Result<Ahead> {
        let total = chunks.iter().map(|c| c.1).sum();
        let mut mine = KVec::with_capacity(chunks.len(), GFP_KERNEL)?;
        mine.extend_from_slice(chunks, GFP_KERNEL)?;
        let made = Made {
            pages: OwnPages::with_capacity(total)?,
            ready: 0,
            error: None,
            stop: false,
            finished: false,
        };
        let job = Arc::pin_init(
            pin_init!(Self {
                work <- new_work!("cr::Prefault::work"),
                made <- new_mutex!(made, "cr::Prefault::made"),
                changed <- new_condvar!("cr::Prefault::changed"),
                mm: mm.into(),
                chunks: mine,
            }),
            GFP_KERNEL,
        )?;
        default_queue().enqueue(job.clone()).map_err(|_| EBUSY)?;
        Ok(Ahead { job, taken: 0 })
    }
}

impl WorkItem for Prefault {
    type Pointer = Arc<Prefault>;

    fn run(this: Arc<Prefault>) {
        let mut chunk = OwnPages::with_capacity(CHUNK);
        for &(addr, n) in this.chunks.iter() {
            let result = match &mut chunk {
                Ok(chunk) => chunk.take(&this.mm, addr, n),
                Err(_) => Err(ENOMEM),
            };
            let mut made = this.made.lock();
            if made.stop {
                break;
            }
            let moved = result.and_then(|()| match &mut chunk {
                Ok(chunk) => chunk.move_to(&mut made.pages),
                Err(_) => Err(ENOMEM),
            });
            match moved {
                Ok(()) => made.ready += n,
                Err(e) => {
                    made.error = Some(e);
                    break;
                }
            }
            drop(made);
            this.changed.notify_all();
        }
        // Pages of a chunk that failed half-way go before the task may go on.
        drop(chunk);
        this.made.lock().finished = true;
        this.changed.notify_all();
    }
}

/// The task's side of a [`Prefault`]: it takes the chunks in order, and once dropped, stops
/// the worker and waits for it, so that nothing touches the address space behind its back.
pub(crate) struct Ahead {
    job: Arc<Prefault>,
    /// Pages taken so far.
    taken: usize,
}

impl Ahead {
    /// Waits for the next `n` pages, and moves them (with their references) to `into`.
    pub(crate) fn next(&mut self, n: usize, into: &mut OwnPages) -> Result {
        let job = &self.job;
        let mut made = job.made.lock();
        while made.ready < self.taken + n {
            if let Some(e) = made.error {
                return Err(e);
            }
            if made.finished {
                return Err(EINVAL);
            }
            job.changed.wait(&mut made);
        }
        made.pages.lend_range(self.taken, n, into)?;
        self.taken += n;
        Ok(())
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let job = &self.job;
        let mut made = job.made.lock();
        made.stop = true;
        while !made.finished {
            job.changed.wait(&mut made);
        }
    }
}

/// Makes the pages of each of `chunks` of `mm` present, one chunk after another, and hands them
/// to `place` with the chunk's address and page count (an error where they could not be made
/// present), and whether another CPU is busy making the next ones present: with more than one
/// chunk, it does so ahead of `place`.
pub(crate) fn place_chunks<E: From<Error>>(
    mm: &MmWithUser,
    chunks: &[(u64, usize)],
    mut place: impl FnMut(u64, usize, Result<&mut OwnPages>, bool) -> core::result::Result<(), E>,
) -> core::result::Result<(), E> {
    let mut own = OwnPages::with_capacity(CHUNK)?;
    let mut ahead = (chunks.len() > 1)
        .then(|| Prefault::start(mm, chunks).ok())
        .flatten();
    for &(addr, n) in chunks {
        own.clear();
        let made = match &mut ahead {
            Some(ahead) => ahead.next(n, &mut own),
            None => own.take(mm, addr, n),
        };
        place(addr, n, made.map(|()| &mut own), ahead.is_some())?;
    }
    Ok(())
}

/// `runs` (address and page count) cut into chunks of at most [`CHUNK`] pages.
pub(crate) fn chunks_of(runs: impl Iterator<Item = (u64, usize)>) -> Result<KVec<(u64, usize)>> {
    let mut chunks = KVec::new();
    for (mut addr, mut n) in runs {
        while n > 0 {
            let k = n.min(CHUNK);
            chunks.push((addr, k), GFP_KERNEL)?;
            addr += (k * kernel::page::PAGE_SIZE) as u64;
            n -= k;
        }
    }
    Ok(chunks)
}
