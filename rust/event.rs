// SPDX-License-Identifier: GPL-2.0

//! Event files: EVENT, the state of an eventfd, a timerfd, a signalfd or an epoll file, and
//! EPOLL, an epoll's interest list.
//!
//! Each is one open file (its context belongs to that file alone), so its EVENT record comes
//! right before the FILE record that defines the open file, and restart makes the file, with
//! the system call's own code, when that FILE names it. Descriptors that share the open file
//! (dup, fork) share it through the FILE's objref, as for any file.
//!
//! An epoll's watches name the open files they watch by objref, so its EPOLL record comes after
//! the last FILE record of the descriptor table that defines it: every file that table holds
//! is defined by then, as is every file of the tables before it. Restart adds the watches as it
//! reads the record, by file and descriptor number, through `EPOLL_CTL_ADD`'s own code.
//!
//! A timer's next expiry is kept as the time it had left, counted again from the restart: the
//! monotonic and boot clocks of another boot are another count. Only a timer set on the
//! real-time clock with an absolute time keeps that time, since what it waits for is a moment
//! of the wall clock.

use kernel::{fs::File, prelude::*, sync::aref::ARef};

use crate::cx::{LoadCx, SaveCx};
use crate::error::{Context, CrError, CrResult};
use crate::format::{
    epoll_watch_flags, event_kind, EpollHeader, EpollWatch, ErrorKind, EventRecord, RecordKind,
    CLOCK_BOOTTIME, CLOCK_MONOTONIC, CLOCK_REALTIME, EPOLL_EVENTS_KNOWN, MAX_RECORD_LEN,
    RECORD_HEADER_LEN, TFD_TIMER_ABSTIME,
};
use crate::objhash::Object;
use crate::records;
use crate::shim::{ffi::EventInfo, new_event, FileExt};

/// Which event file an anonymous-inode file is, by the name its creator gave it; `None` for
/// any other (the state readers check the file's operations themselves).
pub(crate) fn kind_of(name: &[u8]) -> Option<u32> {
    match name {
        b"[eventfd]" => Some(event_kind::EVENTFD),
        b"[timerfd]" => Some(event_kind::TIMERFD),
        b"[signalfd]" => Some(event_kind::SIGNALFD),
        b"[eventpoll]" => Some(event_kind::EPOLL),
        _ => None,
    }
}

/// The state of event file `file` of `kind`, as the kernel holds it, for its EVENT record (whose
/// objref [`save`] gives); or why it cannot be saved.
pub(crate) fn read(file: &File, kind: u32) -> CrResult<EventRecord> {
    let state = file
        .event_state(kind)
        .why("reading the state of an event file (eventfd, timerfd, signalfd, epoll) failed")?;
    let mut rec = EventRecord {
        kind,
        ..Default::default()
    };
    match kind {
        event_kind::EVENTFD => {
            if state.users != 0 {
                // A new eventfd would not be the one KVM, vhost or io_uring signals.
                return Err(CrError::new(
                    EBUSY,
                    "an eventfd is also used inside the kernel (KVM, vhost, io_uring)",
                ));
            }
            rec.count = state.count;
            rec.flags = state.flags;
        }
        event_kind::TIMERFD => {
            if !matches!(
                state.clock,
                CLOCK_REALTIME | CLOCK_MONOTONIC | CLOCK_BOOTTIME
            ) {
                return Err(CrError::unsupported(
                    "timerfd on an alarm clock not supported yet",
                ));
            }
            let left = u64::try_from(state.value_ns).unwrap_or(0);
            rec.clock = state.clock;
            rec.count = state.count;
            rec.interval_ns = u64::try_from(state.interval_ns).unwrap_or(0);
            if state.clock == CLOCK_REALTIME && state.flags & TFD_TIMER_ABSTIME != 0 {
                rec.flags = state.flags;
                rec.value_ns = match left {
                    0 => 0,
                    left => u64::try_from(state.now_ns)
                        .unwrap_or(0)
                        .saturating_add(left),
                };
            } else {
                rec.value_ns = left;
            }
        }
        event_kind::SIGNALFD => rec.mask = state.mask,
        // An epoll's state is its watches, in its EPOLL record.
        _ => {}
    }
    Ok(rec)
}

/// The EVENT record of event file `file`, whose state [`read`] gave: its objref. One open file
/// has one.
pub(crate) fn save(cx: &mut SaveCx<'_>, file: &File, state: &EventRecord) -> CrResult<u32> {
    let objs = &mut *cx.objs;
    let (objref, new) = objs
        .events
        .get_or_allocate(file.as_ptr() as u64, &mut objs.space)?;
    if new {
        let rec = EventRecord { objref, ..*state };
        cx.record(RecordKind::Event, &[&rec.encode()])?;
    }
    Ok(objref)
}

/// EVENT: an event file, made when its FILE comes.
pub(crate) fn load(cx: &mut LoadCx<'_>) -> CrResult {
    let rec = LoadCx::decode(cx.input, records::event)?;
    cx.objects
        .define(rec.objref, Object::Event(Some(rec)))
        .map_err(|e| e.at(cx.input.offset()))
}

/// The event file EVENT `id` describes, for the one FILE record that opens it, with `flags`.
pub(crate) fn open(cx: &mut LoadCx<'_>, id: u32, flags: u32) -> CrResult<ARef<File>> {
    let offset = cx.input.offset();
    let rec = match cx.objects.get_mut(id) {
        Ok(Object::Event(rec)) => rec
            .take()
            .ok_or(CrError::malformed(ErrorKind::BadField("event file opened twice")).at(offset))?,
        _ => return Err(CrError::malformed(ErrorKind::BadObjref(id)).at(offset)),
    };
    let info = EventInfo {
        kind: rec.kind,
        flags: rec.flags,
        clock: rec.clock,
        count: rec.count,
        mask: rec.mask,
        // Within `i64` by the decoder.
        value_ns: rec.value_ns as i64,
        interval_ns: rec.interval_ns as i64,
        ..Default::default()
    };
    new_event(&info, flags & kernel::bindings::O_NONBLOCK != 0).map_err(|e| {
        CrError::new(
            e,
            "making an event file (eventfd, timerfd, signalfd, epoll) failed",
        )
        .at(offset)
    })
}

/// The EPOLL record of epoll `epoll`, whose open file has objref `objref`: once every file its
/// descriptor table holds is defined.
pub(crate) fn save_watches(cx: &mut SaveCx<'_>, epoll: &File, objref: u32) -> CrResult {
    let watched = epoll
        .epoll_watches()
        .why("reading the interest list of an epoll failed")?;
    let len = EpollHeader::LEN + watched.len() * EpollWatch::LEN;
    if len > MAX_RECORD_LEN as usize - RECORD_HEADER_LEN {
        return Err(CrError::new(E2BIG, "an epoll watches too many files"));
    }
    let mut body = KVVec::with_capacity(len, GFP_KERNEL)?;
    let head = EpollHeader {
        epoll: objref,
        count: watched.len() as u32,
    };
    body.extend_from_slice(&head.encode(), GFP_KERNEL)?;
    for w in watched.iter() {
        let Some(file) = cx.objs.files.get(w.file.as_ptr() as u64) else {
            return Err(CrError::unsupported(
                "an epoll watches a file that neither its descriptor table nor an earlier \
                 task's holds (not supported yet)",
            ));
        };
        if w.events & !EPOLL_EVENTS_KNOWN != 0 {
            return Err(CrError::unsupported(
                "an epoll watch with events epoll_ctl() does not take (io_uring's)",
            ));
        }
        let watch = EpollWatch {
            file,
            fd: w.fd,
            events: w.events,
            flags: if w.ready { epoll_watch_flags::READY } else { 0 },
            data: w.data,
        };
        body.extend_from_slice(&watch.encode(), GFP_KERNEL)?;
    }
    cx.record(RecordKind::Epoll, &[&body])
}

/// EPOLL: adds the watches to the epoll, from files defined earlier in the stream.
pub(crate) fn load_watches(cx: &mut LoadCx<'_>) -> CrResult {
    let offset = cx.input.offset();
    let epoll = LoadCx::decode(cx.input, records::Epoll::decode)?;
    let file_of = |id: u32| match cx.objects.get(id) {
        Ok(Object::File(f)) => Ok(f.clone()),
        _ => Err(CrError::malformed(ErrorKind::BadObjref(id)).at(offset)),
    };
    let ep = file_of(epoll.head.epoll)?;
    for watch in epoll.watches() {
        let watch = watch.map_err(|e| CrError::malformed(e).at(offset))?;
        let target = file_of(watch.file)?;
        ep.epoll_add(&target, &watch).map_err(|e| {
            let why = if e == EINVAL {
                "an EPOLL record names a file that is not an epoll, or one the epoll cannot watch"
            } else {
                "restoring the interest list of an epoll failed"
            };
            CrError::new(e, why).at(offset)
        })?;
    }
    Ok(())
}
